package client_test

import (
	"bytes"
	"context"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/doublehop/doublehop/client"
	"github.com/doublehop/doublehop/events"
	"github.com/doublehop/doublehop/krb/kerr"
	"github.com/doublehop/doublehop/krb/kmsg"
	"github.com/doublehop/doublehop/lab"
)

func startLab(t *testing.T) *lab.Lab {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	l, err := lab.Start(ctx, lab.Options{StateDir: t.TempDir()})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); l.Close() })
	return l
}

func bob(t *testing.T, l *lab.Lab, ev events.Sink) *client.Client {
	t.Helper()
	cfg := client.Config{CCache: "FILE:" + filepath.Join(t.TempDir(), "krb5cc"), Dialer: l.Dialer, Events: ev}
	if err := client.FromKrb5Conf(l.Krb5Conf(), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Realm != "LAB.LOCAL" || cfg.KDC == "" {
		t.Fatalf("krb5.conf gave realm %q, KDC %q", cfg.Realm, cfg.KDC)
	}
	return client.New(cfg)
}

// Kinit writes an MIT cache (mode 0600) with Bob's forwardable TGT.
func TestKinit(t *testing.T) {
	l := startLab(t)
	c := bob(t, l, nil)
	tgt, err := c.Kinit(context.Background(), "bob", l.Password("bob"))
	if err != nil {
		t.Fatal(err)
	}
	if tgt.Client() != "bob@LAB.LOCAL" || tgt.Server() != "krbtgt/LAB.LOCAL@LAB.LOCAL" || !kmsg.HasFlag(tgt.Info.Flags, kmsg.FlagForwardable) {
		t.Fatalf("TGT %s", tgt)
	}
	fi, err := os.Stat(c.CCachePath())
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("cache %s: %v %v", c.CCachePath(), fi.Mode(), err)
	}
	var out bytes.Buffer
	if err := c.Klist(&out); err != nil || !strings.Contains(out.String(), "Default principal: bob@LAB.LOCAL") ||
		!strings.Contains(out.String(), "krbtgt/LAB.LOCAL@LAB.LOCAL") || !strings.Contains(out.String(), "Etype (skey, tkt): aes256-cts-hmac-sha1-96, aes256-cts-hmac-sha1-96") {
		t.Fatalf("klist: %v\n%s", err, out.String())
	}
}

// A wrong password is the KDC's KDC_ERR_PREAUTH_FAILED, logged by the client
// as Windows' Kerberos event 3, and leaves no cache behind.
func TestKinitWrongPassword(t *testing.T) {
	l := startLab(t)
	mem := &events.Memory{}
	c := bob(t, l, mem)
	_, err := c.Kinit(context.Background(), "bob", "not-bobs")
	if code, ok := kerr.CodeOf(err); !ok || code != kerr.KDC_ERR_PREAUTH_FAILED {
		t.Fatalf("err %v, want KDC_ERR_PREAUTH_FAILED", err)
	}
	if _, err := os.Stat(c.CCachePath()); !os.IsNotExist(err) {
		t.Fatalf("a cache after a failed kinit: %v", err)
	}
	evs := mem.Events()
	if len(evs) == 0 || evs[len(evs)-1].ID != 3 || evs[len(evs)-1].CodeName != "KDC_ERR_PREAUTH_FAILED" || evs[len(evs)-1].Tier != "client" {
		t.Fatalf("client events %+v", evs)
	}
}

// A service ticket is asked for once and then found in the cache, as
// Windows and MIT clients do; kdestroy forgets everything.
func TestServiceTicketCachedAndKdestroy(t *testing.T) {
	l := startLab(t)
	c := bob(t, l, nil)
	ctx := context.Background()
	if _, err := c.Kinit(ctx, "bob", l.Password("bob")); err != nil {
		t.Fatal(err)
	}
	count4769 := func() int {
		evs, _ := l.Events()
		n := 0
		for _, e := range evs {
			if e.ID == 4769 && e.Service == "HTTP/web.lab.local" {
				n++
			}
		}
		return n
	}
	for i := 0; i < 3; i++ {
		st, err := c.ServiceTicket(ctx, "HTTP/web.lab.local")
		if err != nil || st.Server() != "HTTP/web.lab.local@LAB.LOCAL" {
			t.Fatalf("ticket %d: %v %s", i, err, st)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for count4769() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := count4769(); n != 1 {
		t.Fatalf("%d TGS-REQs for HTTP/web.lab.local, want 1 (the cache)", n)
	}
	if err := c.Kdestroy(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ServiceTicket(ctx, "HTTP/web.lab.local"); err == nil {
		t.Fatal("a service ticket without a TGT")
	}
}

// The SPN is HTTP/ plus the host as typed, lower-cased, without the port
// (what IE, Edge and Chrome ask for with an A record).
func TestSPNForURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://Web.Lab.Local:8080/x": "HTTP/web.lab.local",
		"http://web/":                 "HTTP/web",
		"https://10.0.0.5/":           "HTTP/10.0.0.5",
	} {
		u, _ := url.Parse(in)
		if got := client.SPNForURL(u); got != want {
			t.Errorf("SPNForURL(%s) = %s, want %s", in, got, want)
		}
	}
}

// countingDialer counts connections per address asked for.
type countingDialer struct {
	next interface {
		DialContext(ctx context.Context, network, addr string) (net.Conn, error)
	}
	mu sync.Mutex
	n  map[string]int
}

func (d *countingDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	d.mu.Lock()
	d.n[addr]++
	d.mu.Unlock()
	return d.next.DialContext(ctx, network, addr)
}

// The 401 and the authenticated retry go over one connection, as browsers
// and curl --negotiate send them (IIS keeps the connection after a 401).
func TestNegotiateRetriesOnTheSameConnection(t *testing.T) {
	l := startLab(t)
	d := &countingDialer{next: l.Dialer, n: map[string]int{}}
	cfg := client.Config{CCache: "FILE:" + filepath.Join(t.TempDir(), "krb5cc"), Dialer: d}
	if err := client.FromKrb5Conf(l.Krb5Conf(), &cfg); err != nil {
		t.Fatal(err)
	}
	c := client.New(cfg)
	if _, err := c.Kinit(context.Background(), "bob", l.Password("bob")); err != nil {
		t.Fatal(err)
	}
	r, err := c.Get(context.Background(), l.WebURL, client.GetOptions{Accept: "application/json"})
	if err != nil || r.Status != 200 || r.Mechanism != "Kerberos" {
		t.Fatalf("get: %v %+v", err, r)
	}
	u, _ := url.Parse(l.WebURL)
	if got := d.n[u.Host]; got != 1 {
		t.Errorf("%d connections to the site for one page, want 1 (dials: %v)", got, d.n)
	}
}
