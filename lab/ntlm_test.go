package lab

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/doublehop/doublehop/admin"
	"github.com/doublehop/doublehop/client"
	"github.com/doublehop/doublehop/events"
	"github.com/doublehop/doublehop/internal/peer"
	mssql "github.com/microsoft/go-mssqldb"
)

// NTLM on every tier, with real clients: curl's own NTLM, FreeTDS and
// go-mssqldb's NTLMv2; the DC validates for the tiers (4776).

func curlNTLM(t *testing.T, l *Lab, user, password string, extra ...string) string {
	t.Helper()
	p := webPort(l)
	args := append([]string{"-s", "--ntlm", "-u", user + ":" + password, "--resolve", "web.lab.local:" + p + ":127.0.0.1"}, extra...)
	out, err := tool(t, l, filepath.Join(t.TempDir(), "none"), "", "curl", append(args, "http://web.lab.local:"+p+"/")...)
	if err != nil {
		t.Fatalf("curl --ntlm: %v\n%s", err, out)
	}
	return out
}

func TestCurlNTLM(t *testing.T) {
	l := startLab(t, nil)
	out := curlNTLM(t, l, `LAB\bob`, l.Password("bob"))
	// The page works as Bob, and only SQL fails: NTLM cannot be delegated,
	// and the site's Kerberos-only constrained delegation cannot transition.
	mustContain(t, "curl --ntlm page", out, `This page is running as: <b>LAB\bob</b>`, "via NTLM (NTLMv2)", "The browser used the NTLM scheme",
		`data-hop="1" data-state="warn"`, "S4U2Proxy MSSQLSvc/sql.lab.local:1433: KDC_ERR_BADOPTION", `data-hop="2" data-state="fail"`,
		"Login failed for user &#39;NT AUTHORITY\\ANONYMOUS LOGON&#39;.")
	// The DC validated for the site (4776, with the workstation curl named);
	// the site logged Bob on (4624, NTLM V2); SQL Server logged the anonymous login.
	if e, ok := findEvent(t, l, func(e events.Event) bool { return e.ID == events.CredentialValidation }); !ok || e.Outcome != events.Success || e.Client == "" {
		t.Errorf("the DC's 4776: %+v", e)
	}
	if e, ok := findEvent(t, l, func(e events.Event) bool { return e.ID == events.LogonSuccess && e.Package == "NTLM" }); !ok || e.LMPackage != "NTLM V2" {
		t.Errorf("the site's 4624: %+v", e)
	}
	if e, ok := findEvent(t, l, func(e events.Event) bool { return e.ID == events.SQLLoginFailed }); !ok || e.Reason != "ANONYMOUS_NTLM" || e.AuthScheme != "NTLM" {
		t.Errorf("SQL Server's 18456: %+v", e)
	}

	// A wrong password: 401, the DC's 4776 failure with 0xC000006A, the site's 4625.
	out = curlNTLM(t, l, `LAB\bob`, "wrong", "-o", "/dev/null", "-w", "%{http_code}")
	if out != "401" {
		t.Errorf("wrong password: HTTP %s", out)
	}
	if e, ok := findEvent(t, l, func(e events.Event) bool { return e.ID == events.CredentialValidation }); !ok || e.Outcome != events.Failure || e.Status != "0xC000006A" {
		t.Errorf("the DC's 4776 for a wrong password: %+v", e)
	}
	if e, ok := findEvent(t, l, func(e events.Event) bool { return e.ID == events.LogonFailure && e.Package == "NTLM" }); !ok || e.Status != "0xC000006D/0xC000006A" {
		t.Errorf("the site's 4625: %+v", e)
	}
	// An unknown user and a disabled one: the DC's codes, through the site.
	if err := admin.Run(l.Store, []string{"account", "set", "alice", "disabled=true"}, io.Discard); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ user, password, status, top string }{
		{`LAB\mallory`, "x", "0xC0000064", "0xC000006D"},
		{`LAB\alice`, l.Password("alice"), "0xC0000072", "0xC000006E"},
	} {
		if out := curlNTLM(t, l, tc.user, tc.password, "-o", "/dev/null", "-w", "%{http_code}"); out != "401" {
			t.Errorf("%s: HTTP %s", tc.user, out)
		}
		if e, ok := findEvent(t, l, func(e events.Event) bool { return e.ID == events.CredentialValidation }); !ok || e.Status != tc.status {
			t.Errorf("%s: the DC's 4776 %+v, want %s", tc.user, e, tc.status)
		}
		if e, ok := findEvent(t, l, func(e events.Event) bool { return e.ID == events.LogonFailure && e.Package == "NTLM" }); !ok || e.Status != tc.top+"/"+tc.status {
			t.Errorf("%s: the site's 4625 %+v", tc.user, e)
		}
	}
}

// Negotiate falling back to NTLM, with MIT's GSS-API and gss-ntlmssp (the
// NTLM mechanism Debian ships): Bob has no Kerberos ticket, so curl's SPNEGO
// offers NTLM alone, as Windows does when it cannot get a ticket.
func TestCurlNegotiateFallsBackToNTLM(t *testing.T) {
	if _, err := os.Stat("/etc/gss/mech.d/mech.ntlmssp.conf"); err != nil {
		peer.Missing(t, "gss-ntlmssp (apt-get install gss-ntlmssp): "+err.Error())
	}
	l := startLab(t, nil)
	creds := filepath.Join(l.StateDir, NTLMUsersFile) // gss-ntlmssp's format, written by the lab
	t.Setenv("NTLM_USER_FILE", creds)
	p := webPort(l)
	out, err := tool(t, l, filepath.Join(t.TempDir(), "empty-cc"), "", "curl", "-s", "--negotiate", "-u", ":", "--resolve", "web.lab.local:"+p+":127.0.0.1", "http://web.lab.local:"+p+"/")
	if err != nil {
		t.Fatalf("curl: %v\n%s", err, out)
	}
	mustContain(t, "curl --negotiate (gss-ntlmssp) page", out, `This page is running as: <b>LAB\bob</b>`, "via NTLM (NTLMv2, inside Negotiate)",
		"could not get a Kerberos ticket for this site, so it fell back to NTLM", "ANONYMOUS LOGON")
}

// FreeTDS tsql with a domain login (LAB\bob: NTLMv2) and go-mssqldb with a
// domain user id and no authenticator (its stock NTLM): SQL Server has the DC
// validate (4776 over svc_mssqlserver's secure channel), and auth_scheme
// says NTLM.
func TestSQLNTLMClients(t *testing.T) {
	l := startLab(t, nil)
	dir := t.TempDir()
	conf := fmt.Sprintf("[labsql]\n\thost = 127.0.0.1\n\tport = %s\n\ttds version = 7.4\n\tuse ntlmv2 = yes\n", sqlPort(l))
	if err := os.WriteFile(filepath.Join(dir, "freetds.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("FREETDSCONF", filepath.Join(dir, "freetds.conf"))
	q := "SELECT SUSER_SNAME()\ngo\nSELECT auth_scheme FROM sys.dm_exec_connections WHERE session_id = @@SPID\ngo\nquit\n"
	out, err := tool(t, l, filepath.Join(dir, "none"), q, "tsql", "-S", "labsql", "-U", `LAB\bob`, "-P", l.Password("bob"))
	if err != nil {
		t.Fatalf("tsql: %v\n%s", err, out)
	}
	mustContain(t, "tsql NTLM", out, `LAB\bob`, "NTLM")
	if e, ok := findEvent(t, l, func(e events.Event) bool { return e.ID == events.CredentialValidation }); !ok || e.Outcome != events.Success {
		t.Errorf("the DC's 4776 for SQL Server: %+v", e)
	}
	out, _ = tool(t, l, filepath.Join(dir, "none"), q, "tsql", "-S", "labsql", "-U", `LAB\bob`, "-P", "wrong")
	mustContain(t, "tsql NTLM, wrong password", out, "18452", "untrusted domain")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := mssql.NewConnector("sqlserver://" + l.SQLAddr + "?user+id=LAB%5Cbob&password=" + url.QueryEscape(l.Password("bob")) + "&dial+timeout=5")
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	defer db.Close()
	var scheme string
	if err := db.QueryRowContext(ctx, "SELECT auth_scheme FROM sys.dm_exec_connections WHERE session_id = @@SPID").Scan(&scheme); err != nil || scheme != "NTLM" {
		t.Fatalf("go-mssqldb ntlm: auth_scheme %q, %v", scheme, err)
	}
}

// Bob's workstation opens the site by IP address: Windows asks no ticket
// for an IP, Negotiate uses NTLM at once; with outgoing NTLM denied there is
// no way in.
func TestClientByIPUsesNTLM(t *testing.T) {
	l := startLab(t, nil)
	c := bobClient(t, l, 0)
	ctx := context.Background()
	if _, err := c.Kinit(ctx, "bob", l.Password("bob")); err != nil {
		t.Fatal(err)
	}
	ipURL := "http://" + l.WebAddr + "/"
	r, err := c.Get(ctx, ipURL, client.GetOptions{Accept: "application/json"})
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != 200 || r.Mechanism != "NTLM" || !strings.Contains(r.Fallback, "IP address") || r.Ticket != nil {
		t.Fatalf("by IP: HTTP %d, mechanism %q, fallback %q", r.Status, r.Mechanism, r.Fallback)
	}
	if _, ok := findEvent(t, l, func(e events.Event) bool {
		return e.ID == events.ServiceTicket && strings.Contains(e.Service, "127.0.0.1")
	}); ok {
		t.Error("the workstation asked the KDC for a ticket to an IP address")
	}
	if _, err := c.Get(ctx, ipURL, client.GetOptions{NoNTLM: true}); err == nil {
		t.Error("with NTLM refused, opening the site by IP should fail")
	}
	// By name it is Kerberos again.
	r, err = c.Get(ctx, l.WebURL, client.GetOptions{})
	if err != nil || r.Mechanism != "Kerberos" || r.Fallback != "" {
		t.Fatalf("by name: %+v %v", r, err)
	}
}
