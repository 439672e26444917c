package ldapserver

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/doublehop/doublehop/directory"
	"github.com/doublehop/doublehop/events"
	"github.com/doublehop/doublehop/ldap"
)

// What a read-only DC's join writes over LDAP (Samba's join.py with
// Windows' object layout): the RODC's computer account with its password
// replication policy, its own krbtgt_N account (added with the RODC
// promotion control, which makes the DC number it), its server, NTDS Settings and
// connection objects in the configuration partition (kept as written), and
// a rename of the krbtgt account to its number.

// oidRODCJoin is LDAP_SERVER_RODC_DCPROMO_OID (MS-ADTS 3.1.1.3.4.1.23,
// Samba's "rodc_join"): the add is part of an RODC's promotion, and a user
// added with it is the RODC's krbtgt, which the DC names and numbers.
const oidRODCJoin = "1.2.840.113556.1.4.1341"

func hasControl(cs []ldap.Control, oid string) bool {
	for _, c := range cs {
		if c.OID == oid {
			return true
		}
	}
	return false
}

// addKrbtgtN creates an RODC's krbtgt account: a disabled user named
// krbtgt_N with a random password and msDS-SecondaryKrbTgtNumber N (MS-ADTS
// 3.1.1.11.2.16).
func (c *conn) addKrbtgtN(id int64, dn string) {
	var name string
	_, err := c.s.cfg.Directory.Update(func(l *directory.Lab) error {
		var n int
		for n == 0 || l.Account(fmt.Sprintf("krbtgt_%d", n)) != nil {
			var b [2]byte
			rand.Read(b[:])
			n = int(binary.LittleEndian.Uint16(b[:]))
		}
		pw := make([]byte, 90)
		rand.Read(pw)
		name = fmt.Sprintf("krbtgt_%d", n)
		a, err := l.NewAccount(directory.Account{Name: name, Type: directory.TypeUser, Password: base64.StdEncoding.EncodeToString(pw),
			DisplayName: name})
		if err != nil {
			return err
		}
		a.Disabled, a.SecondaryKrbTgtNumber, a.DN = true, n, dn
		return nil
	})
	if err != nil {
		c.reply(id, ldap.Result(ldap.OpAddResponse, ldap.UnwillingToPerform, "", "0000209A: SvcErr: DSID-031A1021, problem 5003 (WILL_NOT_PERFORM), data 0 ("+err.Error()+")"))
		return
	}
	c.s.ev.Emit(events.Event{ID: events.DirectoryChange, Outcome: events.Success, Client: c.name(), Account: name, Target: dn, Reason: "OBJECT_CREATED",
		Address: c.raw.RemoteAddr().String(), Message: "A directory service object was created: " + dn + " (a read-only DC's krbtgt account, " + name + ")"})
	c.reply(id, ldap.Result(ldap.OpAddResponse, ldap.Success, "", ""))
}

// addObject keeps an object of a class the lab does not model (server,
// nTDSDSA, nTDSConnection, ...) as written, under an existing parent.
func (c *conn) addObject(id int64, dn, class string, attrs map[string][][]byte) {
	_, t := c.s.view()
	if _, parent, ok := strings.Cut(dn, ","); !ok || func() bool { _, found := t.Lookup(parent); return !found }() {
		c.reply(id, ldap.Result(ldap.OpAddResponse, ldap.NoSuchObject, "", noSuchObject(dn).Message))
		return
	}
	if _, exists := t.Lookup(dn); exists {
		c.reply(id, ldap.Result(ldap.OpAddResponse, ldap.EntryAlreadyExists, "", "00000524: UpdErr: DSID-031A11E2, problem 6005 (ENTRY_EXISTS), data 0"))
		return
	}
	var g [16]byte
	rand.Read(g[:])
	o := directory.Object{DN: dn, Class: class, GUID: hex.EncodeToString(g[:]), Attrs: map[string][]string{}}
	for k, vals := range attrs {
		if k == "objectclass" {
			continue
		}
		for _, v := range vals {
			o.Attrs[k] = append(o.Attrs[k], string(v))
		}
	}
	if _, err := c.s.cfg.Directory.Update(func(l *directory.Lab) error {
		l.Objects = append(l.Objects, o)
		return nil
	}); err != nil {
		c.reply(id, ldap.Result(ldap.OpAddResponse, ldap.UnwillingToPerform, "", err.Error()))
		return
	}
	c.s.ev.Emit(events.Event{ID: events.DirectoryChange, Outcome: events.Success, Client: c.name(), Target: dn, Reason: "OBJECT_CREATED",
		Address: c.raw.RemoteAddr().String(), Message: "A directory service object was created: " + dn + " (" + class + ")"})
	c.reply(id, ldap.Result(ldap.OpAddResponse, ldap.Success, "", ""))
}

// modifyObject changes a kept object's attributes.
func (c *conn) modifyObject(id int64, dn string, changes []change) {
	var recs []changeRecord
	_, err := c.s.cfg.Directory.Update(func(l *directory.Lab) error {
		o := l.Object(dn)
		if o == nil {
			return fmt.Errorf("no object %s", dn)
		}
		recs = nil
		for _, ch := range changes {
			k := strings.ToLower(ch.attr)
			var vals []string
			for _, v := range ch.vals {
				vals = append(vals, string(v))
			}
			switch ch.op {
			case modAdd:
				o.Attrs[k] = append(o.Attrs[k], vals...)
			case modReplace:
				o.Attrs[k] = vals
			case modDelete:
				if len(vals) == 0 {
					delete(o.Attrs, k)
				} else {
					var keep []string
					for _, x := range o.Attrs[k] {
						if !containsFold(vals, x) {
							keep = append(keep, x)
						}
					}
					o.Attrs[k] = keep
				}
			}
			recs = append(recs, changeRecord{ch.attr, "VALUE_ADDED", strings.Join(vals, ";")})
		}
		return nil
	})
	c.modified(id, dn, recs, nil, err)
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// handleModDN renames an account or a kept object (RFC 4511 §4.9), what an
// RODC's join does to its krbtgt account once it has its number.
func (c *conn) handleModDN(m *ldap.Message) {
	if c.needBind(m.ID, ldap.OpModDNResponse) {
		return
	}
	p := m.Op
	if len(p.Children) < 3 {
		c.reply(m.ID, ldap.Result(ldap.OpModDNResponse, ldap.ProtocolErrorCode, "", "modify DN request is missing fields"))
		return
	}
	dn, newRDN := ldap.Str(p.Children[0]), ldap.Str(p.Children[1])
	_, parent, _ := strings.Cut(dn, ",")
	if len(p.Children) > 3 {
		parent = ldap.Str(p.Children[3]) // newSuperior [0]
	}
	if c.denyWrite(m.ID, ldap.OpModDNResponse, dn, "Rename") {
		return
	}
	_, t := c.s.view()
	e, ok := t.Lookup(dn)
	if !ok {
		c.reply(m.ID, ldap.Result(ldap.OpModDNResponse, ldap.NoSuchObject, "", noSuchObject(dn).Message))
		return
	}
	newDN := newRDN + "," + parent
	if _, taken := t.Lookup(newDN); taken {
		c.reply(m.ID, ldap.Result(ldap.OpModDNResponse, ldap.EntryAlreadyExists, "", "00000524: UpdErr: DSID-031A11E2, problem 6005 (ENTRY_EXISTS), data 0"))
		return
	}
	_, err := c.s.cfg.Directory.Update(func(l *directory.Lab) error {
		if e.Account != "" {
			if a := l.Account(e.Account); a != nil {
				a.DN = newDN // the sAMAccountName, and the keys' salt, stay
				return nil
			}
		}
		if o := l.Object(e.DN); o != nil {
			old := ldap.NormDN(o.DN)
			for i := range l.Objects { // the object and everything under it
				if n := ldap.NormDN(l.Objects[i].DN); n == old || strings.HasSuffix(n, ","+old) {
					l.Objects[i].DN = l.Objects[i].DN[:len(l.Objects[i].DN)-len(o.DN)] + newDN
				}
			}
			return nil
		}
		return fmt.Errorf("the lab renames accounts and the objects it keeps, not %s", e.DN)
	})
	if err != nil {
		c.reply(m.ID, ldap.Result(ldap.OpModDNResponse, ldap.UnwillingToPerform, "", "0000209A: SvcErr: DSID-031A1021, problem 5003 (WILL_NOT_PERFORM), data 0 ("+err.Error()+")"))
		return
	}
	c.s.ev.Emit(events.Event{ID: events.DirectoryChange, Outcome: events.Success, Client: c.name(), Account: e.Account, Target: dn, Reason: "OBJECT_MOVED",
		Address: c.raw.RemoteAddr().String(), Message: "A directory service object was moved: " + dn + " to " + newDN})
	c.reply(m.ID, ldap.Result(ldap.OpModDNResponse, ldap.Success, "", ""))
}

// tokenGroups is rootDSE's tokenGroups for the bound account: its SID,
// then its groups' (what join.py's get_mysid reads).
func (c *conn) tokenGroups(e *ldap.Entry) {
	if c.who == nil {
		return
	}
	_, t := c.s.view()
	a, ok := t.Lookup(c.s.cfg.Directory.View().Lab.DN(mustAccount(c.s.cfg.Directory.View(), c.who.Account)))
	if !ok {
		return
	}
	if sid, ok := a.Get("objectSid"); ok {
		e.AddBytes("tokenGroups", sid.Vals[0])
	}
	if mo, ok := a.Get("memberOf"); ok {
		for _, g := range mo.Vals {
			if ge, ok := t.Lookup(string(g)); ok {
				if sid, ok := ge.Get("objectSid"); ok {
					e.AddBytes("tokenGroups", sid.Vals[0])
				}
			}
		}
	}
}

func mustAccount(v *directory.View, name string) *directory.Account {
	if e, ok := v.Account(name); ok {
		return e.Account
	}
	return &directory.Account{Name: name}
}
