package lab

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/doublehop/doublehop/directory"
	"github.com/doublehop/doublehop/internal/peer"
)

// impacket (Debian python3-impacket), the tool security people learn
// delegation with, against the lab's KDC on port 88 of its own loopback
// address: each S4U request gets the answer Active Directory gives.

const impacketHost = "127.0.1.88"

func impacketLab(t *testing.T, patch func(*directory.Lab)) *Lab {
	t.Helper()
	return startLabWith(t, patch, Options{Host: impacketHost, KDCPort: 88})
}

// getST runs impacket's getST.py in dir and returns its output.
func getST(t *testing.T, dir string, args ...string) (string, error) {
	t.Helper()
	return impacketIn(t, dir, "getST.py", append([]string{"-dc-ip", impacketHost}, args...)...)
}

func TestImpacketS4U(t *testing.T) {
	l := impacketLab(t, nil)
	pool := "LAB.LOCAL/svc_iispool:" + l.Password("svc_iispool")
	sqlSPN := "MSSQLSvc/sql.lab.local:1433"

	// Kerberos-only constrained delegation: S4U2Self gives a ticket that is
	// not forwardable, so S4U2Proxy is refused (KDC_ERR_BADOPTION).
	dir := t.TempDir()
	out, _ := getST(t, dir, "-spn", sqlSPN, "-impersonate", "bob", pool)
	if !strings.Contains(out, "KDC_ERR_BADOPTION") {
		t.Fatalf("Kerberos-only KCD: impacket said:\n%s", out)
	}

	// Protocol transition: the same request works, and SQL Server takes the
	// ticket impacket saved as Bob's.
	if _, err := l.Admin("delegation", "set", "svc_iispool", "constrained", "--to", sqlSPN, "--protocol-transition"); err != nil {
		t.Fatal(err)
	}
	dir = t.TempDir()
	out, err := getST(t, dir, "-spn", sqlSPN, "-impersonate", "bob", pool)
	caches, _ := filepath.Glob(filepath.Join(dir, "*.ccache"))
	if err != nil || len(caches) != 1 {
		t.Fatalf("protocol transition: %v\n%s", err, out)
	}
	// FreeTDS over MIT GSS-API uses the service ticket as it is (no TGT needed).
	conf := fmt.Sprintf("[labsql]\n\thost = %s\n\tport = %s\n\ttds version = 7.4\n\tspn = %s\n\trealm = LAB.LOCAL\n", impacketHost, sqlPort(l), sqlSPN)
	if err := os.WriteFile(filepath.Join(dir, "freetds.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("FREETDSCONF", filepath.Join(dir, "freetds.conf"))
	q := "SELECT SUSER_SNAME()\ngo\nSELECT auth_scheme FROM sys.dm_exec_connections WHERE session_id = @@SPID\ngo\nquit\n"
	out, err = tool(t, l, caches[0], q, "tsql", "-S", "labsql")
	if err != nil {
		t.Fatalf("tsql with impacket's ticket: %v\n%s", err, out)
	}
	mustContain(t, "tsql with impacket's ticket", out, `LAB\bob`, "KERBEROS")

	// Bronze Bit (CVE-2020-17049): impacket flips the forwardable bit of the
	// S4U2Self ticket; the PAC ticket signature gives it away.
	if _, err := l.Admin("delegation", "set", "svc_iispool", "constrained", "--to", sqlSPN); err != nil {
		t.Fatal(err)
	}
	out, _ = getST(t, t.TempDir(), "-spn", sqlSPN, "-impersonate", "bob", "-force-forwardable", pool)
	if !strings.Contains(out, "KRB_AP_ERR_MODIFIED") {
		t.Fatalf("-force-forwardable: impacket said:\n%s", out)
	}

	// Resource-based: the back end allows svc_iispool, which has no delegation
	// of its own; RBCD takes the non-forwardable S4U2Self ticket (MS-SFU 3.2.5.2.3).
	l.Admin("delegation", "set", "svc_iispool", "none")
	if _, err := l.Admin("delegation", "rbcd", "svc_mssqlserver", "--allow", "svc_iispool"); err != nil {
		t.Fatal(err)
	}
	rbcd := t.TempDir()
	out, err = getST(t, rbcd, "-spn", sqlSPN, "-impersonate", "bob", pool)
	if caches, _ := filepath.Glob(filepath.Join(rbcd, "*.ccache")); err != nil || len(caches) != 1 {
		t.Fatalf("RBCD: %v\n%s", err, out)
	}
	l.Admin("delegation", "rbcd", "svc_mssqlserver", "--clear")

	// A sensitive user cannot be impersonated, even with protocol transition.
	l.Admin("delegation", "set", "svc_iispool", "constrained", "--to", sqlSPN, "--protocol-transition")
	l.Admin("account", "set", "bob", "sensitive=true")
	out, _ = getST(t, t.TempDir(), "-spn", sqlSPN, "-impersonate", "bob", pool)
	if !strings.Contains(out, "KDC_ERR_BADOPTION") {
		t.Fatalf("sensitive user: impacket said:\n%s", out)
	}
	// Nor a member of Protected Users.
	l.Admin("account", "set", "bob", "sensitive=false")
	l.Admin("account", "set", "bob", "groups=+Protected Users")
	out, _ = getST(t, t.TempDir(), "-spn", sqlSPN, "-impersonate", "bob", pool)
	if !strings.Contains(out, "KDC_ERR_BADOPTION") {
		t.Fatalf("Protected Users: impacket said:\n%s", out)
	}
}

// python3-gssapi (MIT's GSS-API from Python) initiates to HTTP/web.lab.local
// with Bob's MIT cache, and urllib sends the token: the page is Bob's.
func TestPythonGSSAPI(t *testing.T) {
	l := startLab(t, nil)
	py := peer.Need1(t, "/usr/bin/python3")
	if out, err := exec.Command(py, "-c", "import gssapi").CombinedOutput(); err != nil {
		peer.Missing(t, "python3-gssapi (apt-get install python3-gssapi): "+string(out))
	}
	cc := filepath.Join(t.TempDir(), "cc")
	if out, err := tool(t, l, cc, l.Password("bob")+"\n", "kinit", "bob"); err != nil {
		t.Fatalf("kinit: %v\n%s", err, out)
	}
	script := `
import base64, sys, urllib.request, gssapi
name = gssapi.Name('HTTP@web.lab.local', gssapi.NameType.hostbased_service)
ctx = gssapi.SecurityContext(name=name, usage='initiate', flags=gssapi.RequirementFlag.mutual_authentication)
tok = ctx.step()
req = urllib.request.Request(sys.argv[1], headers={'Host': 'web.lab.local:' + sys.argv[2], 'Accept': 'application/json',
    'Authorization': 'Negotiate ' + base64.b64encode(tok).decode()})
with urllib.request.urlopen(req) as r:
    for v in r.headers.get_all('WWW-Authenticate') or []:
        if v.startswith('Negotiate '):
            ctx.step(base64.b64decode(v.split(' ', 1)[1]))
    print('mutual', ctx.complete)
    print(r.read().decode())
`
	_, port, _ := strings.Cut(l.WebAddr, ":")
	out, err := tool(t, l, cc, "", py, "-c", script, "http://"+l.WebAddr+"/", port)
	if err != nil {
		t.Fatalf("python3-gssapi: %v\n%s", err, out)
	}
	mustContain(t, "python3-gssapi", out, "mutual True", `"running_as":"LAB\\bob"`, `"auth_scheme":"KERBEROS"`)
}
