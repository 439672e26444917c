package lab

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/doublehop/doublehop/directory"
	"github.com/doublehop/doublehop/events"
	"github.com/doublehop/doublehop/internal/peer"
)

// A real AD KDC in front of our tiers: Debian's samba provisioned as an AD DC
// for LAB.LOCAL on loopback (kdc and ldap services only), the accounts,
// SPNs and constrained delegation made with samba-tool, the keytabs it
// exports given to our web and SQL tiers. Bob's MIT kinit is against Samba,
// curl --negotiate reaches our web tier, and SQL sees LAB\bob over Kerberos
// through Samba's S4U2Proxy: what holds against our KDC holds against AD's.

type sambaDC struct {
	dir, conf string
}

func (s *sambaDC) tool(t *testing.T, args ...string) string {
	t.Helper()
	path := peer.Need1(t, "samba-tool")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, append(args, "-s", s.conf)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("samba-tool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// accounts creates the story's users on the Samba DC (as the default lab has
// them) and returns the samba-tool option that opens its database.
func (s *sambaDC) accounts(t *testing.T) string {
	t.Helper()
	db := "--URL=" + filepath.Join(s.dir, "private", "sam.ldb")
	for _, u := range [][2]string{{"bob", "Bob-Passw0rd!"}, {"svc_iispool", "IisPool-Passw0rd!"}, {"svc_mssqlserver", "MsSql-Passw0rd!"}} {
		s.tool(t, "user", "create", u[0], u[1], db)
	}
	return db
}

// startSambaDC provisions and runs a Samba AD DC on 127.0.0.1 (Samba binds
// only to configured interfaces; lo is the loopback one), until the test ends.
func startSambaDC(t *testing.T) *sambaDC {
	t.Helper()
	bins := peer.Need(t, "samba", "samba-tool")
	for _, port := range []string{"88", "389"} {
		ln, err := net.Listen("tcp", "127.0.0.1:"+port)
		if err != nil {
			t.Fatalf("127.0.0.1:%s is taken; the Samba DC needs it: %v", port, err)
		}
		ln.Close()
	}
	dir := t.TempDir()
	s := &sambaDC{dir: dir, conf: filepath.Join(dir, "etc", "smb.conf")}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	prov := exec.CommandContext(ctx, bins[1], "domain", "provision", "--realm=LAB.LOCAL", "--domain=LAB", "--adminpass=Admin-Passw0rd!",
		"--server-role=dc", "--dns-backend=NONE", "--targetdir="+dir, "--host-name=dc",
		"--option=interfaces=lo", "--option=bind interfaces only=yes", "--option=server services=kdc ldap",
		"--option=pid directory="+filepath.Join(dir, "run"), "--option=log file="+filepath.Join(dir, "log.%m"))
	if out, err := prov.CombinedOutput(); err != nil {
		t.Fatalf("samba-tool domain provision: %v\n%s", err, out)
	}
	os.MkdirAll(filepath.Join(dir, "run"), 0o755)
	srv := exec.Command(bins[0], "-i", "-M", "single", "-s", s.conf)
	logf, _ := os.Create(filepath.Join(dir, "samba.out"))
	srv.Stdout, srv.Stderr = logf, logf
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.Process.Kill() // the process this test started, by its PID
		srv.Wait()
		logf.Close()
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", "127.0.0.1:88", time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "samba.out"))
			t.Fatalf("the Samba DC's KDC did not come up: %v\n%s", err, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return s
}

func TestSambaDCFrontsOurTiers(t *testing.T) {
	dc := startSambaDC(t)
	db := dc.accounts(t)
	dc.tool(t, "spn", "add", "HTTP/web", "svc_iispool", db)
	dc.tool(t, "spn", "add", "HTTP/web.lab.local", "svc_iispool", db)
	dc.tool(t, "spn", "add", "MSSQLSvc/sql.lab.local:1433", "svc_mssqlserver", db)
	dc.tool(t, "delegation", "add-service", "svc_iispool", "MSSQLSvc/sql.lab.local:1433", db)

	// Our tiers, in front of Samba's KDC, with the keytabs Samba exported.
	state := t.TempDir()
	for tier, acct := range map[string]string{"web": "svc_iispool", "sql": "svc_mssqlserver"} {
		kt := filepath.Join(state, KeytabsDir, tier+".keytab")
		os.MkdirAll(filepath.Dir(kt), 0o700)
		dc.tool(t, "domain", "exportkeytab", kt, "--principal="+acct)
	}
	ctx, cancel := context.WithCancel(context.Background())
	l, err := Start(ctx, Options{StateDir: state, Lab: directory.Default(), ExternalKDC: "127.0.0.1:88"})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); l.Close() })

	// Bob logs on at Samba's KDC with MIT kinit and opens the site with curl.
	cc := filepath.Join(t.TempDir(), "cc")
	if out, err := tool(t, l, cc, "Bob-Passw0rd!\n", "kinit", "bob"); err != nil {
		t.Fatalf("MIT kinit against Samba's KDC: %v\n%s", err, out)
	}
	p := webPort(l)
	out, err := tool(t, l, cc, "", "curl", "-s", "--negotiate", "-u", ":", "--resolve", "web.lab.local:"+p+":127.0.0.1", "http://web.lab.local:"+p+"/")
	if err != nil {
		t.Fatalf("curl: %v\n%s", err, out)
	}
	mustContain(t, "our page behind Samba's KDC", out, "This page is running as: <b>LAB\\bob</b>", "KERBEROS")
	// SQL Server's own view: Bob, over Kerberos, through S4U2Proxy with Samba's PAC.
	if _, ok := findEvent(t, l, func(e events.Event) bool {
		return e.ID == events.SQLLoginSuccess && e.Login == `LAB\bob` && e.AuthScheme == "KERBEROS"
	}); !ok {
		t.Fatalf("no 18453 for LAB\\bob over KERBEROS at the SQL tier:\n%s", out)
	}
	klist, _ := tool(t, l, cc, "", "klist")
	mustContain(t, "Bob's cache", klist, "krbtgt/LAB.LOCAL@LAB.LOCAL", "HTTP/web.lab.local@LAB.LOCAL")
}

// The MIT client matrix, side by side: the front end's S4U requests (kvno
// -U bob -P, with svc_iispool's own keytab logon) against Samba's KDC and
// against ours, for each delegation setting, give the same answer.
func TestSambaDCMatchesOurKDCOnS4U(t *testing.T) {
	dc := startSambaDC(t)
	db := dc.accounts(t)
	dc.tool(t, "spn", "add", "HTTP/web.lab.local", "svc_iispool", db)
	dc.tool(t, "spn", "add", "MSSQLSvc/sql.lab.local:1433", "svc_mssqlserver", db)
	dc.tool(t, "delegation", "add-service", "svc_iispool", "MSSQLSvc/sql.lab.local:1433", db)
	sambaKT := filepath.Join(t.TempDir(), "web.keytab")
	dc.tool(t, "domain", "exportkeytab", sambaKT, "--principal=svc_iispool")
	sambaConf := filepath.Join(t.TempDir(), "krb5.conf")
	os.WriteFile(sambaConf, []byte(Krb5Conf("LAB.LOCAL", "127.0.0.1:88", "", true)), 0o644)

	ours := startLab(t, nil)
	ourKT := filepath.Join(t.TempDir(), "web.keytab")
	if err := ExportKeytab(ours.Store, "svc_iispool", ourKT); err != nil {
		t.Fatal(err)
	}
	// s4u runs MIT's kinit -k and kvno -U bob -P against one KDC and says what the KDC answered.
	s4u := func(conf, kt string) string {
		t.Helper()
		cc := filepath.Join(t.TempDir(), "cc")
		env := []string{"KRB5_CONFIG=" + conf, "KRB5CCNAME=FILE:" + cc, "KRB5_TRACE=/dev/null"}
		if out, err := peer.RunErr(env, "", peer.Need1(t, "kinit"), "-k", "-t", kt, "svc_iispool@LAB.LOCAL"); err != nil {
			t.Fatalf("kinit -k svc_iispool: %v\n%s", err, out)
		}
		out, err := peer.RunErr(env, "", peer.Need1(t, "kvno"), "-U", "bob", "-P", "MSSQLSvc/sql.lab.local:1433")
		switch {
		case err == nil && strings.Contains(out, "kvno ="):
			return "ticket"
		case strings.Contains(out, "KDC can't fulfill requested option") || strings.Contains(out, "BADOPTION"):
			return "KDC_ERR_BADOPTION"
		}
		return "other: " + out
	}
	for _, c := range []struct {
		name          string
		samba, labCmd []string
		want          string
	}{
		// Kerberos-only KCD: the S4U2Self ticket is not forwardable, S4U2Proxy is refused (MS-SFU 3.2.5.2.1).
		{"kerberos-only", nil, nil, "KDC_ERR_BADOPTION"},
		// "Use any authentication protocol": protocol transition.
		{"protocol-transition", []string{"delegation", "for-any-protocol", "svc_iispool", "on", db},
			[]string{"delegation", "set", "svc_iispool", "constrained", "--to", "MSSQLSvc/sql.lab.local:1433", "--protocol-transition"}, "ticket"},
		// A sensitive user cannot be delegated, whatever the front end may do.
		{"sensitive-user", []string{"user", "sensitive", "bob", "on", db}, []string{"account", "set", "bob", "sensitive=true"}, "KDC_ERR_BADOPTION"},
	} {
		if c.samba != nil {
			dc.tool(t, c.samba...)
			if _, err := ours.Admin(c.labCmd...); err != nil {
				t.Fatal(err)
			}
		}
		s, o := s4u(sambaConf, sambaKT), s4u(ours.Krb5Conf(), ourKT)
		t.Logf("%-20s Samba: %-18s ours: %s", c.name, s, o)
		if s != c.want || o != c.want {
			t.Errorf("%s: Samba says %s, our KDC says %s, Windows says %s", c.name, s, o, c.want)
		}
	}
}
