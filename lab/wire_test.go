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
)

// The seed's "Let's look on the wire": the lab writes a pcap of its own
// traffic, exports a keytab of every principal, and tshark decodes and
// decrypts the TGS-REP with cname bob and sname HTTP/web.lab.local.
func TestWireViewWithTshark(t *testing.T) {
	if _, err := exec.LookPath("tshark"); err != nil {
		t.Skip("tshark not installed")
	}
	dir := t.TempDir()
	pcap := filepath.Join(dir, "lab.pcap")
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
	kt := filepath.Join(dir, "lab.keytab")
	if _, err := ExportAllKeytab(l.Store, kt); err != nil {
		t.Fatal(err)
	}
	cc, err := c.Cache()
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	// No session key crosses the wire in clear (gokrb5's Ticket.Marshal would
	// send DecryptedEncPart: notes §1.2): not the TGT's, not the service
	// ticket's, and the forwarded TGT travels only inside an encrypted KRB-CRED.
	raw, err := os.ReadFile(pcap)
	if err != nil {
		t.Fatal(err)
	}
	for _, cr := range cc.Credentials {
		if len(cr.Key.KeyValue) > 0 && bytes.Contains(raw, cr.Key.KeyValue) {
			t.Fatalf("the session key of %s is on the wire in clear", cr.Server)
		}
	}
	args := append([]string{"-r", pcap}, l.TsharkArgs(kt)...)
	args = append(args, "-Y", "kerberos.msg_type == 13", "-T", "fields", "-e", "kerberos.CNameString", "-e", "kerberos.SNameString", "-e", "kerberos.etype", "-e", "kerberos.keytype")
	out, err := exec.Command("tshark", args...).Output()
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
