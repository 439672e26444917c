package directory

import (
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/doublehop/doublehop/dtyp"
)

// Read-only DCs and the objects their join writes. The lab runs one DC, but
// an RODC's account, its krbtgt_N and its configuration objects can be
// created over LDAP as Windows' and Samba's tools create them; the KDC then
// takes tickets the RODC issued (MS-KILE 3.3.5.7.1) under AD's password
// replication policy (MS-DRSR 4.1.10.5.14).

// Object is a directory object kept as written: its class and attributes.
type Object struct {
	DN    string              `yaml:"dn"`
	Class string              `yaml:"class"`
	GUID  string              `yaml:"guid"` // objectGUID, hex of the 16 bytes
	Attrs map[string][]string `yaml:"attrs,omitempty"`
}

// normDN is a DN compared the way AD compares them (case, spaces after commas).
func normDN(dn string) string {
	parts := strings.Split(dn, ",")
	for i, p := range parts {
		parts[i] = strings.ToLower(strings.TrimSpace(p))
	}
	return strings.Join(parts, ",")
}

// Object finds a kept object by DN.
func (l *Lab) Object(dn string) *Object {
	n := normDN(dn)
	for i := range l.Objects {
		if normDN(l.Objects[i].DN) == n {
			return &l.Objects[i]
		}
	}
	return nil
}

// RemoveObject deletes a kept object; it reports whether there was one.
func (l *Lab) RemoveObject(dn string) bool {
	n := normDN(dn)
	for i := range l.Objects {
		if normDN(l.Objects[i].DN) == n {
			l.Objects = append(l.Objects[:i], l.Objects[i+1:]...)
			return true
		}
	}
	return false
}

// KrbtgtN is the krbtgt account of the read-only DC numbered n.
func (v *View) KrbtgtN(n int) (*Entry, bool) {
	for _, e := range v.byName {
		if e.SecondaryKrbTgtNumber == n && n != 0 {
			return e, true
		}
	}
	return nil, false
}

// RODCOf is the read-only DC whose msDS-KrbTgtLink names the account.
func (v *View) RODCOf(krbtgt string) (*Entry, bool) {
	for _, e := range v.byName {
		if e.RODC != nil && strings.EqualFold(e.RODC.KrbTgt, krbtgt) {
			return e, true
		}
	}
	return nil, false
}

// Well-known RIDs of the password replication policy (MS-ADTS 6.1.1.6.13-14).
const (
	RIDAllowedRODC = 571 // Allowed RODC Password Replication Group
	RIDDeniedRODC  = 572 // Denied RODC Password Replication Group
)

// MayReveal applies a read-only DC's password replication policy to an
// account (MS-DRSR 4.1.10.5.14 ...RevealSecretsForUserAllowed): allowed
// when msDS-RevealOnDemandGroup names it or a group it is in, and
// msDS-NeverRevealGroup does not. It says why when it refuses.
func (v *View) MayReveal(rodc, e *Entry) (bool, string) {
	if rodc.RODC == nil {
		return false, rodc.Name + " is not a read-only DC"
	}
	for _, ref := range rodc.RODC.NeverReveal {
		if v.refersTo(ref, e) {
			return false, fmt.Sprintf("%s's msDS-NeverRevealGroup names %s (%s)", rodc.Name, ref, e.Name)
		}
	}
	for _, ref := range rodc.RODC.RevealOnDemand {
		if v.refersTo(ref, e) {
			return true, ""
		}
	}
	return false, fmt.Sprintf("%s's msDS-RevealOnDemandGroup does not name %s or a group of it", rodc.Name, e.Name)
}

// Holds reports whether the RODC holds the account's secrets.
func (rodc *RODC) Holds(name string) bool {
	for _, r := range rodc.Revealed {
		if strings.EqualFold(r, name) {
			return true
		}
	}
	return false
}

// refersTo reports whether a DN-valued reference (a DN, <SID=…> in string
// or hex form) is the account or a group it is in.
func (v *View) refersTo(ref string, e *Entry) bool {
	l := v.Lab
	sid := ""
	if r := strings.TrimSpace(ref); strings.HasPrefix(strings.ToUpper(r), "<SID=") {
		sid = strings.TrimSuffix(r[5:], ">")
		if i := strings.IndexByte(sid, '>'); i >= 0 {
			sid = sid[:i]
		}
		if b, err := hex.DecodeString(sid); err == nil {
			if s, err := dtyp.BinarySIDString(b); err == nil {
				sid = s
			}
		}
	}
	if sid != "" {
		if strings.EqualFold(sid, e.SID) {
			return true
		}
		switch sid {
		case "S-1-5-32-544": // BUILTIN\Administrators: Domain and Enterprise Admins are in it
			return e.RID == 500 || e.InGroup("Domain Admins") || e.InGroup("Enterprise Admins") || e.InGroup("Administrators")
		}
		for rid, name := range v.GroupNames() {
			if strings.EqualFold(sid, fmt.Sprintf("%s-%d", l.DomainSID, rid)) {
				return v.inGroup(e, rid, name)
			}
		}
		return false
	}
	n := normDN(ref)
	if n == normDN(l.DN(e.Account)) {
		return true
	}
	for rid, name := range v.GroupNames() {
		if n == normDN("CN="+name+",CN=Users,"+l.DomainDN()) {
			return v.inGroup(e, rid, name)
		}
	}
	return false
}

// inGroup is membership as the policy sees it: explicit, plus AD's default
// members of the Denied RODC Password Replication Group (the DCs, the
// krbtgt accounts, the domain's administrators).
func (v *View) inGroup(e *Entry, rid uint32, name string) bool {
	if e.InGroup(name) {
		return true
	}
	if rid == RIDDeniedRODC {
		return e.Type == TypeKrbtgt || e.SecondaryKrbTgtNumber != 0 || e.IsDC() || e.RID == 500 ||
			e.InGroup("Domain Admins") || e.InGroup("Enterprise Admins")
	}
	return false
}
