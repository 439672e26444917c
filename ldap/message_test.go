package ldap

import (
	"errors"
	"testing"

	goldap "github.com/go-ldap/ldap/v3"
)

// The decoder and the filter engine on hostile input: any bytes give a
// message or a *ProtocolError, never a panic, and a decoded filter evaluates.
func FuzzDecodeMessage(f *testing.F) {
	for _, s := range []string{"(servicePrincipalName=HTTP/*)", "(&(objectClass=user)(!(userAccountControl:1.2.840.113556.1.4.803:=2)))", "(|(cn=a*b*c)(sn>=x))"} {
		p, err := goldap.CompileFilter(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(Envelope(1, NewSearchOp("DC=lab,DC=local", ScopeSubtree, p, []string{"cn"}, 0), NewControl(OIDPagedResults, false, PagingValue(5, nil))))
	}
	var entries []*Entry
	for _, spec := range [][]string{
		{"CN=svc_iispool,OU=SVC_Accounts,DC=lab,DC=local", "servicePrincipalName", "HTTP/web.lab.local", "userAccountControl", "66048"},
		{"CN=WEB,CN=Computers,DC=lab,DC=local", "servicePrincipalName", "HOST/web", "objectCategory", "CN=Computer,CN=Schema,CN=Configuration,DC=lab,DC=local"},
		{"CN=Users,DC=lab,DC=local", "cn", "Users"},
	} {
		e := &Entry{DN: spec[0]}
		for i := 1; i+1 < len(spec); i += 2 {
			e.Add(spec[i], spec[i+1])
		}
		entries = append(entries, e)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMessage(b)
		if err != nil {
			var pe *ProtocolError
			if !errors.As(err, &pe) {
				t.Fatalf("not a ProtocolError: %v", err)
			}
			return
		}
		if m.Op.Tag == OpSearchRequest && len(m.Op.Children) >= 7 {
			if f, err := ParseFilter(m.Op.Children[6]); err == nil {
				for _, e := range entries {
					f.Match(e)
				}
				_ = f.String()
			}
		}
	})
}
