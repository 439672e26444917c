package kmsg

import (
	"strings"

	"github.com/jcmturner/gokrb5/v8/types"
)

// Principal is a principal as the ccache and keytab formats store it.
type Principal struct {
	NameType   int32
	Components []string
	Realm      string
}

// NewPrincipal builds a Principal from a gokrb5 name and realm.
func NewPrincipal(pn types.PrincipalName, realm string) Principal {
	return Principal{NameType: pn.NameType, Components: append([]string(nil), pn.NameString...), Realm: realm}
}

// Name returns the gokrb5 form of the name (without the realm).
func (p Principal) Name() types.PrincipalName {
	return types.PrincipalName{NameType: p.NameType, NameString: append([]string(nil), p.Components...)}
}

// String renders "HTTP/web.lab.local@LAB.LOCAL", escaping '/', '@' and '\'
// inside components as krb5_unparse_name does.
func (p Principal) String() string {
	var b strings.Builder
	for i, c := range p.Components {
		if i > 0 {
			b.WriteByte('/')
		}
		ccEscape(&b, c, "/@\\")
	}
	b.WriteByte('@')
	ccEscape(&b, p.Realm, "@\\")
	return b.String()
}

func ccEscape(b *strings.Builder, s, special string) {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case strings.IndexByte(special, c) >= 0:
			b.WriteByte('\\')
			b.WriteByte(c)
		case c == 0:
			b.WriteString(`\0`)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\t':
			b.WriteString(`\t`)
		default:
			b.WriteByte(c)
		}
	}
}

// Equal compares exactly: name type ignored (as krb5_principal_compare does),
// components and realm byte for byte.
func (p Principal) Equal(o Principal) bool {
	return p.Realm == o.Realm && SameComponents(p.Components, o.Components)
}

func SameComponents(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
