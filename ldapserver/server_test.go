package ldapserver

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/doublehop/doublehop/ldap"

	"github.com/doublehop/doublehop/directory"
	"github.com/doublehop/doublehop/events"
	ber "github.com/go-asn1-ber/asn1-ber"
	goldap "github.com/go-ldap/ldap/v3"
)

// These tests speak to the server with go-ldap (a kept client library): the
// behaviour OpenLDAP and impacket rely on, checked in Go. The Kerberos binds
// are proven by the real tools in package lab.

type recorder struct{ ch chan events.Event }

func (r recorder) Emit(e events.Event) {
	select {
	case r.ch <- e:
	default:
	}
}

func startServer(t testing.TB, patch func(*directory.Lab)) (*directory.Store, string, chan events.Event) {
	t.Helper()
	seed := directory.Default()
	if patch != nil {
		patch(seed)
	}
	st, err := directory.Open(t.TempDir(), seed)
	if err != nil {
		t.Fatal(err)
	}
	ev := make(chan events.Event, 64)
	s, err := New(Config{Directory: st, Events: recorder{ev}, MaxConns: 8})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	return st, ln.Addr().String(), ev
}

func dial(t testing.TB, addr string) *goldap.Conn {
	t.Helper()
	c, err := goldap.DialURL("ldap://" + addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// bindTLS binds as a lab account over StartTLS (a simple bind in clear is refused).
func bindTLS(t *testing.T, addr, user, password string) *goldap.Conn {
	t.Helper()
	c := dial(t, addr)
	if err := c.StartTLS(&tls.Config{InsecureSkipVerify: true}); err != nil {
		t.Fatal(err)
	}
	if err := c.Bind(user, password); err != nil {
		t.Fatalf("bind %s: %v", user, err)
	}
	return c
}

func resultCode(err error) uint16 {
	var le *goldap.Error
	if errors.As(err, &le) {
		return le.ResultCode
	}
	return 0xffff
}

func TestRootDSEAnonymousOnly(t *testing.T) {
	_, addr, _ := startServer(t, nil)
	c := dial(t, addr)
	r, err := c.Search(goldap.NewSearchRequest("", goldap.ScopeBaseObject, 0, 0, 0, false, "(objectClass=*)", nil, nil))
	if err != nil || len(r.Entries) != 1 {
		t.Fatalf("rootDSE: %v %v", err, r)
	}
	e := r.Entries[0]
	if e.GetAttributeValue("defaultNamingContext") != "DC=lab,DC=local" || !contains(e.GetAttributeValues("supportedSASLMechanisms"), "GSSAPI") {
		t.Fatalf("rootDSE %v", e.Attributes)
	}
	_, err = c.Search(goldap.NewSearchRequest("DC=lab,DC=local", goldap.ScopeWholeSubtree, 0, 0, 0, false, "(objectClass=*)", nil, nil))
	if resultCode(err) != uint16(ldap.OperationsError) {
		t.Fatalf("anonymous subtree search: %v", err)
	}
	// A password in clear text: strongerAuthRequired, AD's message.
	err = c.Bind("bob@lab.local", "Bob-Passw0rd!")
	if resultCode(err) != uint16(ldap.StrongerAuthRequired) || !strings.Contains(err.Error(), "00002028") {
		t.Fatalf("simple bind in clear: %v", err)
	}
}

func TestLDAPS(t *testing.T) {
	st, err := directory.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Directory: st})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.ServeLDAPS(ctx, ln) }()
	defer func() { cancel(); <-done }()
	c, err := goldap.DialURL("ldaps://"+ln.Addr().String(), goldap.DialWithTLSConfig(&tls.Config{InsecureSkipVerify: true}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Bind("bob@lab.local", "Bob-Passw0rd!"); err != nil {
		t.Fatalf("simple bind over LDAPS: %v", err)
	}
	if err := c.StartTLS(&tls.Config{InsecureSkipVerify: true}); err == nil {
		t.Fatal("StartTLS inside LDAPS was accepted")
	}
}

func TestSimpleBindInClearAsANamedSetting(t *testing.T) {
	_, addr, _ := startServer(t, func(l *directory.Lab) { l.Policy.LDAPSimpleBindInClear = true })
	c := dial(t, addr)
	if err := c.Bind(`LAB\bob`, "Bob-Passw0rd!"); err != nil {
		t.Fatalf("with ldap_simple_bind_in_clear: %v", err)
	}
	if err := c.Bind("bob", "wrong"); resultCode(err) != uint16(ldap.InvalidCredentials) || !strings.Contains(err.Error(), "data 52e") {
		t.Fatalf("bad password: %v", err)
	}
}

func TestSearchMatchesLikeAD(t *testing.T) {
	_, addr, _ := startServer(t, nil)
	c := bindTLS(t, addr, "CN=bob,CN=Users,DC=lab,DC=local", "Bob-Passw0rd!")
	names := func(filter string) []string {
		t.Helper()
		r, err := c.Search(goldap.NewSearchRequest("DC=lab,DC=local", goldap.ScopeWholeSubtree, 0, 0, 0, false, filter, []string{"sAMAccountName"}, nil))
		if err != nil {
			t.Fatalf("%s: %v", filter, err)
		}
		var out []string
		for _, e := range r.Entries {
			out = append(out, e.GetAttributeValue("sAMAccountName"))
		}
		return out
	}
	for filter, want := range map[string]string{
		"(servicePrincipalName=HTTP/*)":                                                                         "svc_iispool",
		"(servicePrincipalName=*sql.lab.local:1433)":                                                            "svc_mssqlserver",
		"(&(objectCategory=computer)(userAccountControl:1.2.840.113556.1.4.803:=524288))":                       "DC$",
		"(msDS-AllowedToDelegateTo=mssqlsvc/SQL.lab.local:1433)":                                                "svc_iispool",
		"(&(objectClass=user)(!(objectCategory=computer))(memberOf=CN=Domain Admins,CN=Users,DC=lab,DC=local))": "administrator",
		"(objectSid=S-1-5-21-3623811015-3361044348-30300820-1105)":                                              "bob",
		"(&(sAMAccountName=krbtgt)(userAccountControl:1.2.840.113556.1.4.804:=2))":                              "krbtgt",
		"(&(objectClass=group)(cn=Sales))":                                                                      "Sales",
	} {
		if got := names(filter); len(got) != 1 || got[0] != want {
			t.Errorf("%s = %v, want [%s]", filter, got, want)
		}
	}
	// An attribute an entry lacks is Undefined: NOT of it does not match.
	if got := names("(&(objectClass=container)(!(userAccountControl:1.2.840.113556.1.4.803:=2)))"); len(got) != 0 {
		t.Errorf("containers matched a NOT on a missing attribute: %v", got)
	}
	// Secret attributes are neither returned nor matched.
	r, err := c.Search(goldap.NewSearchRequest("DC=lab,DC=local", goldap.ScopeWholeSubtree, 0, 0, 0, false, "(unicodePwd=*)", []string{"*", "unicodePwd"}, nil))
	if err != nil || len(r.Entries) != 0 {
		t.Fatalf("unicodePwd search: %v %d", err, len(r.Entries))
	}
	// Paging: every user in pages of 2, each page a fresh request with the cookie.
	r, err = c.SearchWithPaging(goldap.NewSearchRequest("DC=lab,DC=local", goldap.ScopeWholeSubtree, 0, 0, 0, false, "(sAMAccountType=805306368)", []string{"sAMAccountName"}, nil), 2)
	if err != nil || len(r.Entries) != 6 {
		t.Fatalf("paged: %v, %d entries", err, len(r.Entries))
	}
	// Size limit.
	_, err = c.Search(goldap.NewSearchRequest("DC=lab,DC=local", goldap.ScopeWholeSubtree, 0, 2, 0, false, "(objectClass=user)", nil, nil))
	if resultCode(err) != uint16(ldap.SizeLimitExceeded) {
		t.Fatalf("size limit: %v", err)
	}
	// Scopes.
	r, err = c.Search(goldap.NewSearchRequest("CN=Computers,DC=lab,DC=local", goldap.ScopeSingleLevel, 0, 0, 0, false, "(objectClass=*)", []string{"1.1"}, nil))
	if err != nil || len(r.Entries) != 3 || len(r.Entries[0].Attributes) != 0 {
		t.Fatalf("one-level under Computers: %v %v", err, r.Entries)
	}
	if _, err = c.Search(goldap.NewSearchRequest("CN=nowhere,DC=lab,DC=local", goldap.ScopeBaseObject, 0, 0, 0, false, "(objectClass=*)", nil, nil)); resultCode(err) != uint16(ldap.NoSuchObject) {
		t.Fatalf("missing base: %v", err)
	}
	// A critical ldap.NewControl the DC does not know.
	_, err = c.Search(goldap.NewSearchRequest("DC=lab,DC=local", goldap.ScopeBaseObject, 0, 0, 0, false, "(objectClass=*)", nil,
		[]goldap.Control{goldap.NewControlString("1.2.3.4.5", true, "")}))
	if resultCode(err) != uint16(ldap.UnavailableCriticalExtension) {
		t.Fatalf("unknown critical ldap.NewControl: %v", err)
	}
}

func TestWritesNeedAnAdministrator(t *testing.T) {
	st, addr, ev := startServer(t, nil)
	pool := "CN=svc_iispool,OU=SVC_Accounts,DC=lab,DC=local"
	bob := bindTLS(t, addr, "bob@lab.local", "Bob-Passw0rd!")
	m := goldap.NewModifyRequest(pool, nil)
	m.Add("servicePrincipalName", []string{"HTTP/intranet.lab.local"})
	if err := bob.Modify(m); resultCode(err) != uint16(ldap.InsufficientAccessRights) {
		t.Fatalf("bob's modify: %v", err)
	}
	admin := bindTLS(t, addr, `LAB\administrator`, "Admin-Passw0rd!")
	if err := admin.Modify(m); err != nil {
		t.Fatalf("admin's modify: %v", err)
	}
	if owners := st.View().SPNOwners("http/intranet.lab.local"); len(owners) != 1 || owners[0].Name != "svc_iispool" {
		t.Fatalf("the directory does not hold the SPN: %v", owners)
	}
	// Duplicate on write (MS-ADTS 3.1.1.5.1.3).
	dup := goldap.NewModifyRequest("CN=WEB,CN=Computers,DC=lab,DC=local", nil)
	dup.Add("servicePrincipalName", []string{"http/INTRANET.lab.local"})
	if err := admin.Modify(dup); resultCode(err) != uint16(ldap.ConstraintViolation) || !strings.Contains(err.Error(), "00002113") {
		t.Fatalf("duplicate SPN: %v", err)
	}
	// Value exists, and permissive modify (what rbcd.py and setspn-like tools send).
	if err := admin.Modify(m); resultCode(err) != uint16(ldap.AttributeOrValueExists) {
		t.Fatalf("adding an existing value: %v", err)
	}
	pm := goldap.NewModifyRequest(pool, []goldap.Control{goldap.NewControlString(ldap.OIDPermissiveModify, false, "")})
	pm.Add("servicePrincipalName", []string{"HTTP/intranet.lab.local"})
	if err := admin.Modify(pm); err != nil {
		t.Fatalf("permissive modify: %v", err)
	}
	// The account type bits cannot change.
	u := goldap.NewModifyRequest(pool, nil)
	u.Replace("userAccountControl", []string{"4096"})
	if err := admin.Modify(u); resultCode(err) != uint16(ldap.UnwillingToPerform) {
		t.Fatalf("type change: %v", err)
	}
	// A password only travels encrypted: over StartTLS it is set, kvno one up.
	pw := goldap.NewModifyRequest("CN=alice,CN=Users,DC=lab,DC=local", nil)
	pw.Replace("unicodePwd", []string{utf16Quoted("Alice-New-1!")})
	if err := admin.Modify(pw); err != nil {
		t.Fatalf("password reset over TLS: %v", err)
	}
	if a := st.View().Lab.Account("alice"); a.Password != "Alice-New-1!" || a.KVNO != 2 {
		t.Fatalf("alice after the reset: kvno %d", a.KVNO)
	}
	seen := map[int]bool{}
	timeout := time.After(2 * time.Second)
	for !seen[events.DirectoryChange] || !seen[events.ObjectOperation] || !seen[events.SPNNotUnique] {
		select {
		case e := <-ev:
			seen[e.ID] = true
			if strings.Contains(e.Message, "Alice-New-1!") {
				t.Fatalf("an event holds the password: %s", e.Message)
			}
		case <-timeout:
			t.Fatalf("events seen %v: want 5136, 4662 and 2974", seen)
		}
	}
}

func TestConnectionCap(t *testing.T) {
	_, addr, _ := startServer(t, nil)
	var conns []net.Conn
	for i := 0; i < 8; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	time.Sleep(50 * time.Millisecond)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 512)
	n, _ := c.Read(buf)
	m, err := ldap.DecodeMessage(buf[:n])
	if err != nil || m.ID != 0 || !strings.Contains(string(buf[:n]), "connection limit") {
		t.Fatalf("over the cap: %v %q", err, buf[:n])
	}
}

func TestBadInputClosesTheConnection(t *testing.T) {
	_, addr, _ := startServer(t, nil)
	// A filter of NOTs nested 200 deep around one presence test.
	filter := ber.NewString(ber.ClassContext, ber.TypePrimitive, 7, "cn", "present")
	for i := 0; i < 200; i++ {
		not := ber.Encode(ber.ClassContext, ber.TypeConstructed, 2, nil, "not")
		not.AppendChild(filter)
		filter = not
	}
	for name, b := range map[string][]byte{
		"not BER":           []byte("GET / HTTP/1.1\r\n\r\n"),
		"indefinite length": {0x30, 0x80, 0x02, 0x01, 0x01, 0x00, 0x00},
		"huge length":       {0x30, 0x84, 0x7f, 0xff, 0xff, 0xff},
		"deep filter":       ldap.Envelope(1, ldap.NewSearchOp("DC=lab,DC=local", ldap.ScopeSubtree, filter, nil, 0)),
	} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(3 * time.Second))
		c.Write(b)
		buf := make([]byte, 4096)
		n, _ := c.Read(buf)
		if n > 0 {
			if m, err := ldap.DecodeMessage(buf[:n]); err != nil || m.ID != 0 || m.Op.Tag != ldap.OpExtendedResponse {
				t.Errorf("%s: answer %x is not a notice of disconnection", name, buf[:n])
			}
		}
		if _, err := c.Read(buf); err == nil {
			t.Errorf("%s: the connection stayed open", name)
		}
		c.Close()
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func utf16Quoted(s string) string {
	var b []byte
	for _, r := range `"` + s + `"` {
		b = append(b, byte(r), byte(r>>8))
	}
	return string(b)
}

func TestGroupsOverLDAP(t *testing.T) {
	st, addr, _ := startServer(t, nil)
	admin := bindTLS(t, addr, `LAB\administrator`, "Admin-Passw0rd!")
	// Protected Users membership, as Samba's tests and ADUC write it.
	pu := goldap.NewModifyRequest("CN=Protected Users,CN=Users,DC=lab,DC=local", nil)
	pu.Add("member", []string{"CN=bob,CN=Users,DC=lab,DC=local"})
	if err := admin.Modify(pu); err != nil {
		t.Fatalf("add bob to Protected Users: %v", err)
	}
	if !st.View().Lab.Account("bob").CannotBeDelegated() {
		t.Fatal("bob is not in Protected Users after the LDAP write")
	}
	// A new group, a member, its deletion.
	add := goldap.NewAddRequest("CN=Web Admins,CN=Users,DC=lab,DC=local", nil)
	add.Attribute("objectClass", []string{"group"})
	if err := admin.Add(add); err != nil {
		t.Fatalf("add group: %v", err)
	}
	m := goldap.NewModifyRequest("CN=Web Admins,CN=Users,DC=lab,DC=local", nil)
	m.Add("member", []string{"CN=alice,CN=Users,DC=lab,DC=local"})
	if err := admin.Modify(m); err != nil {
		t.Fatalf("add alice: %v", err)
	}
	r, err := admin.Search(goldap.NewSearchRequest("DC=lab,DC=local", goldap.ScopeWholeSubtree, 0, 0, 0, false, "(sAMAccountName=alice)", []string{"memberOf"}, nil))
	if err != nil || !contains(r.Entries[0].GetAttributeValues("memberOf"), "CN=Web Admins,CN=Users,DC=lab,DC=local") {
		t.Fatalf("alice's memberOf: %v %v", err, r.Entries)
	}
	if err := admin.Del(goldap.NewDelRequest("CN=Web Admins,CN=Users,DC=lab,DC=local", nil)); err != nil {
		t.Fatalf("delete group: %v", err)
	}
	if st.View().Lab.Account("alice").InGroup("Web Admins") {
		t.Fatal("alice still in a deleted group")
	}
}
