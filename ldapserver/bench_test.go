package ldapserver

import (
	"testing"

	"github.com/doublehop/doublehop/directory"
	goldap "github.com/go-ldap/ldap/v3"
)

// Searches per second on one bound connection, as a tool's loop makes them:
// the findDelegation filter (bitwise rules over every account) and a
// sAMAccountName lookup. `make bench` prints them.
func benchSearch(b *testing.B, filter string, parallel bool) {
	_, addr, _ := startServer(b, func(l *directory.Lab) { l.Policy.LDAPSimpleBindInClear = true })
	req := goldap.NewSearchRequest("DC=lab,DC=local", goldap.ScopeWholeSubtree, 0, 0, 0, false, filter, []string{"sAMAccountName", "userAccountControl"}, nil)
	conn := func() *goldap.Conn {
		c, err := goldap.DialURL("ldap://" + addr)
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Bind("bob@lab.local", "Bob-Passw0rd!"); err != nil {
			b.Fatal(err)
		}
		return c
	}
	b.ReportAllocs()
	if parallel {
		b.RunParallel(func(pb *testing.PB) {
			c := conn()
			defer c.Close()
			for pb.Next() {
				if _, err := c.Search(req); err != nil {
					b.Fatal(err)
				}
			}
		})
		return
	}
	c := conn()
	defer c.Close()
	for b.Loop() {
		if _, err := c.Search(req); err != nil {
			b.Fatal(err)
		}
	}
}

const findDelegationFilter = "(&(|(userAccountControl:1.2.840.113556.1.4.803:=16777216)(userAccountControl:1.2.840.113556.1.4.803:=524288)(msDS-AllowedToDelegateTo=*)(msDS-AllowedToActOnBehalfOfOtherIdentity=*))(!(userAccountControl:1.2.840.113556.1.4.803:=2)))"

func BenchmarkSearchFindDelegation(b *testing.B) { benchSearch(b, findDelegationFilter, false) }
func BenchmarkSearchAccount(b *testing.B)        { benchSearch(b, "(sAMAccountName=bob)", false) }
func BenchmarkSearchParallel(b *testing.B)       { benchSearch(b, "(sAMAccountName=bob)", true) }
