package dockerlab_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/doublehop/doublehop/directory"
	"github.com/doublehop/doublehop/dockerlab"
	"github.com/doublehop/doublehop/events"
	"github.com/doublehop/doublehop/internal/enginelock"
	"github.com/doublehop/doublehop/internal/peer"
	"github.com/doublehop/doublehop/krb/keytab"
	"github.com/doublehop/doublehop/scenarios"
	"github.com/testcontainers/testcontainers-go"
)

func TestMain(m *testing.M) {
	if _, ok := os.LookupEnv("TESTCONTAINERS_RYUK_DISABLED"); !ok {
		os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	}
	release, err := enginelock.Shared() // not while the workshop's test makes and leaves a swarm
	if err != nil {
		fmt.Fprintln(os.Stderr, "dockerlab: engine lock:", err)
		os.Exit(1)
	}
	// Leftovers of killed runs go first; the image is built once (go build
	// with a cold cache takes a while on two cores, and the tests' own
	// deadlines are for the labs).
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	if dockerlab.Available(ctx) == nil {
		if names, err := dockerlab.Sweep(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "dockerlab: sweep:", err)
		} else if len(names) > 0 {
			fmt.Fprintln(os.Stderr, "dockerlab: removed leftovers of killed runs:", strings.Join(names, ", "))
		}
		if _, err := dockerlab.EnsureImage(ctx, dockerlab.ImageOptions{}); err != nil {
			fmt.Fprintln(os.Stderr, "dockerlab: image:", err) // the tests that need it fail with the reason
		}
	}
	cancel()
	code := m.Run()
	release()
	os.Exit(code)
}

// requireDocker skips where no Docker engine answers, or fails under CI.
func requireDocker(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := dockerlab.Available(ctx); err != nil {
		peer.Missing(t, "no Docker engine reachable: "+err.Error())
	}
	testcontainers.SkipIfProviderIsNotHealthy(t)
}

// docker/Dockerfile and the Go import path must build the same image.
func TestDockerfileMatchesImport(t *testing.T) {
	f, err := os.Open(filepath.Join("..", "docker", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := dockerlab.Dockerfile(f)
	if err != nil {
		t.Fatal(err)
	}
	want := append([]string{"FROM scratch", "COPY doublehop /doublehop"}, dockerlab.ImageChanges...)
	if !slices.Equal(got, want) {
		t.Fatalf("docker/Dockerfile and dockerlab.ImageChanges differ:\nDockerfile:\n  %s\nGo:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	for _, l := range got {
		if strings.Contains(l, "--chmod") || strings.HasPrefix(strings.ToLower(l), "# syntax") || strings.HasPrefix(l, "RUN") {
			t.Errorf("Dockerfile line %q needs BuildKit or a shell", l)
		}
	}
}

func TestSplitArgs(t *testing.T) {
	got, err := dockerlab.SplitArgs(`policy set 'sql.login=LAB\alice:grant' "a b"  c`)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"policy", "set", `sql.login=LAB\alice:grant`, "a b", "c"}; !slices.Equal(got, want) {
		t.Fatalf("got %q want %q", got, want)
	}
}

func TestDefaultPorts(t *testing.T) {
	if p := dockerlab.DefaultPorts("default"); p != (dockerlab.Ports{KDC: 10088, Web: 10080, SQL: 11433, LDAP: 10389, LDAPS: 10636}) {
		t.Fatalf("default ports %+v", p)
	}
	a, b := dockerlab.DefaultPorts("ws-01"), dockerlab.DefaultPorts("ws-02")
	if a == b || a.Web < 20000 || a.KDC > 29999 {
		t.Fatalf("ports %+v %+v", a, b)
	}
}

// The whole lab in containers: Bob's flow from ws01, each tier holding only
// its own secrets, the scenario engine breaking and fixing delegation through
// the DC's admin commands, and the events of every tier in one timeline.
func TestContainerLab(t *testing.T) {
	requireDocker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	var progress bytes.Buffer
	lab, err := dockerlab.Run(ctx, dockerlab.WithFlow("bob"), dockerlab.WithProgress(&progress))
	dockerlab.Cleanup(t, lab)
	if err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	t.Logf("lab %s up in %s (image %s, tiers %s, flow %s)\n%s", lab.Name, lab.Timing.Total.Round(time.Millisecond), lab.Timing.Image.Round(time.Millisecond),
		lab.Timing.Tiers.Round(time.Millisecond), lab.Timing.Flow.Round(time.Millisecond), progress.String())
	if p := lab.FirstFlow.Page; p == nil || p.SQL.Login != `LAB\bob` || p.SQL.AuthScheme != "KERBEROS" || p.RunningAs != `LAB\bob` {
		t.Fatalf("flow: %s", lab.FirstFlow.Summary())
	}

	t.Run("secrets-per-tier", func(t *testing.T) {
		for _, c := range []struct {
			role, account string
		}{{dockerlab.RoleWeb, "svc_iispool"}, {dockerlab.RoleSQL, "svc_mssqlserver"}} {
			r, err := lab.Exec(ctx, c.role, nil, "help")
			if err != nil || r.ExitCode != 0 {
				t.Fatalf("exec in %s: %v %+v", c.role, err, r)
			}
			// The tier's keytab holds its own account's names only.
			own, err := lab.ExportKeytab(ctx, c.account)
			if err != nil {
				t.Fatal(err)
			}
			names := map[string]bool{}
			for _, e := range parseKeytab(t, own) {
				names[principal(e)] = true
			}
			kt, err := lab.ReadFile(ctx, c.role, dockerlab.KeytabPath(c.role))
			if err != nil {
				t.Fatal(err)
			}
			entries := parseKeytab(t, kt)
			if len(entries) == 0 {
				t.Fatalf("%s keytab is empty", c.role)
			}
			for _, e := range entries {
				if !names[principal(e)] {
					t.Errorf("%s keytab holds %s, not an name of %s", c.role, principal(e), c.account)
				}
			}
			// No directory (passwords) outside the DC.
			if _, err := lab.ReadFile(ctx, c.role, dockerlab.DirectoryYML); err == nil {
				t.Errorf("%s holds the directory", c.role)
			}
			sb, err := lab.ReadFile(ctx, c.role, dockerlab.SettingsPath(c.role))
			if err != nil {
				t.Fatal(err)
			}
			settings := string(sb)
			if strings.Contains(settings, "password") || strings.Contains(settings, "accounts:") {
				t.Errorf("%s settings hold more than its section:\n%s", c.role, settings)
			}
		}
	})

	// impacket talks to port 88 only: the lab's KDC is also on 88 of its own
	// loopback address.
	t.Run("impacket-port-88", func(t *testing.T) {
		if lab.KDC88 == "" {
			t.Fatal("no KDC on port 88 (127.0.1.N:88 was taken?)")
		}
		py := peer.Need1(t, "/usr/bin/python3")
		script := "/usr/share/doc/python3-impacket/examples/getTGT.py"
		if _, err := os.Stat(script); err != nil {
			peer.Missing(t, "python3-impacket (apt-get install python3-impacket): "+err.Error())
		}
		dir := t.TempDir()
		cmd := exec.CommandContext(ctx, py, script, "-dc-ip", strings.TrimSuffix(lab.KDC88, ":88"), "LAB.LOCAL/bob:"+lab.Password("bob"))
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if _, serr := os.Stat(filepath.Join(dir, "bob.ccache")); err != nil || serr != nil {
			t.Fatalf("getTGT.py against %s: %v\n%s", lab.KDC88, err, out)
		}
	})

	// The DC's LDAP face from the host: impacket finds the delegation over
	// the well-known port 389 of the DC's own loopback address, and the
	// published port answers the rootDSE.
	t.Run("ldap", func(t *testing.T) {
		if lab.Ports.LDAP == 0 {
			t.Fatal("no LDAP port published")
		}
		c, err := net.DialTimeout("tcp", lab.LDAPAddr(), 5*time.Second)
		if err != nil {
			t.Fatalf("dial %s: %v", lab.LDAPAddr(), err)
		}
		c.Close()
		tc, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", fmt.Sprintf("127.0.0.1:%d", lab.Ports.LDAPS), &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatalf("LDAPS handshake: %v", err)
		}
		if cn := tc.ConnectionState().PeerCertificates[0].Subject.CommonName; cn != "dc.lab.local" {
			t.Errorf("LDAPS certificate for %q", cn)
		}
		tc.Close()
		if lab.DCAddr() == "" {
			t.Fatal("no DC on 127.0.1.N (taken?)")
		}
		py := peer.Need1(t, "/usr/bin/python3")
		script := "/usr/share/doc/python3-impacket/examples/findDelegation.py"
		if _, err := os.Stat(script); err != nil {
			peer.Missing(t, "python3-impacket (apt-get install python3-impacket): "+err.Error())
		}
		cmd := exec.CommandContext(ctx, py, script, "-dc-ip", lab.DCAddr(), "lab.local/bob:"+lab.Password("bob"))
		cmd.Dir = t.TempDir()
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "MSSQLSvc/sql.lab.local:1433") || !strings.Contains(string(out), "svc_iispool") {
			t.Fatalf("findDelegation.py against %s: %v\n%s", lab.DCAddr(), err, out)
		}
	})

	t.Run("admin-in-dc", func(t *testing.T) {
		out, err := lab.Admin(ctx, []string{"setspn", "-L", "svc_iispool"})
		if err != nil || !strings.Contains(out, "HTTP/web.lab.local") {
			t.Fatalf("setspn -L: %v\n%s", err, out)
		}
		out, err = lab.Admin(ctx, []string{"setspn", "-Q", "HTTP/nowhere.lab.local"})
		if err == nil || !strings.Contains(out, "No such SPN found.") {
			t.Fatalf("setspn -Q of a missing SPN: err=%v\n%s", err, out)
		}
	})

	for _, id := range []string{"no-delegation", "seed-part1", "keytab-unreadable", "duplicate-spn"} {
		t.Run("scenario-"+id, func(t *testing.T) {
			var out bytes.Buffer
			start := time.Now()
			rep, err := lab.RunScenario(ctx, id, &out)
			if err != nil {
				t.Fatalf("%v\n%s", err, out.String())
			}
			if !rep.OK() {
				t.Fatalf("scenario %s failed in containers:\n%s", id, out.String())
			}
			t.Logf("%s: PASS in %s", id, time.Since(start).Round(time.Millisecond))
		})
	}

	t.Run("events", func(t *testing.T) {
		// A failed logon on ws01 (inside the network): the KDC's 4771 and
		// the workstation's own event, from its log file in the container.
		r, err := lab.RunClient(ctx, "bob", "kinit", "--password", "not-bobs-password", "bob")
		if err != nil || r.ExitCode == 0 {
			t.Fatalf("kinit with a wrong password: %v %+v", err, r)
		}
		evs, err := lab.Events(ctx)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, e := range evs {
			seen[fmt.Sprintf("%s/%d", strings.SplitN(e.Host, ".", 2)[0], e.ID)] = true
		}
		for _, k := range []string{"dc/4768", "dc/4769", "dc/4771", "web/4624", "sql/18453", "sql/18456"} {
			if !seen[k] {
				t.Errorf("no %s event in the timeline (%d events)", k, len(evs))
			}
		}
		if f := (events.Filter{Host: "ws01"}).Apply(evs); len(f) == 0 {
			t.Errorf("no workstation events")
		}
	})

	t.Run("attach", func(t *testing.T) {
		again, err := dockerlab.Attach(ctx, lab.Name)
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(again.StateDir)
		if again.Ports != lab.Ports || again.Realm != "LAB.LOCAL" || again.Image != lab.Image {
			t.Fatalf("attached %+v %s %s, ran %+v %s", again.Ports, again.Realm, again.Image, lab.Ports, lab.Image)
		}
		f, err := again.Flow(ctx, "bob")
		if err != nil {
			t.Fatalf("flow after attach: %v", err)
		}
		t.Logf("flow: %s", f.Summary())
	})
}

// A lab that starts broken (the story's missing delegation) and is fixed
// with the DC's own admin command, observed from ws01.
func TestBrokenScenarioAndFix(t *testing.T) {
	requireDocker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	lab, err := dockerlab.Run(ctx, dockerlab.WithScenario("no-delegation"))
	dockerlab.Cleanup(t, lab)
	if err != nil {
		t.Fatal(err)
	}
	f, err := lab.Flow(ctx, "bob")
	if err == nil || f.Page == nil || f.Page.SQL.Error == nil || f.Page.SQL.Error.Number != 18456 ||
		!strings.Contains(f.Page.SQL.Error.Message, `NT AUTHORITY\ANONYMOUS LOGON`) {
		t.Fatalf("broken lab: want SQL 18456 ANONYMOUS LOGON, got err=%v %s", err, f.Summary())
	}
	t.Logf("broken: %s", f.Summary())
	if out, err := lab.Admin(ctx, []string{"delegation", "set", "svc_iispool", "constrained", "--to", "MSSQLSvc/sql.lab.local:1433"}); err != nil {
		t.Fatalf("fix: %v\n%s", err, out)
	}
	if f, err = lab.Flow(ctx, "bob"); err != nil {
		t.Fatalf("after the fix: %v", err)
	}
	t.Logf("fixed: %s", f.Summary())
	// The broken attempt is in the KDC's log, with the reason explain uses.
	evs, err := lab.Events(ctx)
	if err != nil {
		t.Fatal(err)
	}
	bad := events.Filter{Host: "dc", ID: events.ServiceTicket, Failure: true}.Apply(evs)
	if len(bad) == 0 || bad[0].CodeName != "KDC_ERR_BADOPTION" {
		t.Fatalf("no KDC_ERR_BADOPTION in the dc's events: %v", bad)
	}
}

func parseKeytab(t *testing.T, b []byte) []keytab.Entry {
	t.Helper()
	e, err := keytab.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func principal(e keytab.Entry) string {
	return strings.Join(e.Principal.Components, "/") + "@" + e.Principal.Realm
}

// Every catalog scenario against one container lab (the engine resets it
// between scenarios), as a workshop runs them.
func TestCatalogInContainers(t *testing.T) {
	requireDocker(t)
	if testing.Short() {
		t.Skip("-short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 240*time.Second)
	defer cancel()
	lab, err := dockerlab.Run(ctx)
	dockerlab.Cleanup(t, lab)
	if err != nil {
		t.Fatal(err)
	}
	all, err := scenarios.Catalog()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range all {
		t.Run(s.ID, func(t *testing.T) {
			var out bytes.Buffer
			rep, err := scenarios.NewEngine(lab, scenarios.Options{Out: &out}).Run(ctx, s)
			if err != nil {
				t.Fatalf("%v\n%s", err, out.String())
			}
			if !rep.OK() {
				t.Fatalf("scenario failed in containers:\n%s", out.String())
			}
		})
	}
}

// A lab file of its own (another realm and domain): the containers take its
// host names, the tiers its realm and NetBIOS name.
func TestLabFile(t *testing.T) {
	requireDocker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	y := string(directory.DefaultYAML())
	y = strings.NewReplacer("lab.local", "corp.local", "LAB.LOCAL", "CORP.LOCAL", "netbios: LAB", "netbios: CORP", `LAB\`, `CORP\`).Replace(y)
	lf, err := directory.Parse([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	lab, err := dockerlab.Run(ctx, dockerlab.WithLab(lf), dockerlab.WithFlow("alice"))
	dockerlab.Cleanup(t, lab)
	// Alice authenticates, but SQL Server denies her login (DENY CONNECT SQL).
	if lab == nil || lab.FirstFlow == nil || lab.FirstFlow.Page == nil {
		t.Fatalf("%v", err)
	}
	p := lab.FirstFlow.Page
	if p.RunningAs != `CORP\alice` || p.SQL.Error == nil || p.SQL.Error.Number != 18456 || lab.Tiers[dockerlab.RoleWeb].Host != "web.corp.local" {
		t.Fatalf("flow as alice in CORP.LOCAL: %s", lab.FirstFlow.Summary())
	}
	f, err := lab.Flow(ctx, "bob")
	if err != nil || f.Page.SQL.Login != `CORP\bob` {
		t.Fatalf("bob in CORP.LOCAL: %v %s", err, f.Summary())
	}
}

// docker kill each tier in turn: Bob's flow fails with a clear error while it
// is down, and resumes after docker start; a directory change made just before
// the KDC was killed survives (issue 8, the container lab).
func TestKillAndRestartTiers(t *testing.T) {
	requireDocker(t)
	if testing.Short() {
		t.Skip("-short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Second)
	defer cancel()
	lab, err := dockerlab.Run(ctx, dockerlab.WithFlow("bob"))
	dockerlab.Cleanup(t, lab)
	if err != nil {
		t.Fatal(err)
	}
	for _, role := range []string{dockerlab.RoleKDC, dockerlab.RoleSQL, dockerlab.RoleWeb} {
		if role == dockerlab.RoleKDC {
			if out, err := lab.Admin(ctx, []string{"setspn", "-S", "HTTP/kill.lab.local", "svc_iispool"}); err != nil {
				t.Fatalf("setspn: %v\n%s", err, out)
			}
		}
		if err := lab.Kill(ctx, role); err != nil {
			t.Fatal(err)
		}
		fctx, fcancel := context.WithTimeout(ctx, 30*time.Second)
		start := time.Now()
		f, err := lab.Flow(fctx, "bob")
		fcancel()
		if err == nil && f.OK(lab.NetBIOS) {
			t.Fatalf("%s is down but the flow succeeded", role)
		}
		if took := time.Since(start); took > 25*time.Second {
			t.Fatalf("%s down: the flow hung for %s", role, took)
		}
		if err := lab.Restart(ctx, role); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(60 * time.Second)
		for {
			f, err := lab.Flow(ctx, "bob")
			if err == nil && f.OK(lab.NetBIOS) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("after restarting %s the flow does not resume: %v", role, err)
			}
			time.Sleep(500 * time.Millisecond)
		}
		if role == dockerlab.RoleKDC {
			out, err := lab.Admin(ctx, []string{"setspn", "-Q", "HTTP/kill.lab.local"})
			if err != nil || !strings.Contains(out, "svc_iispool") {
				t.Fatalf("the setspn made before the KDC was killed is gone: %v\n%s", err, out)
			}
		}
	}
}
