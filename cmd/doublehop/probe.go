package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/doublehop/doublehop/krb/kdcclient"
	"github.com/doublehop/doublehop/krb/kerr"
	"github.com/doublehop/doublehop/krb/kmsg"
	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/types"
)

func init() {
	register("probe", "exit 0 when every address answers (a container's health check)", cmdProbe)
}

// cmdProbe is the health check of a tier in an image with nothing but this
// binary: a TCP connect to each address, or an HTTP GET that must answer 200.
func cmdProbe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("probe", "probe [--http PATH | --kerberos REALM] [--timeout D] HOST:PORT...", stderr)
	path := fs.String("http", "", "GET this path on each address and require 200 (the web tier's /healthz)")
	timeout := fs.Duration("timeout", 2*time.Second, "give up on an address after this long")
	realm := fs.String("kerberos", "", "send each address an AS-REQ for this realm and require a Kerberos answer (a KDC that answers, not just a port that accepts)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return fmt.Errorf("no address to probe")
	}
	for _, addr := range fs.Args() {
		if err := probe(ctx, addr, *path, *realm, *timeout); err != nil {
			return fmt.Errorf("%s: %w", addr, err)
		}
	}
	return nil
}

func probe(ctx context.Context, addr, path, realm string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if realm != "" {
		// No pre-authentication: any KDC answers PREAUTH_REQUIRED or
		// C_PRINCIPAL_UNKNOWN (RFC 4120 §3.1.3), which is all we ask.
		req := kmsg.ASRequest{Realm: realm, Client: types.PrincipalName{NameType: kmsg.NTPrincipal, NameString: []string{"doublehop-probe"}},
			ETypes: []int32{etypeID.AES256_CTS_HMAC_SHA1_96}, Till: time.Now().Add(time.Hour)}
		b, _, err := req.Marshal()
		if err != nil {
			return err
		}
		rep, err := kdcclient.SendTCP(ctx, nil, addr, b)
		var ke *kerr.Error
		if rep != nil && (err == nil || errors.As(err, &ke)) {
			return nil // a KRB-ERROR or an AS-REP: a KDC
		}
		if err == nil {
			err = errors.New("empty reply")
		}
		return fmt.Errorf("no Kerberos answer: %w", err)
	}
	if path == "" {
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		return c.Close()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return nil
}
