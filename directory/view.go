package directory

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/doublehop/doublehop/krb/kcrypto"
	"github.com/jcmturner/gokrb5/v8/types"
)

// Entry is an account with its derived keys, as the KDC sees it.
type Entry struct {
	*Account
	Keys   map[int32]types.EncryptionKey // by etype: every key the account has (AS exchange)
	ETypes []int32                       // as a service, in preference order (msDS-SupportedEncryptionTypes)
	SID    string
}

// Key returns the key of the given etype.
func (e *Entry) Key(etype int32) (types.EncryptionKey, bool) {
	k, ok := e.Keys[etype]
	return k, ok
}

// View is an immutable, indexed snapshot of the lab; the KDC takes one per request.
type View struct {
	Lab     *Lab
	byName  map[string]*Entry // sAMAccountName
	byUPN   map[string]*Entry // UPN prefix, consulted only after a sAMAccountName miss (AD's order)
	krbtgt  *Entry
	bySPN   map[string][]*Entry
	groups  map[string]uint32
	Version uint64
}

// sPNMappings is AD's default implicit mapping of service classes to HOST
// (CN=Directory Service,CN=Windows NT,CN=Services,CN=Configuration, attribute
// sPNMappings). An SPN such as HTTP/web.lab.local that no account registers
// resolves to the account holding HOST/web.lab.local — the machine account.
var sPNMappings = strings.Split("alerter,appmgmt,cisvc,clipsrv,browser,dhcp,dnscache,replicator,eventlog,"+
	"eventsystem,policyagent,oakley,dmserver,dns,mcsvc,fax,msiserver,ias,messenger,netlogon,netman,netdde,"+
	"netddedsm,nmagent,plugplay,protectedstorage,rasman,rpclocator,rpc,rpcss,remoteaccess,rsvp,samss,scardsvr,"+
	"scesrv,seclogon,scm,dcom,cifs,spooler,snmp,schedule,tapisrv,trksvr,trkwks,ups,time,wins,www,http,w3svc,"+
	"iisadmin,msdtc", ",")

var mappedToHost = func() map[string]bool {
	m := map[string]bool{}
	for _, s := range sPNMappings {
		m[s] = true
	}
	return m
}()

// wellKnownGroups are the domain groups with fixed RIDs (MS-DTYP 2.4.2.4).
var wellKnownGroups = map[string]uint32{
	"domain admins": 512, "domain users": 513, "domain guests": 514, "domain computers": 515,
	"domain controllers": 516, "protected users": 525,
	"read-only domain controllers": 521, "allowed rodc password replication group": RIDAllowedRODC,
	"denied rodc password replication group": RIDDeniedRODC,
}

func buildView(l *Lab, keys *keyCache, version uint64) (*View, error) {
	v := &View{Lab: l, byName: map[string]*Entry{}, byUPN: map[string]*Entry{}, bySPN: map[string][]*Entry{}, groups: map[string]uint32{}, Version: version}
	for n, r := range wellKnownGroups {
		v.groups[n] = r
	}
	for _, g := range l.Groups {
		v.groups[strings.ToLower(g.Name)] = g.RID
	}
	for i := range l.Accounts {
		a := &l.Accounts[i]
		e := &Entry{Account: a, Keys: map[int32]types.EncryptionKey{}, SID: fmt.Sprintf("%s-%d", l.DomainSID, a.RID)}
		e.ETypes = a.ETypes(l.Policy.AllowRC4)
		if a.InGroup("Protected Users") {
			// Protected Users authenticate with AES only: the KDC uses no RC4
			// (or DES) key of theirs (MS-KILE 3.3.5.6, "Protected Users").
			e.ETypes = slices.DeleteFunc(slices.Clone(e.ETypes), func(et int32) bool { return et == kcrypto.ETypeRC4HMAC })
		}
		// Keys are every long-term key AD stores for the account (AES256,
		// AES128, and the NT hash as RC4 where the domain allows RC4): its own
		// AS exchange may use any of them. ETypes, from
		// msDS-SupportedEncryptionTypes, are what its tickets are sealed with
		// as a service (MS-KILE 3.3.5.7).
		stored := []int32{kcrypto.ETypeAES256SHA1, kcrypto.ETypeAES128SHA1}
		if l.Policy.AllowRC4 && !a.InGroup("Protected Users") {
			stored = append(stored, kcrypto.ETypeRC4HMAC)
		}
		for _, et := range append(stored, e.ETypes...) {
			if _, done := e.Keys[et]; done {
				continue
			}
			k, err := keys.get(a.Password, a.Salt(l.Realm), et)
			if err != nil {
				return nil, fmt.Errorf("account %s: %w", a.Name, err)
			}
			e.Keys[et] = k
		}
		v.byName[strings.ToLower(a.Name)] = e
		if a.UPN != "" {
			v.byUPN[strings.ToLower(strings.Split(a.UPN, "@")[0])] = e
		}
		if a.Type == TypeKrbtgt {
			v.krbtgt = e
		}
		for _, s := range a.SPNs {
			k := normSPN(s)
			v.bySPN[k] = append(v.bySPN[k], e)
		}
	}
	if v.krbtgt == nil || len(v.krbtgt.ETypes) == 0 {
		return nil, fmt.Errorf("the krbtgt account has no usable key")
	}
	return v, nil
}

// normSPN lower-cases an SPN for lookups; AD compares SPNs case-insensitively.
func normSPN(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// Account finds an account by sAMAccountName, then by UPN prefix, case-insensitively.
func (v *View) Account(name string) (*Entry, bool) {
	n := strings.ToLower(name)
	if e, ok := v.byName[n]; ok {
		return e, true
	}
	e, ok := v.byUPN[n]
	return e, ok
}

// LogonAccount finds the account a logon names: a sAMAccountName, a UPN,
// or the implicit UPN name@realm every account has (MS-NLMP clients send
// "administrator@LAB.LOCAL" with an empty domain).
func (v *View) LogonAccount(name string) (*Entry, bool) {
	if e, ok := v.Account(name); ok {
		return e, true
	}
	if u, dom, ok := strings.Cut(name, "@"); ok && strings.EqualFold(dom, v.Lab.Realm) {
		return v.Account(u)
	}
	return nil, false
}

// Krbtgt returns the realm's krbtgt account (the one of type krbtgt).
func (v *View) Krbtgt() *Entry { return v.krbtgt }

// GroupRID resolves a group name.
func (v *View) GroupRID(name string) (uint32, bool) {
	r, ok := v.groups[strings.ToLower(name)]
	return r, ok
}

// Resolution says how a service name was found.
type Resolution struct {
	Entry      *Entry
	SPN        string   // the name as asked
	Via        string   // "spn", "account", "host-mapping", "krbtgt"
	MappedFrom string   // for host-mapping: HOST/web.lab.local
	Duplicates []string // accounts that all own the SPN (AD logs KDC event 11)
}

// ResolveService finds the account whose key encrypts a ticket for name, with
// AD's rules: krbtgt/REALM; an SPN registered on exactly one account; a
// sAMAccountName (tickets to user accounts, as for S4U2Self); else, for a
// service class in sPNMappings, the account that holds HOST/<host>.
func (v *View) ResolveService(name types.PrincipalName) (Resolution, bool) {
	ns := name.NameString
	spn := strings.Join(ns, "/")
	r := Resolution{SPN: spn}
	if len(ns) == 2 && strings.EqualFold(ns[0], "krbtgt") {
		if strings.EqualFold(ns[1], v.Lab.Realm) {
			r.Entry, r.Via = v.Krbtgt(), "krbtgt"
			return r, r.Entry != nil
		}
		return r, false
	}
	if owners := v.bySPN[normSPN(spn)]; len(owners) > 0 {
		if len(owners) > 1 {
			for _, o := range owners {
				r.Duplicates = append(r.Duplicates, o.Name)
			}
			return r, false
		}
		r.Entry, r.Via = owners[0], "spn"
		return r, true
	}
	if len(ns) == 1 {
		n := ns[0]
		// NT-MS-PRINCIPAL "DOMAIN\account" (MS-KILE 3.3.5.6.1), as impacket's
		// GetUserSPNs.py names the accounts it roasts.
		if d, a, ok := strings.Cut(n, `\`); ok && (strings.EqualFold(d, v.Lab.NetBIOS) || strings.EqualFold(d, v.Lab.Realm)) {
			n = a
		}
		if e, ok := v.Account(n); ok {
			r.Entry, r.Via = e, "account"
			return r, true
		}
		return r, false
	}
	if len(ns) >= 2 && mappedToHost[strings.ToLower(ns[0])] {
		host := append([]string{"HOST"}, ns[1:]...)
		hs := strings.Join(host, "/")
		if owners := v.bySPN[normSPN(hs)]; len(owners) == 1 {
			r.Entry, r.Via, r.MappedFrom = owners[0], "host-mapping", hs
			return r, true
		}
	}
	return r, false
}

// SPNOwners returns the accounts that register spn exactly (setspn -Q).
func (v *View) SPNOwners(spn string) []*Entry { return v.bySPN[normSPN(spn)] }

// Duplicates lists SPNs registered on more than one account (setspn -X).
func (v *View) Duplicates() map[string][]string {
	out := map[string][]string{}
	for k, es := range v.bySPN {
		if len(es) > 1 {
			for _, e := range es {
				out[k] = append(out[k], e.Name)
			}
			sort.Strings(out[k])
		}
	}
	return out
}

// GroupRIDs returns the RIDs of the account's groups (its primary group excluded).
func (v *View) GroupRIDs(a *Account) []uint32 {
	var out []uint32
	for _, g := range a.Groups {
		if r, ok := v.GroupRID(g); ok {
			out = append(out, r)
		}
	}
	return out
}

// InGroup reports group membership by name.
func (a *Account) InGroup(name string) bool {
	for _, g := range a.Groups {
		if strings.EqualFold(g, name) {
			return true
		}
	}
	return false
}

// CannotBeDelegated is AD's NOT_DELEGATED or membership of Protected Users
// (MS-KILE 3.3.5.7; Protected Users: no delegation, AES only, 4-hour TGT).
func (a *Account) CannotBeDelegated() bool { return a.Sensitive || a.InGroup("Protected Users") }

// ViewOf indexes a lab that is not in a store (a copy read from a container).
func ViewOf(l *Lab) (*View, error) { return buildView(l, &keyCache{}, 0) }

// ResolveSPN names the account that holds an SPN written as text
// (HTTP/web.lab.local), with the KDC's rules (sPNMappings included).
func (v *View) ResolveSPN(spn string) (string, bool) {
	r, ok := v.ResolveService(types.PrincipalName{NameType: 2, NameString: strings.Split(spn, "/")})
	if !ok || r.Entry == nil {
		return "", false
	}
	return r.Entry.Name, true
}

// SPNMappings is the sPNMappings value AD keeps on CN=Directory Service
// (MS-ADTS 6.1.1.2.4.1.2): the service classes HOST stands for.
func SPNMappings() []string { return append([]string(nil), sPNMappings...) }

// GroupNames are the domain's groups, well-known and the lab's, by RID.
func (v *View) GroupNames() map[uint32]string {
	out := map[uint32]string{}
	for _, g := range v.Lab.Groups {
		out[g.RID] = g.Name
	}
	for n, r := range wellKnownGroups {
		if _, ok := out[r]; !ok {
			out[r] = wellKnownGroupName[n]
		}
	}
	return out
}

var wellKnownGroupName = map[string]string{
	"domain admins": "Domain Admins", "domain users": "Domain Users", "domain guests": "Domain Guests",
	"domain computers": "Domain Computers", "domain controllers": "Domain Controllers", "protected users": "Protected Users",
	"read-only domain controllers": "Read-only Domain Controllers", "allowed rodc password replication group": "Allowed RODC Password Replication Group",
	"denied rodc password replication group": "Denied RODC Password Replication Group",
}

// Entries are every account of the view, in the lab file's order.
func (v *View) Entries() []*Entry {
	out := make([]*Entry, 0, len(v.Lab.Accounts))
	for i := range v.Lab.Accounts {
		out = append(out, v.byName[strings.ToLower(v.Lab.Accounts[i].Name)])
	}
	return out
}
