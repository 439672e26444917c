//go:build unix

package mitkdc

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/doublehop/doublehop/internal/peer"
)

func startLab(t *testing.T, opts Options) *KDC {
	t.Helper()
	peer.Need(t, binKDC, binUtil, binKadmin)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	k, err := Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := k.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	t.Logf("Start took %v (addr %s, dir %s)", k.Started, k.Addr, k.Dir)
	return k
}

func mitTool(t *testing.T, k *KDC, stdin string, name string, args ...string) string {
	t.Helper()
	p := peer.Need1(t, name)
	cmd := exec.Command(p, args...)
	cmd.Env = k.environ()
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s\nKDC log:\n%s", name, args, err, out, k.Log(2048))
	}
	return string(out)
}

func TestKinitKvno(t *testing.T) {
	k := startLab(t, Options{
		Principals: []Principal{
			{Name: "bob", Password: `Bob "Passw0rd"!`, RequiresPreauth: true},
			{Name: "HTTP/web.lab.local"},
			{Name: "svc_web", Password: "SvcWebPassw0rd!", OKToAuthAsDelegate: true},
		},
	})
	mitTool(t, k, "Bob \"Passw0rd\"!\n", "kinit", "bob")
	out := mitTool(t, k, "", "kvno", "HTTP/web.lab.local")
	if !strings.Contains(out, "HTTP/web.lab.local@LAB.LOCAL: kvno = 1") {
		t.Fatalf("kvno output: %q", out)
	}
	out = mitTool(t, k, "", "klist", "-e", "-f")
	for _, want := range []string{"bob@LAB.LOCAL", "krbtgt/LAB.LOCAL@LAB.LOCAL", "HTTP/web.lab.local@LAB.LOCAL", "aes256-cts-hmac-sha1-96", "Flags: F"} {
		if !strings.Contains(out, want) {
			t.Errorf("klist output lacks %q:\n%s", want, out)
		}
	}
	log := k.Log(8192)
	if !strings.Contains(log, "NEEDED_PREAUTH") || !strings.Contains(log, "ISSUE: authtime") {
		t.Errorf("KDC log lacks the preauth round trip:\n%s", log)
	}

	kt := filepath.Join(t.TempDir(), "http.keytab")
	if err := k.Keytab(kt, "HTTP/web.lab.local"); err != nil {
		t.Fatal(err)
	}
	out = mitTool(t, k, "", "kvno", "-k", kt, "HTTP/web.lab.local")
	if !strings.Contains(out, "keytab entry valid") {
		t.Fatalf("kvno -k: %q", out)
	}
	if err := k.Kadmin(context.Background(), "modprinc +ok_as_delegate HTTP/web.lab.local"); err != nil {
		t.Fatal(err)
	}
	if err := k.Kadmin(context.Background(), "modprinc +ok_as_delegate nobody"); err == nil {
		t.Fatal("modprinc on an unknown principal did not fail")
	}

	pid := k.PID
	if err := k.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, 0); err == nil {
		t.Fatalf("krb5kdc pid %d still alive after Stop", pid)
	}
	if _, err := os.Stat(k.Dir); !os.IsNotExist(err) {
		t.Fatalf("temp dir %s not removed: %v", k.Dir, err)
	}
}

func TestPreauthFlags(t *testing.T) {
	k := startLab(t, Options{
		Dir:                t.TempDir(),
		DisableLastSuccess: true,
		Workers:            2,
		TCPBacklog:         64,
		Principals: []Principal{
			{Name: "alice", Password: "AlicePw1", RequiresPreauth: true},
			{Name: "svc_nopa", Password: "NoPa1"},
		},
	})
	for _, c := range []struct {
		name string
		want string
	}{{"alice", "REQUIRES_PRE_AUTH"}, {"svc_nopa", ""}} {
		cmd := exec.Command("kadmin.local", "-r", k.Realm, "-q", "getprinc "+c.name)
		if p, err := lookBin(binKadmin); err == nil {
			cmd.Path = p
		}
		cmd.Env = k.environ()
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("getprinc %s: %v\n%s", c.name, err, out)
		}
		has := strings.Contains(string(out), "REQUIRES_PRE_AUTH")
		if has != (c.want != "") {
			t.Errorf("%s: REQUIRES_PRE_AUTH=%v, output:\n%s", c.name, has, out)
		}
	}
	kdcConf, err := os.ReadFile(k.KDCConf)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"disable_last_success = true", "kdc_tcp_listen_backlog = 64"} {
		if !strings.Contains(string(kdcConf), want) {
			t.Errorf("kdc.conf lacks %q", want)
		}
	}
	mitTool(t, k, "AlicePw1\n", "kinit", "alice")
}

// TestStartTwice: two realms run side by side, each answering for its own
// realm only, and stopping one leaves the other serving.
func TestStartTwice(t *testing.T) {
	a := startLab(t, Options{Realm: "A.LAB", Principals: []Principal{{Name: "bob", Password: "A-Passw0rd!", RequiresPreauth: true}}})
	b := startLab(t, Options{Realm: "B.LAB", Principals: []Principal{{Name: "bob", Password: "B-Passw0rd!", RequiresPreauth: true}}})
	if a.Addr == b.Addr || a.Dir == b.Dir {
		t.Fatalf("shared address %s / %s or directory %s / %s", a.Addr, b.Addr, a.Dir, b.Dir)
	}
	mitTool(t, a, "A-Passw0rd!\n", "kinit", "bob")
	mitTool(t, b, "B-Passw0rd!\n", "kinit", "bob")
	if out := mitTool(t, b, "", "klist"); !strings.Contains(out, "bob@B.LAB") || !strings.Contains(out, "krbtgt/B.LAB@B.LAB") {
		t.Fatalf("realm B's cache: %s", out)
	}
	// Each KDC has its own database: A's password does not work at B.
	cmd := exec.Command(peer.Need1(t, "kinit"), "bob")
	cmd.Env, cmd.Stdin = b.environ(), strings.NewReader("A-Passw0rd!\n")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "Password incorrect") {
		t.Fatalf("A's password at B: %v %s", err, out)
	}
	if err := a.Stop(); err != nil {
		t.Fatal(err)
	}
	mitTool(t, b, "B-Passw0rd!\n", "kinit", "bob")
}

func BenchmarkStart(b *testing.B) {
	peer.Need(b, binKDC, binUtil, binKadmin)
	for i := 0; i < b.N; i++ {
		k, err := Start(context.Background(), Options{Principals: []Principal{{Name: "bob", Password: "pw", RequiresPreauth: true}, {Name: "HTTP/web.lab.local"}}})
		if err != nil {
			b.Fatal(err)
		}
		if err := k.Stop(); err != nil {
			b.Fatal(err)
		}
	}
}

// TestReuseDir: a second Start in the same Dir gets a fresh database.
func TestReuseDir(t *testing.T) {
	dir := t.TempDir()
	a := startLab(t, Options{Dir: dir, Principals: []Principal{{Name: "carol", Password: "x"}}})
	if err := a.Stop(); err != nil {
		t.Fatal(err)
	}
	b := startLab(t, Options{Dir: dir, Principals: []Principal{{Name: "carol", Password: "y"}}})
	mitTool(t, b, "y\n", "kinit", "carol")
}
