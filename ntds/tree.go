// Package ntds is the lab's directory as Active Directory's objects (what a
// DC keeps in ntds.dit): the domain naming context with its containers,
// accounts, groups, the configuration partition's site and NTDS Settings,
// each entry with its DN, objectGUID and objectSid, and AD's extended-DN
// forms to find them. The DC's LDAP face and its replication interface
// (DRSUAPI) read the same tree.
package ntds

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/doublehop/doublehop/directory"
	"github.com/doublehop/doublehop/dtyp"
	"github.com/doublehop/doublehop/ldap"
)

// Tree is the directory as LDAP entries, built once per directory version.
type Tree struct {
	Version uint64
	Entries []*ldap.Entry          // parents before children
	Norm    []string               // each entry's normalized DN
	ByDN    map[string]*ldap.Entry // normalized DN
}

// Lookup finds an entry by DN (any case and spacing) or by AD's extended
// forms (<SID=…>, <GUID=…>, <WKGUID=…>), as AD takes them wherever a DN
// goes: a search base, a modified object, a member value.
func (t *Tree) Lookup(dn string) (*ldap.Entry, bool) {
	n := ldap.NormDN(dn)
	if strings.HasPrefix(strings.TrimSpace(dn), "<") {
		var ok bool
		if n, ok = t.Resolve(dn); !ok {
			return nil, false
		}
	}
	e, ok := t.ByDN[n]
	return e, ok
}

// Cache keeps the tree of the directory's current version.
type Cache struct {
	Directory *directory.Store
	mu        sync.Mutex
	tree      *Tree
}

// View is the directory's current view and its tree.
func (c *Cache) View() (*directory.View, *Tree) {
	v := c.Directory.View()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tree == nil || c.tree.Version != v.Version {
		c.tree = Build(v)
	}
	return v, c.tree
}

// Well-known DNs under the naming context.
func ConfigDN(base string) string { return "CN=Configuration," + base }
func SchemaDN(base string) string { return "CN=Schema," + ConfigDN(base) }

// DirectoryServiceDN holds sPNMappings (the seed's LDP step reads it).
func DirectoryServiceDN(base string) string {
	return "CN=Directory Service,CN=Windows NT,CN=Services," + ConfigDN(base)
}

// FILETIME for "never" (accountExpires) and conversions (MS-ADTS 2.2.x).
const fileTimeNever = "9223372036854775807"

func fileTime(t time.Time) string {
	return strconv.FormatInt((t.UnixNano()/100)+116444736000000000, 10)
}

// Build makes the tree of a view.
func Build(v *directory.View) *Tree {
	l := v.Lab
	base := l.DomainDN()
	t := &Tree{Version: v.Version, ByDN: map[string]*ldap.Entry{}}
	put := func(e *ldap.Entry) {
		n := ldap.NormDN(e.DN)
		t.Entries, t.Norm = append(t.Entries, e), append(t.Norm, n)
		t.ByDN[n] = e
	}
	container := func(dn, class, name string) *ldap.Entry {
		e := &ldap.Entry{DN: dn}
		e.Add("objectClass", "top", class)
		if class == "organizationalUnit" {
			e.Add("ou", name)
		} else {
			e.Add("cn", name)
		}
		e.Add("distinguishedName", dn)
		e.Add("name", name)
		put(e)
		return e
	}
	dom := &ldap.Entry{DN: base}
	dom.Add("objectClass", "top", "domain", "domainDNS")
	dom.Add("distinguishedName", base)
	dom.Add("dc", strings.ToLower(strings.Split(l.Realm, ".")[0]))
	dom.Add("name", l.NetBIOS)
	if s, err := dtyp.ParseSID(l.DomainSID); err == nil {
		dom.AddBytes("objectSid", s.Binary())
	}
	dom.Add("ms-DS-MachineAccountQuota", "10")
	dom.Add("msDS-Behavior-Version", "7") // Windows Server 2016 domain functional level
	dom.Add("rIDManagerReference", "CN=RID Manager$,CN=System,"+base)
	dom.AddBytes("objectGUID", GUID(l.DomainSID))
	for _, w := range wellKnown {
		dom.Add("wellKnownObjects", "B:32:"+strings.ToUpper(w.guid)+":"+w.rdn+","+base)
	}
	dom.Add("lockoutThreshold", strconv.Itoa(l.Policy.LockoutThreshold))
	dom.Add("lockoutDuration", adInterval(l.Policy.LockoutDuration, 30*time.Minute))
	dom.Add("lockOutObservationWindow", adInterval(l.Policy.LockoutWindow, 30*time.Minute))
	put(dom)
	container("CN=Users,"+base, "container", "Users")
	container("CN=System,"+base, "container", "System")
	container("CN=RID Manager$,CN=System,"+base, "rIDManager", "RID Manager$")
	container("CN=Builtin,"+base, "builtinDomain", "Builtin")
	for _, b := range builtin {
		g := container("CN="+b.name+",CN=Builtin,"+base, "group", b.name)
		if s, err := dtyp.ParseSID(b.sid); err == nil {
			g.AddBytes("objectSid", s.Binary())
		}
		g.Add("sAMAccountName", b.name)
		g.Add("groupType", "-2147483643") // builtin local security group
	}
	container("CN=Computers,"+base, "container", "Computers")
	container("OU=Domain Controllers,"+base, "organizationalUnit", "Domain Controllers")
	container("OU=SVC_Accounts,"+base, "organizationalUnit", "SVC_Accounts")
	container(ConfigDN(base), "configuration", "Configuration")
	container("CN=Services,"+ConfigDN(base), "container", "Services")
	container("CN=Windows NT,CN=Services,"+ConfigDN(base), "container", "Windows NT")
	ds := container(DirectoryServiceDN(base), "nTDSService", "Directory Service")
	ds.Add("sPNMappings", "host="+strings.Join(directory.SPNMappings(), ","))
	container(SchemaDN(base), "dMD", "Schema")
	// The site and the DC's server object (MS-ADTS 6.1.1.2.2): what rootDSE's
	// serverName and dsServiceName point at.
	container("CN=Sites,"+ConfigDN(base), "sitesContainer", "Sites")
	container("CN="+defaultSite+",CN=Sites,"+ConfigDN(base), "site", defaultSite)
	container("CN=Servers,CN="+defaultSite+",CN=Sites,"+ConfigDN(base), "serversContainer", "Servers")
	if a, ok := v.Account(DCAccount(v)); ok {
		name := strings.TrimSuffix(a.Name, "$")
		srv := container(ServerDN(base, a.Name), "server", name)
		srv.Add("serverReference", l.DN(a.Account))
		srv.Add("dNSHostName", l.HostName(a.Account))
		ntds := container("CN=NTDS Settings,"+srv.DN, "nTDSDSA", "NTDS Settings")
		ntds.AddBytes("objectGUID", NTDSSettingsGUID(a.SID))
		ntds.AddBytes("invocationId", InvocationID(a.SID))
		ntds.Add("options", "1") // NTDSDSA_OPT_IS_GC
		ntds.Add("objectCategory", "CN=NTDS-DSA,"+SchemaDN(base))
	}
	container("CN=Partitions,"+ConfigDN(base), "crossRefContainer", "Partitions")
	cr := container("CN="+l.NetBIOS+",CN=Partitions,"+ConfigDN(base), "crossRef", l.NetBIOS)
	cr.Add("nCName", base)
	cr.Add("nETBIOSName", l.NetBIOS)
	cr.Add("dnsRoot", strings.ToLower(l.Realm))
	cr.Add("systemFlags", "3")

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
		g := &ldap.Entry{DN: groupDN[strings.ToLower(n)]}
		g.Add("objectClass", "top", "group")
		g.Add("cn", n)
		g.Add("distinguishedName", g.DN)
		g.Add("name", n)
		g.Add("sAMAccountName", n)
		g.Add("sAMAccountType", "268435456")
		g.Add("groupType", "-2147483646") // global security group
		g.Add("objectCategory", "CN=Group,"+SchemaDN(base))
		if s, err := dtyp.ParseSID(fmt.Sprintf("%s-%d", l.DomainSID, r)); err == nil {
			g.AddBytes("objectSid", s.Binary())
		}
		var members []string
		for _, a := range v.Entries() {
			if a.InGroup(n) && primaryGroup(a.Account) != uint32(r) {
				members = append(members, l.DN(a.Account))
			}
		}
		g.Add("member", members...)
		put(g)
	}
	for _, a := range v.Entries() {
		put(accountEntry(v, a, groupDN))
	}
	for _, o := range l.Objects {
		put(objectEntry(o))
	}
	return t
}

// builtin are the BUILTIN groups an RODC's policy names (MS-DTYP 2.4.2.4).
var builtin = []struct{ name, sid string }{
	{"Administrators", "S-1-5-32-544"}, {"Account Operators", "S-1-5-32-548"},
	{"Server Operators", "S-1-5-32-549"}, {"Backup Operators", "S-1-5-32-551"},
}

// objectEntry is a kept object (an RODC's server, NTDS Settings, ...).
func objectEntry(o directory.Object) *ldap.Entry {
	e := &ldap.Entry{DN: o.DN}
	e.Add("objectClass", "top", o.Class)
	rdn := ldap.SplitDN(o.DN)
	if len(rdn) > 0 {
		_, v, _ := strings.Cut(rdn[0], "=")
		e.Add("cn", v)
		e.Add("name", v)
	}
	e.Add("distinguishedName", o.DN)
	if g, err := hex.DecodeString(o.GUID); err == nil {
		e.AddBytes("objectGUID", g)
	}
	keys := make([]string, 0, len(o.Attrs))
	for k := range o.Attrs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		e.Add(k, o.Attrs[k]...)
	}
	return e
}

// defaultSite is the one site of the lab.
const defaultSite = "Default-First-Site-Name"

// ServerDN is the DC's server object under its site.
func ServerDN(base, account string) string {
	return "CN=" + strings.TrimSuffix(account, "$") + ",CN=Servers,CN=" + defaultSite + ",CN=Sites," + ConfigDN(base)
}

// DCAccount is the machine account of the lab's DC.
func DCAccount(v *directory.View) string {
	if h := v.Lab.HostByRole("kdc"); h != nil && h.Account != "" {
		return h.Account
	}
	return "DC$"
}

// wellKnown are the domain's well-known containers (MS-ADTS 6.1.1.4,
// wellKnownObjects), found by <WKGUID=…,DC=…> as Samba's and Windows' tools do.
var wellKnown = []struct{ guid, rdn string }{
	{"a9d1ca15768811d1aded00c04fd8d5cd", "CN=Users"},
	{"aa312825768811d1aded00c04fd8d5cd", "CN=Computers"},
	{"a361b2ffffd211d1aa4b00c04fd7d83a", "OU=Domain Controllers"},
}

// Resolve finds a search base: a DN, or AD's extended forms <SID=…>,
// <GUID=…> and <WKGUID=guid,DN> (MS-ADTS 3.1.1.3.1.2.4).
func (t *Tree) Resolve(base string) (string, bool) {
	b := strings.TrimSpace(base)
	if !strings.HasPrefix(b, "<") {
		n := ldap.NormDN(b)
		_, ok := t.ByDN[n]
		return n, ok
	}
	end := strings.IndexByte(b, '>')
	if end < 0 {
		return "", false
	}
	kind, val, _ := strings.Cut(b[1:end], "=")
	switch strings.ToUpper(kind) {
	case "WKGUID":
		g, nc, _ := strings.Cut(val, ",")
		for _, w := range wellKnown {
			if strings.EqualFold(w.guid, g) {
				n := ldap.NormDN(w.rdn + "," + nc)
				_, ok := t.ByDN[n]
				return n, ok
			}
		}
	case "SID", "GUID":
		attr := "objectSid"
		if strings.EqualFold(kind, "GUID") {
			attr = "objectGUID"
			val = guidBytes(val)
		} else if b, err := hex.DecodeString(val); err == nil {
			// <SID=hex of the binary SID>, the form Samba's ldb sends.
			if sid, err := dtyp.BinarySIDString(b); err == nil {
				val = sid
			}
		}
		for i, e := range t.Entries {
			if a, ok := e.Get(attr); ok && ldap.EqualValue(attr, a.Vals[0], []byte(val)) {
				return t.Norm[i], true
			}
		}
	}
	return "", false
}

// guidBytes turns a GUID in string or hex form into its 16 bytes (mixed endian).
func guidBytes(s string) string {
	h := strings.ReplaceAll(strings.Trim(s, "{}"), "-", "")
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != 16 {
		return s
	}
	if strings.Contains(s, "-") {
		b[0], b[1], b[2], b[3] = b[3], b[2], b[1], b[0]
		b[4], b[5] = b[5], b[4]
		b[6], b[7] = b[7], b[6]
	}
	return string(b)
}

// adInterval is a duration as AD writes policy intervals: negative 100 ns
// units, 0 for "never" (lockoutDuration: until an administrator unlocks).
func adInterval(d directory.Duration, def time.Duration) string {
	switch {
	case d < 0:
		return "0"
	case d == 0:
		d = directory.Duration(def)
	}
	return strconv.FormatInt(-int64(d.D()/100), 10)
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

func accountEntry(v *directory.View, a *directory.Entry, groupDN map[string]string) *ldap.Entry {
	l := v.Lab
	base := l.DomainDN()
	dn := l.DN(a.Account)
	cn := strings.TrimSuffix(a.Name, "$")
	e := &ldap.Entry{DN: dn, Account: a.Name}
	classes := []string{"top", "person", "organizationalPerson", "user"}
	category := "CN=Person," + SchemaDN(base)
	accountType := "805306368" // SAM_USER_OBJECT
	if a.Type == directory.TypeComputer {
		classes = append(classes, "computer")
		category = "CN=Computer," + SchemaDN(base)
		accountType = "805306369" // SAM_MACHINE_ACCOUNT
	}
	e.Add("objectClass", classes...)
	e.Add("cn", cn)
	e.Add("distinguishedName", dn)
	e.Add("name", cn)
	e.Add("displayName", a.DisplayName)
	e.Add("sAMAccountName", a.Name)
	e.Add("sAMAccountType", accountType)
	e.Add("objectCategory", category)
	e.Add("userAccountControl", strconv.FormatUint(uint64(a.UserAccountControl()), 10))
	if a.UPN != "" {
		e.Add("userPrincipalName", a.UPN)
	}
	if h := l.HostName(a.Account); h != "" && a.Type == directory.TypeComputer {
		e.Add("dNSHostName", h)
	}
	e.Add("servicePrincipalName", a.SPNs...)
	e.Add("msDS-AllowedToDelegateTo", a.Delegation.AllowedTo...)
	if len(a.AllowedToActOnBehalfOf) > 0 {
		var sids []dtyp.SID
		for _, n := range a.AllowedToActOnBehalfOf {
			if x, ok := v.Account(n); ok {
				if s, err := dtyp.ParseSID(x.SID); err == nil {
					sids = append(sids, s)
				}
			}
		}
		e.AddBytes("msDS-AllowedToActOnBehalfOfOtherIdentity", dtyp.RBCDDescriptor(sids))
	}
	e.Add("msDS-SupportedEncryptionTypes", strconv.FormatUint(uint64(a.SupportedEncryptionTypes(l.Policy.AllowRC4)), 10))
	e.Add("msDS-KeyVersionNumber", strconv.Itoa(a.KVNO))
	if s, err := dtyp.ParseSID(a.SID); err == nil {
		e.AddBytes("objectSid", s.Binary())
	}
	e.AddBytes("objectGUID", GUID(a.SID))
	var memberOf []string
	for _, g := range a.Groups {
		if dn, ok := groupDN[strings.ToLower(g)]; ok {
			if r, _ := v.GroupRID(g); r != primaryGroup(a.Account) {
				memberOf = append(memberOf, dn)
			}
		}
	}
	e.Add("memberOf", memberOf...)
	e.Add("primaryGroupID", strconv.Itoa(int(primaryGroup(a.Account))))
	if a.MustChangePassword {
		e.Add("pwdLastSet", "0")
	}
	exp := fileTimeNever
	if !a.Expires.IsZero() {
		exp = fileTime(a.Expires)
	}
	e.Add("accountExpires", exp)
	e.Add("badPwdCount", strconv.Itoa(a.BadPwdCount))
	if r := a.RODC; r != nil {
		if k, ok := v.Account(r.KrbTgt); ok && r.KrbTgt != "" {
			e.Add("msDS-KrbTgtLink", l.DN(k.Account))
		}
		e.Add("msDS-RevealOnDemandGroup", r.RevealOnDemand...)
		e.Add("msDS-NeverRevealGroup", r.NeverReveal...)
		var revealed []string
		for _, name := range r.Revealed {
			if x, ok := v.Account(name); ok {
				revealed = append(revealed, "B:8:00000000:"+l.DN(x.Account)) // DN-Binary (MS-ADTS 3.1.1.3.1.2.5)
			}
		}
		e.Add("msDS-RevealedUsers", revealed...)
		if r.ManagedBy != "" {
			e.Add("managedBy", r.ManagedBy)
		}
	}
	if a.SecondaryKrbTgtNumber != 0 {
		e.Add("msDS-SecondaryKrbTgtNumber", strconv.Itoa(a.SecondaryKrbTgtNumber))
	}
	if !a.LockedOut.IsZero() {
		e.Add("lockoutTime", fileTime(a.LockedOut))
	}
	return e
}

// NTDSSettingsGUID is the objectGUID of a DC's NTDS Settings object: the
// DSA GUID that replication names the DC by.
func NTDSSettingsGUID(dcSID string) []byte { return GUID("NTDS Settings:" + dcSID) }

// InvocationID is the DC's database instance (MS-DRSR 5.116): stable, as
// the lab's DC is never restored.
func InvocationID(dcSID string) []byte { return GUID("invocationId:" + dcSID) }

// GUID is a stable objectGUID for an object (the lab derives it from the SID).
func GUID(sid string) []byte {
	h := sha256.Sum256([]byte("objectGUID:" + sid))
	g := h[:16]
	g[7] = g[7]&0x0f | 0x40 // version 4 layout
	g[8] = g[8]&0x3f | 0x80
	return g
}
