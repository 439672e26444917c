package client

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/doublehop/doublehop/krb/kdcclient"
	"github.com/doublehop/doublehop/krb/kerr"
	"github.com/doublehop/doublehop/ntlm"
)

// Windows' Negotiate package chooses NTLM when it cannot get a Kerberos
// ticket for the target (MS-SPNG 3.1.5; MS-KILE 3.2.5.1): the KDC has no
// such SPN (KDC_ERR_S_PRINCIPAL_UNKNOWN — a missing or duplicate SPN, an
// alias nobody registered), no KDC answers, or the site was opened by IP
// address (no ticket is asked for an IP). It never falls back once a ticket
// was sent: a KRB_AP_ERR_MODIFIED from the server ends the attempt. Like
// LSASS, the workstation keeps the logon's NT hash for this (MSV1_0); it
// lives beside the credential cache, mode 0600.

// ntlmCred is the logon session's NTLM credential.
type ntlmCred struct {
	User, Domain string
	NTHash       []byte
}

func (c *Client) ntlmPath() string { return c.cfg.CCache + ".ntlm" }

// saveNTLM records the logon's NT hash (Kinit does it).
func (c *Client) saveNTLM(user, password string) error {
	line := c.domain() + "\\" + user + " " + hex.EncodeToString(ntlm.NTHash(password)) + "\n"
	return os.WriteFile(c.ntlmPath(), []byte(line), 0o600)
}

// domain is the NetBIOS domain: the realm's first label (LAB.LOCAL → LAB).
func (c *Client) domain() string {
	return strings.ToUpper(strings.SplitN(c.cfg.Realm, ".", 2)[0])
}

func (c *Client) loadNTLM() (*ntlmCred, error) {
	b, err := os.ReadFile(c.ntlmPath())
	if err != nil {
		return nil, err
	}
	id, h, ok := strings.Cut(strings.TrimSpace(string(b)), " ")
	dom, user, ok2 := strings.Cut(id, `\`)
	hash, err := hex.DecodeString(h)
	if !ok || !ok2 || err != nil || len(hash) != 16 {
		return nil, fmt.Errorf("%s: not an NTLM credential", c.ntlmPath())
	}
	return &ntlmCred{User: user, Domain: dom, NTHash: hash}, nil
}

// fallbackReason says why Negotiate would use NTLM instead of Kerberos for
// this target, or "" when it must not fall back.
func fallbackReason(u *url.URL, kerbErr error) string {
	if ip := net.ParseIP(u.Hostname()); ip != nil {
		return "the site was opened by IP address: Windows asks no Kerberos ticket for " + u.Hostname()
	}
	if kerbErr == nil {
		return ""
	}
	var ke *kerr.Error
	switch {
	case errors.As(kerbErr, &ke) && ke.Code == kerr.KDC_ERR_S_PRINCIPAL_UNKNOWN:
		return "the KDC knows no (unique) account with that SPN: " + ke.Code.Name()
	case errors.As(kerbErr, &ke):
		return "" // other KDC refusals (policy, revoked, expired TGT) end the logon
	case kdcclient.IsTimeout(kerbErr) || isNetError(kerbErr):
		return "no KDC answered: " + kerbErr.Error()
	}
	return ""
}

func isNetError(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe)
}

// ntlmGet runs NTLM over one kept-alive connection (NTLM authenticates the
// connection, not the request): NEGOTIATE, the server's CHALLENGE,
// AUTHENTICATE. scheme is Negotiate (bare NTLMSSP inside it, as Windows
// sends it) or NTLM.
func (c *Client) ntlmGet(ctx context.Context, u *url.URL, o GetOptions, scheme string, resp *Response) (*Response, error) {
	cred, err := c.loadNTLM()
	if err != nil {
		return nil, fmt.Errorf("no NTLM credential for the fallback (log on with kinit first): %w", err)
	}
	tr := &http.Transport{DialContext: c.dial, MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Timeout: 30 * time.Second, Transport: tr}
	host := strings.ToUpper(strings.SplitN(c.cfg.Host, ".", 2)[0])
	cl := ntlm.NewClientContext(ntlm.ClientConfig{User: cred.User, Domain: cred.Domain, Workstation: host, NTHash: cred.NTHash, Now: c.cfg.Now})
	r1, err := c.do(ctx, hc, u, o, scheme+" "+base64.StdEncoding.EncodeToString(cl.Negotiate()))
	if err != nil {
		return nil, err
	}
	drain(r1)
	ch := schemeToken(r1.Header, scheme)
	if r1.StatusCode != http.StatusUnauthorized || ntlm.TypeOf(ch) != ntlm.TypeChallenge {
		return fill(resp, r1)
	}
	auth, err := cl.Authenticate(ch)
	if err != nil {
		return nil, fmt.Errorf("the server's NTLM CHALLENGE: %w", err)
	}
	r2, err := c.do(ctx, hc, u, o, scheme+" "+base64.StdEncoding.EncodeToString(auth))
	if err != nil {
		return nil, err
	}
	resp.Mechanism = "NTLM"
	return fill(resp, r2)
}

func drain(r *http.Response) {
	buf := make([]byte, 32<<10)
	for i := 0; i < 256; i++ { // bounded: 8 MiB
		if _, err := r.Body.Read(buf); err != nil {
			break
		}
	}
	r.Body.Close()
}

// schemeToken decodes the token of "WWW-Authenticate: <scheme> <b64>".
func schemeToken(h http.Header, scheme string) []byte {
	for _, v := range h.Values("WWW-Authenticate") {
		s, tok, ok := strings.Cut(strings.TrimSpace(v), " ")
		if ok && strings.EqualFold(s, scheme) {
			if b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(tok)); err == nil {
				return b
			}
		}
	}
	return nil
}

func offers(h http.Header, scheme string) bool {
	for _, v := range h.Values("WWW-Authenticate") {
		s, _, _ := strings.Cut(strings.TrimSpace(v), " ")
		if strings.EqualFold(s, scheme) {
			return true
		}
	}
	return false
}
