package lab

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/doublehop/doublehop/events"
	"github.com/doublehop/doublehop/internal/peer"
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
}

// Negotiate falling back to NTLM, with MIT's GSS-API and gss-ntlmssp (the
// NTLM mechanism Debian ships): Bob has no Kerberos ticket, so curl's SPNEGO
// offers NTLM alone, as Windows does when it cannot get a ticket.
func TestCurlNegotiateFallsBackToNTLM(t *testing.T) {
	if _, err := os.Stat("/etc/gss/mech.d/mech.ntlmssp.conf"); err != nil {
		peer.Missing(t, "gss-ntlmssp (apt-get install gss-ntlmssp): "+err.Error())
	}
	l := startLab(t, nil)
	creds := filepath.Join(t.TempDir(), "ntlm-users")
	if err := os.WriteFile(creds, []byte("LAB:bob:"+l.Password("bob")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("NTLM_USER_FILE", creds)
	p := webPort(l)
	out, err := tool(t, l, filepath.Join(t.TempDir(), "empty-cc"), "", "curl", "-s", "--negotiate", "-u", ":", "--resolve", "web.lab.local:"+p+":127.0.0.1", "http://web.lab.local:"+p+"/")
	if err != nil {
		t.Fatalf("curl: %v\n%s", err, out)
	}
	mustContain(t, "curl --negotiate (gss-ntlmssp) page", out, `This page is running as: <b>LAB\bob</b>`, "via NTLM (NTLMv2, inside Negotiate)",
		"could not get a Kerberos ticket for this site, so it fell back to NTLM", "ANONYMOUS LOGON")
}
