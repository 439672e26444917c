package lab

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/doublehop/doublehop/client"
	"github.com/doublehop/doublehop/internal/peer"
	"github.com/doublehop/doublehop/krb/ccache"
)

// captureFlows runs Bob's flows (with and without a forwarded TGT) on a lab
// that writes a pcap, and returns the pcap, a keytab of every principal and
// Bob's cache.
func captureFlows(t *testing.T) (l *Lab, pcap, kt string, cc *ccache.Cache) {
	t.Helper()
	dir := t.TempDir()
	pcap = filepath.Join(dir, "lab.pcap")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	l, err := Start(ctx, Options{StateDir: filepath.Join(dir, "state"), Capture: pcap})
	if err != nil {
		t.Fatal(err)
	}
	c := bobClient(t, l, 0)
	if _, err := c.Kinit(ctx, "bob", l.Password("bob")); err != nil {
		t.Fatal(err)
	}
	for _, o := range []client.GetOptions{{}, {Delegate: client.DelegateAlways}} {
		if r, err := c.Get(ctx, l.WebURL, o); err != nil || r.Status != 200 {
			t.Fatalf("get: %v", err)
		}
	}
	kt = filepath.Join(dir, "lab.keytab")
	if _, err := ExportAllKeytab(l.Store, kt); err != nil {
		t.Fatal(err)
	}
	if cc, err = c.Cache(); err != nil {
		t.Fatal(err)
	}
	l.Close()
	return l, pcap, kt, cc
}

// No session key crosses the wire in clear (gokrb5's Ticket.Marshal would
// send DecryptedEncPart: notes §1.2): not the TGT's, not the service
// ticket's, and the forwarded TGT travels only inside an encrypted KRB-CRED.
// The pcap is read as bytes: no tshark needed.
func TestNoSessionKeyOnTheWire(t *testing.T) {
	_, pcap, _, cc := captureFlows(t)
	raw, err := os.ReadFile(pcap)
	if err != nil {
		t.Fatal(err)
	}
	if len(cc.Credentials) < 2 {
		t.Fatalf("only %d credentials in Bob's cache", len(cc.Credentials))
	}
	for _, cr := range cc.Credentials {
		if len(cr.Key.KeyValue) > 0 && bytes.Contains(raw, cr.Key.KeyValue) {
			t.Fatalf("the session key of %s is on the wire in clear", cr.Server)
		}
	}
}

// The seed's "Let's look on the wire": the lab writes a pcap of its own
// traffic, exports a keytab of every principal, and tshark decodes and
// decrypts the TGS-REP with cname bob and sname HTTP/web.lab.local.
func TestWireViewWithTshark(t *testing.T) {
	tshark := peer.Need1(t, "tshark")
	l, pcap, kt, _ := captureFlows(t)
	args := append([]string{"-r", pcap}, l.TsharkArgs(kt)...)
	args = append(args, "-Y", "kerberos.msg_type == 13", "-T", "fields", "-e", "kerberos.CNameString", "-e", "kerberos.SNameString", "-e", "kerberos.etype", "-e", "kerberos.keytype")
	out, err := exec.Command(tshark, args...).Output()
	if err != nil {
		t.Fatalf("tshark: %v\n%s", err, out)
	}
	var seen bool
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Split(line, "\t")
		if len(f) >= 4 && strings.HasPrefix(f[0], "bob") && strings.Contains(f[1], "HTTP,web.lab.local") && strings.Contains(f[2], "18") && f[3] != "" {
			seen = true
		}
	}
	if !seen {
		t.Fatalf("no decrypted TGS-REP for bob / HTTP/web.lab.local (aes256) in:\n%s", out)
	}
}
