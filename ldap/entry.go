package ldap

import (
	"strings"
)

// Entry is one directory object as LDAP shows it: its DN and attributes in
// the order AD lists them. Values are raw bytes (objectSid and security
// descriptors are binary).
type Entry struct {
	DN      string
	Account string // sAMAccountName when the entry is an account (writes go there)
	attrs   []Attr
}

// Attr is one attribute with its values.
type Attr struct {
	Name string
	Vals [][]byte
}

func (e *Entry) Add(name string, vals ...string) {
	if len(vals) == 0 {
		return
	}
	a := Attr{Name: name}
	for _, v := range vals {
		a.Vals = append(a.Vals, []byte(v))
	}
	e.attrs = append(e.attrs, a)
}

func (e *Entry) AddBytes(name string, v []byte) {
	e.attrs = append(e.attrs, Attr{Name: name, Vals: [][]byte{v}})
}

// Get returns the attribute, matched case-insensitively.
func (e *Entry) Get(name string) (Attr, bool) {
	for _, a := range e.attrs {
		if strings.EqualFold(a.Name, name) {
			return a, true
		}
	}
	return Attr{}, false
}

// Attrs are the entry's attributes.
func (e *Entry) Attrs() []Attr { return e.attrs }

// NormDN lower-cases a DN and drops the spaces around its separators, so
// "cn=bob, cn=Users,DC=lab,DC=local" finds CN=bob,CN=Users,DC=lab,DC=local.
func NormDN(dn string) string {
	var parts []string
	for _, rdn := range SplitDN(dn) {
		k, v, _ := strings.Cut(rdn, "=")
		parts = append(parts, strings.ToLower(strings.TrimSpace(k))+"="+strings.ToLower(strings.TrimSpace(v)))
	}
	return strings.Join(parts, ",")
}

// SplitDN splits at unescaped commas (RFC 4514 §3).
func SplitDN(dn string) []string {
	if strings.TrimSpace(dn) == "" {
		return nil
	}
	var out []string
	start := 0
	for i := 0; i < len(dn); i++ {
		switch dn[i] {
		case '\\':
			i++
		case ',', ';':
			out = append(out, dn[start:i])
			start = i + 1
		}
	}
	return append(out, dn[start:])
}

// ParentDN is the DN without its first RDN.
func ParentDN(ndn string) string {
	p := SplitDN(ndn)
	if len(p) <= 1 {
		return ""
	}
	return strings.Join(p[1:], ",")
}

// secretAttrs are never returned nor matched (MS-ADTS 3.1.1.4.4: secret
// attributes are not readable over LDAP, even by administrators).
var secretAttrs = map[string]bool{
	"unicodepwd": true, "userpassword": true, "dbcspwd": true, "ntpwdhistory": true, "lmpwdhistory": true,
	"supplementalcredentials": true, "msds-managedpassword": true,
}

// IsSecret reports an attribute that is never returned nor matched.
func IsSecret(attr string) bool { return secretAttrs[strings.ToLower(attr)] }
