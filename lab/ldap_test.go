package lab

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/doublehop/doublehop/directory"
	"github.com/doublehop/doublehop/events"
	"github.com/doublehop/doublehop/internal/peer"
	"github.com/doublehop/doublehop/ntlm"
)

// The DC's LDAP face, proven by the tools admins and security people use:
// OpenLDAP's ldapsearch/ldapmodify with a Kerberos (SASL GSSAPI) bind, and
// impacket's findDelegation.py, GetUserSPNs.py and rbcd.py. The lab listens on
// its own loopback address with the KDC on 88 and LDAP on 389, as those tools
// expect; OpenLDAP reaches dc.lab.local through the lab's hosts file, mounted
// over /etc/hosts in a private mount namespace for the one command.

const ldapHost = "127.0.1.89"

func ldapLab(t *testing.T, patch func(*directory.Lab)) *Lab {
	t.Helper()
	return startLabWith(t, patch, Options{Host: ldapHost, KDCPort: 88, LDAPPort: 389, LDAPSPort: 636})
}

// ldapTool runs an OpenLDAP tool as a workstation of the lab would: the
// lab's names resolve, the ccache is the user's.
func ldapTool(t *testing.T, l *Lab, ccache, stdin, name string, args ...string) (string, int) {
	t.Helper()
	path := peer.Need1(t, name)
	if _, err := os.Stat("/usr/lib/x86_64-linux-gnu/sasl2/libgssapiv2.so"); err != nil {
		peer.Missing(t, "the SASL GSSAPI module (apt-get install libsasl2-modules-gssapi-mit)")
	}
	unshare := peer.Need1(t, "unshare")
	hosts := filepath.Join(t.TempDir(), "hosts")
	b, err := os.ReadFile(filepath.Join(l.StateDir, HostsFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(hosts, append([]byte("127.0.0.1 localhost\n"), b...), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, unshare, append([]string{"-m", "sh", "-c", `mount --bind "$0" /etc/hosts && exec "$@"`, hosts, path}, args...)...)
	cmd.Env = append(os.Environ(), "KRB5_CONFIG="+l.Krb5Conf(), "KRB5CCNAME=FILE:"+ccache, "LDAPTLS_REQCERT=never", "LDAPCONF=/dev/null")
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			if strings.Contains(out.String(), "mount") && strings.Contains(out.String(), "ermission") {
				peer.Missing(t, "a private mount namespace (unshare -m needs root): "+out.String())
			}
			return out.String(), ee.ExitCode()
		}
		t.Fatalf("%s: %v", name, err)
	}
	return out.String(), 0
}

func kinitAs(t *testing.T, l *Lab, user string) string {
	t.Helper()
	cc := filepath.Join(t.TempDir(), "cc-"+user)
	if out, err := tool(t, l, cc, l.Password(user)+"\n", "kinit", user); err != nil {
		t.Fatalf("kinit %s: %v\n%s", user, err, out)
	}
	return cc
}

const labBase = "DC=lab,DC=local"

func TestLDAPSearchWithKerberos(t *testing.T) {
	l := ldapLab(t, nil)
	cc := kinitAs(t, l, "bob")
	search := func(args ...string) string {
		t.Helper()
		out, code := ldapTool(t, l, cc, "", "ldapsearch", append([]string{"-N", "-Y", "GSSAPI", "-H", "ldap://dc.lab.local", "-b", labBase}, args...)...)
		if code != 0 {
			t.Fatalf("ldapsearch %v: exit %d\n%s", args, code, out)
		}
		return out
	}
	// The seed's LDP step: the machine account holds HOST SPNs and no HTTP SPN.
	out := search("(sAMAccountName=WEB$)", "servicePrincipalName", "userAccountControl")
	mustContain(t, "WEB$", out, "SASL SSF: 256", "dn: CN=WEB,CN=Computers,DC=lab,DC=local", "servicePrincipalName: HOST/web.lab.local", "userAccountControl: 4096")
	if strings.Contains(out, "HTTP/") {
		t.Fatalf("WEB$ shows an HTTP SPN:\n%s", out)
	}
	// The site's account after the fix: its HTTP SPNs and 0x10200.
	out = search("(sAMAccountName=svc_iispool)", "servicePrincipalName", "userAccountControl", "msDS-AllowedToDelegateTo", "unicodePwd")
	mustContain(t, "svc_iispool", out, "servicePrincipalName: HTTP/web.lab.local", "userAccountControl: 66048",
		"msDS-AllowedToDelegateTo: MSSQLSvc/sql.lab.local:1433", "OU=SVC_Accounts")
	if strings.Contains(strings.ToLower(out), "unicodepwd:") {
		t.Fatalf("a secret attribute was returned:\n%s", out)
	}
	// sPNMappings, where HTTP/web resolves to the machine account's HOST SPN.
	out = search("-s", "base", "-b", "CN=Directory Service,CN=Windows NT,CN=Services,CN=Configuration,"+labBase, "(objectClass=*)", "sPNMappings")
	mustContain(t, "sPNMappings", out, "sPNMappings: host=alerter,appmgmt", ",http,")
	// Substring and the bitwise matching rule, as tools filter accounts.
	out = search("(&(servicePrincipalName=HTTP/*)(userAccountControl:1.2.840.113556.1.4.803:=512)(!(userAccountControl:1.2.840.113556.1.4.803:=2)))", "sAMAccountName")
	mustContain(t, "HTTP SPNs", out, "sAMAccountName: svc_iispool", "numEntries: 1")
	// Paged results (RFC 2696), two entries a page, over every account.
	out = search("-E", "pr=2/noprompt", "(objectCategory=person)", "sAMAccountName")
	users := 0
	for _, a := range l.Store.View().Lab.Accounts {
		if a.Type != directory.TypeComputer {
			users++
		}
	}
	if got := strings.Count(out, "sAMAccountName: "); got != users || !strings.Contains(out, "pagedresults") {
		t.Fatalf("paged search returned %d of %d person entries:\n%s", got, users, out)
	}
	// The bind is a Kerberos logon: the KDC's 4769 for ldap/dc.lab.local and the DC's 4624.
	if _, ok := findEvent(t, l, func(e events.Event) bool {
		return e.ID == events.ServiceTicket && e.Service == "ldap/dc.lab.local" && e.Account == "DC$" && e.Client == "bob@LAB.LOCAL"
	}); !ok {
		t.Fatal("no 4769 for ldap/dc.lab.local")
	}
	if _, ok := findEvent(t, l, func(e events.Event) bool {
		return e.ID == events.LogonSuccess && e.Service == "ldap/dc.lab.local" && e.Package == "Kerberos"
	}); !ok {
		t.Fatal("no 4624 for the LDAP bind")
	}

	// GSS-SPNEGO, the mechanism Windows tools use: the layer follows the context's flags.
	out, code := ldapTool(t, l, cc, "", "ldapsearch", "-N", "-Y", "GSS-SPNEGO", "-H", "ldap://dc.lab.local", "-b", labBase, "(sAMAccountName=bob)", "dn")
	if code != 0 || !strings.Contains(out, "SASL SSF: 256") || !strings.Contains(out, "dn: CN=bob,CN=Users,DC=lab,DC=local") {
		t.Fatalf("GSS-SPNEGO bind: exit %d\n%s", code, out)
	}
	// Anonymous: the rootDSE, and nothing else.
	out, code = ldapTool(t, l, cc, "", "ldapsearch", "-x", "-H", "ldap://dc.lab.local", "-s", "base", "-b", "", "(objectClass=*)")
	if code != 0 {
		t.Fatalf("rootDSE: exit %d\n%s", code, out)
	}
	mustContain(t, "rootDSE", out, "defaultNamingContext: DC=lab,DC=local", "configurationNamingContext: CN=Configuration,DC=lab,DC=local",
		"supportedSASLMechanisms: GSSAPI", "supportedSASLMechanisms: GSS-SPNEGO", "supportedControl: 1.2.840.113556.1.4.319", "dnsHostName: dc.lab.local")
	out, code = ldapTool(t, l, cc, "", "ldapsearch", "-x", "-H", "ldap://dc.lab.local", "-b", labBase, "(sAMAccountName=bob)")
	if code != 1 || !strings.Contains(out, "successful bind must be completed") {
		t.Fatalf("anonymous search: exit %d\n%s", code, out)
	}
	// A password in clear text is refused; over StartTLS it binds.
	out, code = ldapTool(t, l, cc, "", "ldapsearch", "-x", "-H", "ldap://dc.lab.local", "-D", `LAB\bob`, "-w", l.Password("bob"), "-b", labBase, "(sAMAccountName=bob)", "dn")
	if code != 8 || !strings.Contains(out, "00002028") {
		t.Fatalf("simple bind in clear: exit %d\n%s", code, out)
	}
	out, code = ldapTool(t, l, cc, "", "ldapsearch", "-ZZ", "-x", "-H", "ldap://dc.lab.local", "-D", "bob@lab.local", "-w", l.Password("bob"), "-b", labBase, "(sAMAccountName=bob)", "dn")
	if code != 0 || !strings.Contains(out, "dn: CN=bob,CN=Users,DC=lab,DC=local") {
		t.Fatalf("simple bind over StartTLS: exit %d\n%s", code, out)
	}
}

func TestLDAPModifyWithADRules(t *testing.T) {
	l := ldapLab(t, nil)
	admin := kinitAs(t, l, "administrator")
	modify := func(cc, ldif string) (string, int) {
		t.Helper()
		return ldapTool(t, l, cc, ldif, "ldapmodify", "-N", "-Y", "GSSAPI", "-H", "ldap://dc.lab.local")
	}
	pool := "CN=svc_iispool,OU=SVC_Accounts," + labBase
	// The seed's break: the HTTP SPNs removed from the site's account. The
	// KDC sees it at once: HTTP/web.lab.local now resolves to WEB$'s HOST SPN.
	out, code := modify(admin, "dn: "+pool+"\nchangetype: modify\ndelete: servicePrincipalName\nservicePrincipalName: HTTP/web.lab.local\nservicePrincipalName: HTTP/web\n")
	if code != 0 {
		t.Fatalf("delete SPNs: exit %d\n%s", code, out)
	}
	spn, _ := l.Store.View().ResolveSPN("HTTP/web.lab.local")
	if !strings.EqualFold(spn, "WEB$") {
		t.Fatalf("after the LDAP delete HTTP/web.lab.local resolves to %q, want WEB$", spn)
	}
	// The fix, as setspn -S writes it.
	if out, code = modify(admin, "dn: "+pool+"\nchangetype: modify\nadd: servicePrincipalName\nservicePrincipalName: HTTP/web.lab.local\n"); code != 0 {
		t.Fatalf("add SPN: exit %d\n%s", code, out)
	}
	cli, err := l.Admin("setspn", "-L", "svc_iispool")
	if err != nil || !strings.Contains(cli, "HTTP/web.lab.local") {
		t.Fatalf("the CLI does not see the LDAP write: %v\n%s", err, cli)
	}
	if _, ok := findEvent(t, l, func(e events.Event) bool {
		return e.ID == events.DirectoryChange && e.Client == "administrator@LAB.LOCAL" && e.Account == "svc_iispool" && strings.Contains(e.Message, "HTTP/web.lab.local")
	}); !ok {
		t.Fatal("no 5136 for the SPN write")
	}
	// AD 2012 R2+ refuses a duplicate SPN on write.
	out, code = modify(admin, "dn: CN=WEB,CN=Computers,"+labBase+"\nchangetype: modify\nadd: servicePrincipalName\nservicePrincipalName: HTTP/web.lab.local\n")
	if code != 19 || !strings.Contains(out, "00002113") {
		t.Fatalf("duplicate SPN: exit %d\n%s", code, out)
	}
	if _, ok := findEvent(t, l, func(e events.Event) bool { return e.ID == events.SPNNotUnique }); !ok {
		t.Fatal("no 2974 for the refused duplicate")
	}
	// setspn -S says the same through the CLI, and neither changed the directory.
	if out, err := l.Admin("setspn", "-S", "HTTP/web.lab.local", "WEB$"); err == nil || !strings.Contains(out+err.Error(), "Duplicate SPN found") {
		t.Fatalf("setspn -S of the duplicate: %v\n%s", err, out)
	}
	if owners := l.Store.View().SPNOwners("HTTP/web.lab.local"); len(owners) != 1 || owners[0].Name != "svc_iispool" {
		t.Fatalf("after both refusals HTTP/web.lab.local is on %v", owners)
	}
	// Delegation through userAccountControl: protocol transition on.
	if out, code = modify(admin, "dn: "+pool+"\nchangetype: modify\nreplace: userAccountControl\nuserAccountControl: 16843264\n"); code != 0 {
		t.Fatalf("UAC: exit %d\n%s", code, out)
	}
	if a := l.Store.View().Lab.Account("svc_iispool"); !a.Delegation.ProtocolTransition || a.Delegation.Mode != directory.DelegConstrained {
		t.Fatalf("UAC 0x1010200 gave delegation %+v", a.Delegation)
	}
	// A password reset travels only sealed (the SASL layer is confidential here).
	pw := "Alice-New-Passw0rd!"
	u := utf16.Encode([]rune(`"` + pw + `"`))
	raw := make([]byte, 2*len(u))
	for i, c := range u {
		raw[2*i], raw[2*i+1] = byte(c), byte(c>>8)
	}
	out, code = modify(admin, "dn: CN=alice,CN=Users,"+labBase+"\nchangetype: modify\nreplace: unicodePwd\nunicodePwd:: "+base64.StdEncoding.EncodeToString(raw)+"\n")
	if code != 0 {
		t.Fatalf("unicodePwd: exit %d\n%s", code, out)
	}
	cc := filepath.Join(t.TempDir(), "alice")
	if out, err := tool(t, l, cc, pw+"\n", "kinit", "alice"); err != nil {
		t.Fatalf("kinit with the password set over LDAP: %v\n%s", err, out)
	}
	// Anyone else: insufficientAccessRights, and the refusal is audited.
	bob := kinitAs(t, l, "bob")
	out, code = modify(bob, "dn: "+pool+"\nchangetype: modify\nadd: msDS-AllowedToDelegateTo\nmsDS-AllowedToDelegateTo: cifs/dc.lab.local\n")
	if code != 50 || !strings.Contains(out, "INSUFF_ACCESS_RIGHTS") {
		t.Fatalf("bob's write: exit %d\n%s", code, out)
	}
	if _, ok := findEvent(t, l, func(e events.Event) bool {
		return e.ID == events.ObjectOperation && e.Outcome == events.Failure && e.Client == "bob@LAB.LOCAL"
	}); !ok {
		t.Fatal("no 4662 failure for bob's write")
	}
}

// impacket's examples run with Debian's python3 (getST.py and the others).
func impacketExample(t *testing.T, name string, args ...string) (string, error) {
	return impacketIn(t, t.TempDir(), name, args...)
}

func impacketIn(t *testing.T, dir, name string, args ...string) (string, error) {
	t.Helper()
	py := peer.Need1(t, "/usr/bin/python3")
	script := "/usr/share/doc/python3-impacket/examples/" + name
	if _, err := os.Stat(script); err != nil {
		peer.Missing(t, "python3-impacket (apt-get install python3-impacket): "+err.Error())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, append([]string{script}, args...)...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestLDAPImpacket(t *testing.T) {
	l := ldapLab(t, nil)
	bob := "lab.local/bob:" + l.Password("bob")
	// Find the delegation in the domain: the site's constrained delegation to SQL.
	out, err := impacketExample(t, "findDelegation.py", "-dc-ip", ldapHost, bob)
	if err != nil {
		t.Fatalf("findDelegation.py: %v\n%s", err, out)
	}
	mustContain(t, "findDelegation.py", out, "svc_iispool", "Constrained", "MSSQLSvc/sql.lab.local:1433")
	// Kerberoasting: a service ticket for svc_mssqlserver, AES as the domain is.
	out, err = impacketExample(t, "GetUserSPNs.py", "-dc-ip", ldapHost, "-request", bob)
	if err != nil {
		t.Fatalf("GetUserSPNs.py: %v\n%s", err, out)
	}
	mustContain(t, "GetUserSPNs.py", out, "MSSQLSvc/sql.lab.local:1433", "svc_mssqlserver", "$krb5tgs$18$")
	if strings.Contains(out, "$krb5tgs$23$") {
		t.Fatalf("an RC4 ticket in an AES-only domain:\n%s", out)
	}
	// RBCD written over LDAP the way attackers and admins do: WEB$ may now act
	// on behalf of users to SQL$'s services, and the directory says so.
	// rbcd.py binds with ldap3's NTLM, whose MD4 Debian's OpenSSL 3 lacks:
	// it is given the NT hash, as attackers usually do.
	hashes := func(user string) []string {
		return []string{"-hashes", ":" + hex.EncodeToString(ntlm.NTHash(l.Password(user))), "lab.local/" + user}
	}
	out, err = impacketExample(t, "rbcd.py", append([]string{"-dc-ip", ldapHost, "-delegate-from", "WEB$", "-delegate-to", "SQL$", "-action", "write"}, hashes("administrator")...)...)
	if err != nil {
		t.Fatalf("rbcd.py write: %v\n%s", err, out)
	}
	if got := l.Store.View().Lab.Account("SQL$").AllowedToActOnBehalfOf; len(got) != 1 || got[0] != "WEB$" {
		t.Fatalf("after rbcd.py SQL$ allows %v\n%s", got, out)
	}
	out, err = impacketExample(t, "rbcd.py", append([]string{"-dc-ip", ldapHost, "-delegate-to", "SQL$", "-action", "read"}, hashes("bob")...)...)
	if err != nil || !strings.Contains(out, "WEB$") {
		t.Fatalf("rbcd.py read: %v\n%s", err, out)
	}
	// "LDAP server signing requirements = Require signing" (Windows Server
	// 2025's default): impacket's unsigned NTLM bind is refused with AD's
	// strongerAuthRequired and a 2889, and impacket does what it does against
	// such a DC: it binds again over LDAPS (636), which works.
	if _, err := l.Admin("policy", "set", "ldap_signing_required=true"); err != nil {
		t.Fatal(err)
	}
	out, err = impacketExample(t, "findDelegation.py", "-dc-ip", ldapHost, bob)
	if err != nil || !strings.Contains(out, "MSSQLSvc/sql.lab.local:1433") {
		t.Fatalf("findDelegation.py under required signing (LDAPS fallback): %v\n%s", err, out)
	}
	if _, ok := findEvent(t, l, func(e events.Event) bool { return e.ID == events.LDAPUnsignedBind && e.Outcome == events.Failure }); !ok {
		t.Fatal("no 2889 for the refused unsigned bind")
	}
	cc := kinitAs(t, l, "bob")
	if out, code := ldapTool(t, l, cc, "", "ldapsearch", "-N", "-Y", "GSSAPI", "-H", "ldap://dc.lab.local", "-b", labBase, "(sAMAccountName=bob)", "dn"); code != 0 || !strings.Contains(out, "SASL SSF: 256") {
		t.Fatalf("a sealed GSSAPI bind under required signing: exit %d\n%s", code, out)
	}
	l.Admin("policy", "set", "ldap_signing_required=false")
	// bob may read it, not write it.
	out, _ = impacketExample(t, "rbcd.py", append([]string{"-dc-ip", ldapHost, "-delegate-from", "WS01$", "-delegate-to", "SQL$", "-action", "write"}, hashes("bob")...)...)
	if !strings.Contains(out, "INSUFF_ACCESS_RIGHTS") && !strings.Contains(strings.ToLower(out), "insufficient") {
		t.Fatalf("bob's rbcd.py write was not refused:\n%s", out)
	}
}
