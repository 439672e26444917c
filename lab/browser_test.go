package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"image/png"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/doublehop/doublehop/admin"
	"github.com/doublehop/doublehop/directory"
	"github.com/doublehop/doublehop/events"
	"github.com/doublehop/doublehop/internal/peer"
)

// Real browsers against the web tier, with Bob's MIT credential cache: what a
// trainer projects. Each test also shows which SPN the browser asked the KDC
// for (its own canonicalization of the host name).

// browserLab is an embedded lab with Bob logged on with MIT kinit.
func browserLab(t *testing.T, patch func(*directory.Lab)) (*Lab, []string) {
	t.Helper()
	l := startLab(t, patch)
	cc := filepath.Join(t.TempDir(), "krb5cc")
	if out, err := tool(t, l, cc, l.Password("bob")+"\n", "kinit", "bob"); err != nil {
		t.Fatalf("kinit: %v\n%s", err, out)
	}
	home := t.TempDir()
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "KRB5_CONFIG=" + l.Krb5Conf(), "KRB5CCNAME=FILE:" + cc, "LC_ALL=C.UTF-8"}
	return l, env
}

// chromiumProfile is a user-data-dir whose Local State carries what an admin
// sets by policy: the Negotiate allowlist, optionally delegation, and the
// CNAME lookup switch. received_http_auth_negotiate_headers tells Chromium
// (since 115, on Linux) to start its network service unsandboxed so that it
// can load libgssapi_krb5 on the first Negotiate challenge; without it the
// first launch answers ERR_UNSUPPORTED_AUTH_SCHEME. Chromium 156 ignores the
// old --auth-server-allowlist switches.
func chromiumProfile(t *testing.T, delegate, cnameLookup bool) string {
	t.Helper()
	auth := map[string]any{"server_allowlist": "*.lab.local", "disable_negotiate_cname_lookup": !cnameLookup}
	if delegate {
		auth["negotiate_delegate_whitelist"] = "*.lab.local" // the pref keeps its old name
	}
	dir := t.TempDir()
	b, _ := json.Marshal(map[string]any{"net": map[string]any{"received_http_auth_negotiate_headers": true}, "auth": auth})
	if err := os.WriteFile(filepath.Join(dir, "Local State"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// chromium runs headless Chromium on the lab's URL and returns what it printed.
func chromium(t *testing.T, l *Lab, env []string, profile string, args ...string) string {
	t.Helper()
	bin := peer.Need1(t, "chromium")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	all := append([]string{"--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--user-data-dir=" + profile,
		"--host-resolver-rules=MAP web.lab.local 127.0.0.1"}, args...)
	cmd := exec.CommandContext(ctx, bin, append(all, l.WebURL)...)
	cmd.Env = env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, tail(errb.String(), 2000))
	}
	return out.String()
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// asked returns the SPNs Bob's browser asked the KDC for (4769, any outcome).
func asked(t *testing.T, l *Lab) map[string]events.Event {
	t.Helper()
	out := map[string]events.Event{}
	evs, err := l.Events()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if e.ID == events.ServiceTicket && e.Client == "bob@LAB.LOCAL" && e.Mechanism == "" && !strings.HasPrefix(e.Service, "MSSQLSvc/") {
			out[e.Service] = e
		}
	}
	return out
}

func TestChromiumNegotiate(t *testing.T) {
	l, env := browserLab(t, nil)
	dom := chromium(t, l, env, chromiumProfile(t, false, false), "--dump-dom")
	mustContain(t, "Chromium's page", dom, `This page is running as: <b>LAB\bob</b>`, `auth_scheme = <b>KERBEROS</b>`,
		`<svg id="flow"`, `data-tier="ws01"`, `user LAB\bob`, `runs as LAB\svc_iispool`, `runs as LAB\svc_mssqlserver`,
		`data-hop="1" data-state="ok"`, `data-hop="2" data-state="ok"`, "via S4U2Proxy", "S4U2Proxy MSSQLSvc/sql.lab.local:1433")
	got := asked(t, l)
	if e, ok := got["HTTP/web.lab.local"]; !ok || e.Outcome != events.Success {
		t.Fatalf("Chromium did not get a ticket for HTTP/web.lab.local; it asked for %v", keys(got))
	}
	t.Logf("Chromium asked the KDC for: %v", keys(got))
}

// Chromium's default canonicalizes the host through the resolver: behind a
// host mapping (as behind a CNAME), it asks for HTTP/<what the name resolves
// to> and the KDC has no such SPN. SPNEGO then falls back to NTLM (MIT's
// SPNEGO tries the next mechanism, gss-ntlmssp, with Bob's NTLM
// credentials, as Windows' Negotiate uses the logon session's): the page
// works as Bob, and SQL Server says ANONYMOUS LOGON — the silent fallback.
func TestChromiumCanonicalizesTheName(t *testing.T) {
	if _, err := os.Stat("/etc/gss/mech.d/mech.ntlmssp.conf"); err != nil {
		peer.Missing(t, "gss-ntlmssp (apt-get install gss-ntlmssp): "+err.Error())
	}
	l, env := browserLab(t, nil)
	creds := filepath.Join(l.StateDir, NTLMUsersFile) // gss-ntlmssp's format, written by the lab
	dom := chromium(t, l, append(env, "NTLM_USER_FILE="+creds), chromiumProfile(t, false, true), "--dump-dom")
	mustContain(t, "Chromium's page", dom, `This page is running as: <b>LAB\bob</b>`, "via NTLM (NTLMv2, inside Negotiate)",
		`data-hop="1" data-state="warn"`, `data-hop="2" data-state="fail"`, "ANONYMOUS LOGON")
	got := asked(t, l)
	e, ok := got["HTTP/127.0.0.1"]
	if !ok || e.CodeName != "KDC_ERR_S_PRINCIPAL_UNKNOWN" {
		t.Fatalf("with CNAME lookup Chromium asked for %v, want HTTP/127.0.0.1 refused", keys(got))
	}
}

// The seed's failure in a browser: the HTTP SPN is on no account, the
// ticket decrypts only with WEB$'s key, and the site answers 401. Chromium
// asks for no mutual authentication, so it gets a plain new challenge (the
// KRB-ERROR goes only to clients that asked, as it is useless to others)
// and renders the site's 401 page with its explanation. With NTLM also
// offered, Chromium would try NTLM next (and ask for a password on Linux).
func TestChromiumSeesTheSeedFailure(t *testing.T) {
	l, env := browserLab(t, nil)
	for _, args := range [][]string{{"setspn", "-D", "HTTP/web.lab.local", "svc_iispool"}, {"setspn", "-D", "HTTP/web", "svc_iispool"},
		{"policy", "set", "web.providers=Negotiate"}} {
		if err := admin.Run(l.Store, args, io.Discard); err != nil {
			t.Fatal(err)
		}
	}
	dom := chromium(t, l, env, chromiumProfile(t, false, false), "--dump-dom")
	mustContain(t, "Chromium's 401 page", dom, "401 - Unauthorized", "KRB_AP_ERR_MODIFIED", "does not decrypt with this service account")
	if e, ok := findEvent(t, l, func(e events.Event) bool { return e.ID == events.LogonFailure && e.CodeName == "KRB_AP_ERR_MODIFIED" }); !ok || e.Account != "svc_iispool" {
		t.Fatalf("the site's 4625: %+v", e)
	}
}

// With the delegation allowlist Chromium forwards Bob's TGT (it does not wait
// for ok-as-delegate), and the site uses it: unconstrained delegation.
func TestChromiumDelegates(t *testing.T) {
	l, env := browserLab(t, nil)
	dom := chromium(t, l, env, chromiumProfile(t, true, false), "--dump-dom")
	mustContain(t, "Chromium's page", dom, `Delegated credential (forwarded TGT) with the request: <b>yes</b>`,
		`auth_scheme = <b>KERBEROS</b>`, "+ forwarded TGT", "via the forwarded TGT")
}

// The picture a trainer projects, working and broken, at 1280×800.
func TestChromiumScreenshots(t *testing.T) {
	l, env := browserLab(t, nil)
	profile := chromiumProfile(t, false, false)
	dir := os.Getenv("DOUBLEHOP_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	}
	shot := func(name string) {
		t.Helper()
		path := filepath.Join(dir, name)
		chromium(t, l, env, profile, "--window-size=1280,800", "--hide-scrollbars", "--screenshot="+path)
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		img, err := png.Decode(f)
		if err != nil || img.Bounds().Dx() != 1280 || img.Bounds().Dy() != 800 {
			t.Fatalf("%s: %v %v", name, err, img.Bounds())
		}
	}
	shot("page-working.png")
	if err := admin.Run(l.Store, []string{"delegation", "set", "svc_iispool", "none"}, io.Discard); err != nil {
		t.Fatal(err)
	}
	dom := chromium(t, l, env, profile, "--dump-dom")
	mustContain(t, "the broken page", dom, `data-hop="1" data-state="ok"`, `data-hop="2" data-state="fail"`,
		"S4U2Proxy MSSQLSvc/sql.lab.local:1433: KDC_ERR_BADOPTION", "SQL error 18456: ANONYMOUS LOGON", "(no delegable credential)")
	shot("page-broken.png")
	// The silent fallback: Chromium canonicalizes the name, asks for an SPN
	// nobody has, and Negotiate falls back to NTLM with Bob's credentials.
	if err := admin.Run(l.Store, []string{"delegation", "set", "svc_iispool", "constrained", "--to", "MSSQLSvc/sql.lab.local:1433"}, io.Discard); err != nil {
		t.Fatal(err)
	}
	creds := filepath.Join(l.StateDir, NTLMUsersFile) // gss-ntlmssp's format, written by the lab
	env = append(env, "NTLM_USER_FILE="+creds)
	profile = chromiumProfile(t, false, true)
	dom = chromium(t, l, env, profile, "--dump-dom")
	mustContain(t, "the NTLM fallback page", dom, "via NTLM (NTLMv2, inside Negotiate)", `data-hop="1" data-state="warn"`, "ANONYMOUS LOGON")
	shot("page-ntlm-fallback.png")
}

// Firefox ESR: network.negotiate-auth.trusted-uris (and delegation-uris)
// as an admin sets them, network.dns.localDomains for the lab's name.
func TestFirefoxNegotiate(t *testing.T) {
	bin := peer.Need1(t, "firefox-esr")
	l, env := browserLab(t, nil)
	profile := t.TempDir()
	prefs := `user_pref("network.negotiate-auth.trusted-uris", ".lab.local");
user_pref("network.negotiate-auth.delegation-uris", ".lab.local");
user_pref("network.dns.localDomains", "web.lab.local");
user_pref("browser.shell.checkDefaultBrowser", false);
user_pref("datareporting.policy.dataSubmissionEnabled", false);
user_pref("toolkit.telemetry.reportingpolicy.firstRun", false);
`
	if err := os.WriteFile(filepath.Join(profile, "user.js"), []byte(prefs), 0o600); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(t.TempDir(), "firefox.png")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-remote", "--profile", profile, "--window-size=1280,800", "--screenshot", shot, l.WebURL)
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("firefox: %v\n%s", err, tail(string(out), 2000))
	}
	if fi, err := os.Stat(shot); err != nil || fi.Size() < 10000 {
		t.Fatalf("no screenshot: %v", err)
	}
	got := asked(t, l)
	if e, ok := got["HTTP/web.lab.local"]; !ok || e.Outcome != events.Success {
		t.Fatalf("Firefox did not get a ticket for HTTP/web.lab.local; it asked for %v", keys(got))
	}
	// The page Firefox rendered was Bob's: the site logged him on with his
	// forwarded TGT and SQL Server saw LAB\bob over Kerberos.
	if _, ok := findEvent(t, l, func(e events.Event) bool {
		return e.ID == events.LogonSuccess && e.Client == "bob@LAB.LOCAL" && e.Service == "HTTP/web.lab.local" && e.Impersonation == "Delegation"
	}); !ok {
		t.Fatal("no 4624 for Bob with a delegated credential")
	}
	if _, ok := findEvent(t, l, func(e events.Event) bool {
		return e.ID == events.SQLLoginSuccess && e.Login == `LAB\bob` && e.AuthScheme == "KERBEROS" && e.Mechanism == "unconstrained"
	}); !ok {
		t.Fatal("SQL Server did not see LAB\\bob over Kerberos through the forwarded TGT")
	}
	t.Logf("Firefox asked the KDC for: %v", keys(got))
}

func keys(m map[string]events.Event) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
