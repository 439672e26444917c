package ldap

import (
	"crypto/sha256"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/doublehop/doublehop/directory"
	"github.com/doublehop/doublehop/dtyp"
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

func (e *Entry) add(name string, vals ...string) {
	if len(vals) == 0 {
		return
	}
	a := Attr{Name: name}
	for _, v := range vals {
		a.Vals = append(a.Vals, []byte(v))
	}
	e.attrs = append(e.attrs, a)
}

func (e *Entry) addBytes(name string, v []byte) {
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

// secretAttrs are never returned nor matched (MS-ADTS 3.1.1.4.4: secret
// attributes are not readable over LDAP, even by administrators).
var secretAttrs = map[string]bool{
	"unicodepwd": true, "userpassword": true, "dbcspwd": true, "ntpwdhistory": true, "lmpwdhistory": true,
	"supplementalcredentials": true, "msds-managedpassword": true,
}

// tree is the directory as LDAP entries, built once per directory version.
type tree struct {
	version uint64
	entries []*Entry          // parents before children
	byDN    map[string]*Entry // normalized DN
}

// Well-known DNs under the naming context.
func configDN(base string) string { return "CN=Configuration," + base }
func schemaDN(base string) string { return "CN=Schema," + configDN(base) }

// DirectoryServiceDN holds sPNMappings (the seed's LDP step reads it).
func DirectoryServiceDN(base string) string {
	return "CN=Directory Service,CN=Windows NT,CN=Services," + configDN(base)
}

// FILETIME for "never" (accountExpires) and conversions (MS-ADTS 2.2.x).
const fileTimeNever = "9223372036854775807"

func fileTime(t time.Time) string {
	return strconv.FormatInt((t.UnixNano()/100)+116444736000000000, 10)
}

func buildTree(v *directory.View) *tree {
	l := v.Lab
	base := l.DomainDN()
	t := &tree{version: v.Version, byDN: map[string]*Entry{}}
	put := func(e *Entry) {
		t.entries = append(t.entries, e)
		t.byDN[normDN(e.DN)] = e
	}
	container := func(dn, class, name string) *Entry {
		e := &Entry{DN: dn}
		e.add("objectClass", "top", class)
		if class == "organizationalUnit" {
			e.add("ou", name)
		} else {
			e.add("cn", name)
		}
		e.add("distinguishedName", dn)
		e.add("name", name)
		put(e)
		return e
	}
	dom := &Entry{DN: base}
	dom.add("objectClass", "top", "domain", "domainDNS")
	dom.add("distinguishedName", base)
	dom.add("dc", strings.ToLower(strings.Split(l.Realm, ".")[0]))
	dom.add("name", l.NetBIOS)
	if s, err := dtyp.ParseSID(l.DomainSID); err == nil {
		dom.addBytes("objectSid", s.Binary())
	}
	dom.add("ms-DS-MachineAccountQuota", "10")
	dom.add("lockoutThreshold", strconv.Itoa(l.Policy.LockoutThreshold))
	put(dom)
	container("CN=Users,"+base, "container", "Users")
	container("CN=Computers,"+base, "container", "Computers")
	container("OU=Domain Controllers,"+base, "organizationalUnit", "Domain Controllers")
	container("OU=SVC_Accounts,"+base, "organizationalUnit", "SVC_Accounts")
	container(configDN(base), "configuration", "Configuration")
	container("CN=Services,"+configDN(base), "container", "Services")
	container("CN=Windows NT,CN=Services,"+configDN(base), "container", "Windows NT")
	ds := container(DirectoryServiceDN(base), "nTDSService", "Directory Service")
	ds.add("sPNMappings", "host="+strings.Join(directory.SPNMappings(), ","))
	container(schemaDN(base), "dMD", "Schema")

	// Groups: well-known and the lab's, with their members.
	names := v.GroupNames()
	rids := make([]int, 0, len(names))
	for r := range names {
		rids = append(rids, int(r))
	}
	sort.Ints(rids)
	groupDN := map[string]string{}
	for _, r := range rids {
		groupDN[strings.ToLower(names[uint32(r)])] = "CN=" + names[uint32(r)] + ",CN=Users," + base
	}
	for _, r := range rids {
		n := names[uint32(r)]
		g := &Entry{DN: groupDN[strings.ToLower(n)]}
		g.add("objectClass", "top", "group")
		g.add("cn", n)
		g.add("distinguishedName", g.DN)
		g.add("name", n)
		g.add("sAMAccountName", n)
		g.add("sAMAccountType", "268435456")
		g.add("groupType", "-2147483646") // global security group
		g.add("objectCategory", "CN=Group,"+schemaDN(base))
		if s, err := dtyp.ParseSID(fmt.Sprintf("%s-%d", l.DomainSID, r)); err == nil {
			g.addBytes("objectSid", s.Binary())
		}
		var members []string
		for _, a := range v.Entries() {
			if a.InGroup(n) && primaryGroup(a.Account) != uint32(r) {
				members = append(members, l.DN(a.Account))
			}
		}
		g.add("member", members...)
		put(g)
	}
	for _, a := range v.Entries() {
		put(accountEntry(v, a, groupDN))
	}
	return t
}

// primaryGroup is primaryGroupID: AD lists no member value for it.
func primaryGroup(a *directory.Account) uint32 {
	switch {
	case a.IsDC():
		return 516
	case a.Type == directory.TypeComputer:
		return 515
	}
	return 513
}

func accountEntry(v *directory.View, a *directory.Entry, groupDN map[string]string) *Entry {
	l := v.Lab
	base := l.DomainDN()
	dn := l.DN(a.Account)
	cn := strings.TrimSuffix(a.Name, "$")
	e := &Entry{DN: dn, Account: a.Name}
	classes := []string{"top", "person", "organizationalPerson", "user"}
	category := "CN=Person," + schemaDN(base)
	accountType := "805306368" // SAM_USER_OBJECT
	if a.Type == directory.TypeComputer {
		classes = append(classes, "computer")
		category = "CN=Computer," + schemaDN(base)
		accountType = "805306369" // SAM_MACHINE_ACCOUNT
	}
	e.add("objectClass", classes...)
	e.add("cn", cn)
	e.add("distinguishedName", dn)
	e.add("name", cn)
	e.add("displayName", a.DisplayName)
	e.add("sAMAccountName", a.Name)
	e.add("sAMAccountType", accountType)
	e.add("objectCategory", category)
	e.add("userAccountControl", strconv.FormatUint(uint64(a.UserAccountControl()), 10))
	if a.UPN != "" {
		e.add("userPrincipalName", a.UPN)
	}
	if h := l.HostName(a.Account); h != "" && a.Type == directory.TypeComputer {
		e.add("dNSHostName", h)
	}
	e.add("servicePrincipalName", a.SPNs...)
	e.add("msDS-AllowedToDelegateTo", a.Delegation.AllowedTo...)
	if len(a.AllowedToActOnBehalfOf) > 0 {
		var sids []dtyp.SID
		for _, n := range a.AllowedToActOnBehalfOf {
			if x, ok := v.Account(n); ok {
				if s, err := dtyp.ParseSID(x.SID); err == nil {
					sids = append(sids, s)
				}
			}
		}
		e.addBytes("msDS-AllowedToActOnBehalfOfOtherIdentity", dtyp.RBCDDescriptor(sids))
	}
	e.add("msDS-SupportedEncryptionTypes", strconv.FormatUint(uint64(a.SupportedEncryptionTypes(l.Policy.AllowRC4)), 10))
	e.add("msDS-KeyVersionNumber", strconv.Itoa(a.KVNO))
	if s, err := dtyp.ParseSID(a.SID); err == nil {
		e.addBytes("objectSid", s.Binary())
	}
	e.addBytes("objectGUID", guid(a.SID))
	var memberOf []string
	for _, g := range a.Groups {
		if dn, ok := groupDN[strings.ToLower(g)]; ok {
			if r, _ := v.GroupRID(g); r != primaryGroup(a.Account) {
				memberOf = append(memberOf, dn)
			}
		}
	}
	e.add("memberOf", memberOf...)
	e.add("primaryGroupID", strconv.Itoa(int(primaryGroup(a.Account))))
	if a.MustChangePassword {
		e.add("pwdLastSet", "0")
	}
	exp := fileTimeNever
	if !a.Expires.IsZero() {
		exp = fileTime(a.Expires)
	}
	e.add("accountExpires", exp)
	e.add("badPwdCount", strconv.Itoa(a.BadPwdCount))
	if !a.LockedOut.IsZero() {
		e.add("lockoutTime", fileTime(a.LockedOut))
	}
	return e
}

// guid is a stable objectGUID for an object (the lab derives it from the SID).
func guid(sid string) []byte {
	h := sha256.Sum256([]byte("objectGUID:" + sid))
	g := h[:16]
	g[7] = g[7]&0x0f | 0x40 // version 4 layout
	g[8] = g[8]&0x3f | 0x80
	return g
}

// normDN lower-cases a DN and drops the spaces around its separators, so
// "cn=bob, cn=Users,DC=lab,DC=local" finds CN=bob,CN=Users,DC=lab,DC=local.
func normDN(dn string) string {
	var parts []string
	for _, rdn := range splitDN(dn) {
		k, v, _ := strings.Cut(rdn, "=")
		parts = append(parts, strings.ToLower(strings.TrimSpace(k))+"="+strings.ToLower(strings.TrimSpace(v)))
	}
	return strings.Join(parts, ",")
}

// splitDN splits at unescaped commas (RFC 4514 §3).
func splitDN(dn string) []string {
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

// parentDN is the DN without its first RDN.
func parentDN(ndn string) string {
	p := splitDN(ndn)
	if len(p) <= 1 {
		return ""
	}
	return strings.Join(p[1:], ",")
}
