package ldapserver

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/doublehop/doublehop/ldap"
	"github.com/doublehop/doublehop/ntds"

	"github.com/doublehop/doublehop/directory"
	"github.com/doublehop/doublehop/dtyp"
	"github.com/doublehop/doublehop/events"
)

// Writes (RFC 4511 §4.6, §4.7, §4.8) with AD's rules: only a lab
// administrator may change another account, SPNs stay unique in the forest
// (MS-ADTS 3.1.1.5.1.3), userAccountControl keeps the account type,
// unicodePwd needs an encrypted connection (MS-ADTS 3.1.1.3.1.5). Each change
// lands in the directory file through one atomic update and is logged as 5136.

// Modify operations (RFC 4511 §4.6).
const (
	modAdd     = 0
	modDelete  = 1
	modReplace = 2
)

// typeBits are userAccountControl's account-type bits, which the object
// class decides on an add.
const typeBits = directory.UACNormalAccount | directory.UACWorkstationTrustAccount | directory.UACServerTrustAccount

type change struct {
	op   int
	attr string
	vals [][]byte
}

// changeRecord is one value added or deleted, for the 5136 events.
type changeRecord struct {
	attr, op, value string
}

func (c *conn) denyWrite(id int64, op int, dn, what string) bool {
	if c.who != nil && c.who.Admin {
		return false
	}
	c.s.ev.Emit(events.Event{ID: events.ObjectOperation, Outcome: events.Failure, Client: c.name(), Target: dn, Reason: "INSUFF_ACCESS_RIGHTS",
		Address: c.raw.RemoteAddr().String(), Message: "An operation was performed on an object: Write Property (" + what + ") refused; " +
			c.name() + " is not a domain administrator."})
	c.reply(id, ldap.Result(op, ldap.InsufficientAccessRights, "", diagInsufficient))
	return true
}

func (c *conn) handleModify(m *ldap.Message) {
	if c.needBind(m.ID, ldap.OpModifyResponse) {
		return
	}
	p := m.Op
	if len(p.Children) < 2 {
		c.reply(m.ID, ldap.Result(ldap.OpModifyResponse, ldap.ProtocolErrorCode, "", "modify request is missing fields"))
		return
	}
	dn := ldap.Str(p.Children[0])
	var changes []change
	var names []string
	for _, ch := range p.Children[1].Children {
		if len(ch.Children) != 2 || len(ch.Children[1].Children) < 1 {
			c.reply(m.ID, ldap.Result(ldap.OpModifyResponse, ldap.ProtocolErrorCode, "", "malformed change"))
			return
		}
		op, _ := ldap.Int(ch.Children[0])
		x := change{op: int(op), attr: ldap.Str(ch.Children[1].Children[0])}
		if len(ch.Children[1].Children) > 1 {
			for _, v := range ch.Children[1].Children[1].Children {
				x.vals = append(x.vals, ldap.Val(v))
			}
		}
		changes = append(changes, x)
		names = append(names, x.attr)
	}
	if oid := criticalUnknown(m.Controls); oid != "" {
		c.reply(m.ID, ldap.Result(ldap.OpModifyResponse, ldap.UnavailableCriticalExtension, "", "unsupported critical ldap.NewControl "+oid))
		return
	}
	permissive := false
	for _, ctl := range m.Controls {
		if ctl.OID == ldap.OIDPermissiveModify {
			permissive = true
		}
	}
	_, t := c.s.view()
	e, ok := t.Lookup(dn)
	if !ok {
		c.reply(m.ID, ldap.Result(ldap.OpModifyResponse, ldap.NoSuchObject, bestMatch(t, ldap.NormDN(dn)), noSuchObject(dn).Message))
		return
	}
	if c.denyWrite(m.ID, ldap.OpModifyResponse, e.DN, strings.Join(names, ", ")) {
		return
	}
	if e.Account == "" {
		if ldap.NormDN(e.DN) == ldap.NormDN(c.s.cfg.Directory.View().Lab.DomainDN()) {
			c.modifyDomain(m.ID, e, changes)
			return
		}
		if g, ok := e.Get("objectClass"); ok && hasValue(g, "group") {
			c.modifyGroup(m.ID, e, t, changes)
			return
		}
		if c.s.cfg.Directory.View().Lab.Object(e.DN) != nil {
			c.modifyObject(m.ID, e.DN, changes)
			return
		}
		c.reply(m.ID, ldap.Result(ldap.OpModifyResponse, ldap.UnwillingToPerform, "", "0000209A: SvcErr: DSID-031A1021, problem 5003 (WILL_NOT_PERFORM), data 0 (the lab writes accounts and group membership only)"))
		return
	}
	var records []changeRecord
	var lerr *ldap.Error
	_, err := c.s.cfg.Directory.Update(func(l *directory.Lab) error {
		a := l.Account(e.Account)
		if a == nil {
			lerr = noSuchObject(dn)
			return lerr
		}
		records = nil
		for _, ch := range changes {
			r, err := c.apply(l, a, ch, permissive)
			if err != nil {
				lerr = err
				return err
			}
			records = append(records, r...)
		}
		return nil
	})
	if err != nil {
		if lerr == nil {
			lerr = &ldap.Error{Code: ldap.ConstraintViolation, Message: "0000202F: AtrErr: DSID-03190F80, problem 1005 (CONSTRAINT_ATT_TYPE), data 0 (" + err.Error() + ")", Reason: "INVALID"}
		}
		if lerr.Reason == "DUPLICATE_SPN" {
			c.s.ev.Emit(events.Event{ID: events.SPNNotUnique, Outcome: events.Failure, Client: c.name(), Account: e.Account, Target: e.DN, Reason: "DUPLICATE_SPN",
				Message: "The attribute value provided is not unique in the forest or partition: servicePrincipalName on " + e.DN})
		}
		c.reply(m.ID, ldap.Result(ldap.OpModifyResponse, lerr.Code, "", lerr.Message))
		return
	}
	for _, r := range records {
		c.s.ev.Emit(events.Event{ID: events.DirectoryChange, Outcome: events.Success, Client: c.name(), Account: e.Account, Target: e.DN, Reason: r.op,
			Address: c.raw.RemoteAddr().String(),
			Message: fmt.Sprintf("A directory service object was modified: %s %s: %s %s", e.DN, r.attr, strings.ReplaceAll(strings.ToLower(r.op), "_", " "), r.value)})
	}
	c.reply(m.ID, ldap.Result(ldap.OpModifyResponse, ldap.Success, "", ""))
}

func hasValue(a ldap.Attr, v string) bool {
	for _, x := range a.Vals {
		if strings.EqualFold(string(x), v) {
			return true
		}
	}
	return false
}

// modifyDomain writes the domain object's lockout policy (MS-ADTS 3.1.1.5:
// lockoutThreshold, lockoutDuration, lockOutObservationWindow, intervals in
// negative 100 ns units), the same policy `doublehop policy set` writes.
func (c *conn) modifyDomain(id int64, e *ldap.Entry, changes []change) {
	var recs []changeRecord
	var lerr *ldap.Error
	_, err := c.s.cfg.Directory.Update(func(l *directory.Lab) error {
		recs = nil
		for _, ch := range changes {
			v := ""
			if len(ch.vals) > 0 {
				v = string(ch.vals[0])
			}
			n, perr := strconv.ParseInt(v, 10, 64)
			if ch.op == modDelete || v == "" {
				n, perr = 0, nil
			}
			if perr != nil {
				lerr = attrErr(ldap.InvalidAttributeSyntax, "SYNTAX", "00000057: LdapErr: DSID-0C090D8A, comment: Error in attribute conversion operation, data 0, v4563 (%s %q)", ch.attr, v)
				return lerr
			}
			interval := func() directory.Duration {
				if n == 0 {
					return directory.LockoutForever
				}
				return directory.Duration(time.Duration(-n) * 100)
			}
			switch strings.ToLower(ch.attr) {
			case "lockoutthreshold":
				l.Policy.LockoutThreshold = int(n)
			case "lockoutduration":
				l.Policy.LockoutDuration = interval()
			case "lockoutobservationwindow":
				l.Policy.LockoutWindow = directory.Duration(time.Duration(-n) * 100)
			case "msds-logontimesyncinterval":
				// The lab keeps no lastLogonTimestamp to replicate: nothing to change.
			default:
				lerr = attrErr(ldap.UnwillingToPerform, "NOT_WRITABLE", "0000209A: SvcErr: DSID-031A1021, problem 5003 (WILL_NOT_PERFORM), data 0 (the lab writes the domain's lockout policy only, not %s)", ch.attr)
				return lerr
			}
			recs = append(recs, changeRecord{ch.attr, "VALUE_ADDED", v})
		}
		return nil
	})
	c.modified(id, e.DN, recs, lerr, err)
}

// modifyGroup changes a group's member attribute: each value is an account's
// DN, and the account's membership changes (Protected Users, Domain Admins).
func (c *conn) modifyGroup(id int64, g *ldap.Entry, t *ntds.Tree, changes []change) {
	name := ""
	if a, ok := g.Get("sAMAccountName"); ok && len(a.Vals) > 0 {
		name = string(a.Vals[0])
	}
	var recs []changeRecord
	var lerr *ldap.Error
	_, err := c.s.cfg.Directory.Update(func(l *directory.Lab) error {
		recs = nil
		for _, ch := range changes {
			if !strings.EqualFold(ch.attr, "member") {
				lerr = attrErr(ldap.UnwillingToPerform, "NOT_WRITABLE", "0000209A: SvcErr: DSID-031A1021, problem 5003 (WILL_NOT_PERFORM), data 0 (the lab writes a group's member only, not %s)", ch.attr)
				return lerr
			}
			for _, v := range ch.vals {
				e, ok := t.Lookup(string(v))
				if !ok || e.Account == "" {
					lerr = attrErr(ldap.NoSuchObject, "NO_SUCH_MEMBER", "00000525: NameErr: DSID-031A1256, problem 2001 (NO_OBJECT), data 0 (%s)", v)
					return lerr
				}
				a := l.Account(e.Account)
				in := a.InGroup(name)
				switch {
				case ch.op == modAdd || ch.op == modReplace:
					if in && ch.op == modAdd {
						lerr = attrErr(ldap.EntryAlreadyExists, "VALUE_EXISTS", "00000562: UpdErr: DSID-031A11C4, problem 6005 (ENTRY_EXISTS), data 0")
						return lerr
					}
					if !in {
						a.Groups = append(a.Groups, name)
					}
					recs = append(recs, changeRecord{"member", "VALUE_ADDED", e.DN})
				case ch.op == modDelete:
					if !in {
						lerr = attrErr(ldap.UnwillingToPerform, "NO_SUCH_VALUE", "00000561: SvcErr: DSID-031A1021, problem 5003 (WILL_NOT_PERFORM), data 0")
						return lerr
					}
					for i, x := range a.Groups {
						if strings.EqualFold(x, name) {
							a.Groups = append(a.Groups[:i], a.Groups[i+1:]...)
							break
						}
					}
					recs = append(recs, changeRecord{"member", "VALUE_DELETED", e.DN})
				}
			}
		}
		return nil
	})
	c.modified(id, g.DN, recs, lerr, err)
}

// modified answers a modify of dn: the refusal, or success and a 5136 per value changed.
func (c *conn) modified(id int64, dn string, recs []changeRecord, lerr *ldap.Error, err error) {
	if err != nil {
		if lerr == nil {
			lerr = attrErr(ldap.ConstraintViolation, "INVALID", "%v", err)
		}
		c.reply(id, ldap.Result(ldap.OpModifyResponse, lerr.Code, "", lerr.Message))
		return
	}
	for _, r := range recs {
		c.s.ev.Emit(events.Event{ID: events.DirectoryChange, Outcome: events.Success, Client: c.name(), Target: dn, Reason: r.op,
			Address: c.raw.RemoteAddr().String(), Message: fmt.Sprintf("A directory service object was modified: %s %s: %s %s", dn, r.attr, strings.ReplaceAll(strings.ToLower(r.op), "_", " "), r.value)})
	}
	c.reply(id, ldap.Result(ldap.OpModifyResponse, ldap.Success, "", ""))
}

func attrErr(code ldap.ResultCode, reason, format string, args ...any) *ldap.Error {
	return &ldap.Error{Code: code, Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// apply makes one change to the account and returns what changed.
func (c *conn) apply(l *directory.Lab, a *directory.Account, ch change, permissive bool) ([]changeRecord, *ldap.Error) {
	attr := strings.ToLower(ch.attr)
	strs := make([]string, len(ch.vals))
	for i, v := range ch.vals {
		strs[i] = string(v)
	}
	single := func() (string, *ldap.Error) {
		if ch.op == modDelete && len(strs) == 0 {
			return "", nil
		}
		if len(strs) != 1 {
			return "", attrErr(ldap.ConstraintViolation, "SINGLE_VALUED", "00002081: AtrErr: DSID-03151E7B, #1:\n\t0: 00002081: DSID-03151E7B, problem 1005 (CONSTRAINT_ATT_TYPE), data 0, Att (%s): %s is single-valued", ch.attr, ch.attr)
		}
		return strs[0], nil
	}
	switch attr {
	case "serviceprincipalname":
		return c.applySPN(l, a, ch.op, strs, permissive)
	case "msds-allowedtodelegateto":
		cur := a.Delegation.AllowedTo
		next, recs, err := multi(ch.attr, cur, ch.op, strs, permissive)
		if err != nil {
			return nil, err
		}
		a.SetAllowedToDelegateTo(next)
		return recs, nil
	case "useraccountcontrol":
		s, err := single()
		if err != nil {
			return nil, err
		}
		u, perr := strconv.ParseInt(s, 10, 64)
		if perr == nil && ch.op == modDelete {
			// delete: old, add: new is how samdb.py's toggle_userAccountFlags
			// replaces it; the delete must name the current value.
			if uint32(u) != a.UserAccountControl() {
				return nil, attrErr(ldap.NoSuchAttribute, "NO_SUCH_VALUE", "00002083: AtrErr: DSID-03151F95, #1: 0: 00002083: DSID-03151F95, problem 1001 (NO_ATTRIBUTE_OR_VAL), data 0, Att 90008 (userAccountControl)")
			}
			return nil, nil
		}
		if perr != nil || ch.op == modDelete {
			return nil, attrErr(ldap.InvalidAttributeSyntax, "SYNTAX", "00000057: LdapErr: DSID-0C090D8A, comment: Error in attribute conversion operation, data 0, v4563 (userAccountControl %q)", s)
		}
		old := a.UserAccountControl()
		if err := a.SetUserAccountControl(uint32(u)); err != nil {
			return nil, attrErr(ldap.UnwillingToPerform, "UAC", "0000052D: SvcErr: DSID-031A12D2, problem 5003 (WILL_NOT_PERFORM), data 0 (%v)", err)
		}
		return []changeRecord{{ch.attr, "VALUE_DELETED", fmt.Sprintf("0x%x", old)}, {ch.attr, "VALUE_ADDED", fmt.Sprintf("0x%x", a.UserAccountControl())}}, nil
	case "msds-allowedtoactonbehalfofotheridentity":
		if ch.op == modDelete || (ch.op == modReplace && len(ch.vals) == 0) {
			old := strings.Join(a.AllowedToActOnBehalfOf, ",")
			a.AllowedToActOnBehalfOf = nil
			return []changeRecord{{ch.attr, "VALUE_DELETED", old}}, nil
		}
		if len(ch.vals) != 1 {
			return nil, attrErr(ldap.ConstraintViolation, "SINGLE_VALUED", "msDS-AllowedToActOnBehalfOfOtherIdentity is single-valued")
		}
		sd, err := dtyp.ParseSecurityDescriptor(ch.vals[0])
		if err != nil {
			return nil, attrErr(ldap.InvalidAttributeSyntax, "SYNTAX", "00000057: LdapErr: DSID-0C090D8A, comment: Error in attribute conversion operation, data 0, v4563 (%v)", err)
		}
		var names []string
		for _, s := range sd.AllowedSIDs() {
			acct := accountBySID(l, s.String())
			if acct == "" {
				return nil, attrErr(ldap.ConstraintViolation, "UNKNOWN_SID", "0000202F: AtrErr: DSID-03190F80, problem 1005 (CONSTRAINT_ATT_TYPE), data 0 (%s is not an account of %s)", s, l.NetBIOS)
			}
			names = append(names, acct)
		}
		a.AllowedToActOnBehalfOf = names
		return []changeRecord{{ch.attr, "VALUE_ADDED", "O:BAD:(A;;CCDCLCSWRPWPDTLOCRSDRCWDWO;;;" + strings.Join(names, ")(A;;…;;;") + ")"}}, nil
	case "msds-supportedencryptiontypes":
		s, err := single()
		if err != nil {
			return nil, err
		}
		if ch.op == modDelete {
			a.Enctypes = nil
			return []changeRecord{{ch.attr, "VALUE_DELETED", ""}}, nil
		}
		u, perr := strconv.ParseUint(s, 10, 32)
		if perr != nil {
			return nil, attrErr(ldap.InvalidAttributeSyntax, "SYNTAX", "msDS-SupportedEncryptionTypes %q is not a number", s)
		}
		if err := a.SetSupportedEncryptionTypes(uint32(u)); err != nil {
			return nil, attrErr(ldap.UnwillingToPerform, "ETYPES", "%v", err)
		}
		return []changeRecord{{ch.attr, "VALUE_ADDED", s}}, nil
	case "msds-revealondemandgroup", "msds-neverrevealgroup":
		// A read-only DC's password replication policy (MS-ADTS 3.1.1.11.2.*): DNs, kept as written.
		if a.Type != directory.TypeComputer {
			return nil, attrErr(ldap.ObjectClassViolation, "NOT_RODC", "00002014: %s belongs to a DC's computer object", ch.attr)
		}
		if a.RODC == nil {
			a.RODC = &directory.RODC{}
		}
		cur := &a.RODC.RevealOnDemand
		if attr == "msds-neverrevealgroup" {
			cur = &a.RODC.NeverReveal
		}
		next, recs, err := multi(ch.attr, *cur, ch.op, strs, true)
		if err != nil {
			return nil, err
		}
		*cur = next
		return recs, nil
	case "msds-krbtgtlink":
		if a.RODC == nil {
			a.RODC = &directory.RODC{}
		}
		if ch.op == modDelete || len(strs) == 0 {
			old := a.RODC.KrbTgt
			a.RODC.KrbTgt = ""
			return []changeRecord{{ch.attr, "VALUE_DELETED", old}}, nil
		}
		name := ""
		for i := range l.Accounts {
			if strings.EqualFold(l.DN(&l.Accounts[i]), strs[0]) {
				name = l.Accounts[i].Name
			}
		}
		if name == "" {
			return nil, attrErr(ldap.NoSuchObject, "NO_SUCH_OBJECT", "0000208D: NameErr: DSID-03100245, problem 2001 (NO_OBJECT), data 0 (%s)", strs[0])
		}
		a.RODC.KrbTgt = name
		return []changeRecord{{ch.attr, "VALUE_ADDED", strs[0]}}, nil
	case "managedby":
		if a.RODC == nil {
			a.RODC = &directory.RODC{}
		}
		v, err := single()
		if err != nil {
			return nil, err
		}
		a.RODC.ManagedBy = v
		return []changeRecord{{ch.attr, "VALUE_ADDED", v}}, nil
	case "pwdlastset":
		// MS-ADTS 3.1.1.5.3.1.1: 0 forces a change at next logon, -1 clears it.
		v, err := single()
		if err != nil {
			return nil, err
		}
		switch v {
		case "0":
			a.MustChangePassword = true
		case "-1":
			a.MustChangePassword = false
		default:
			return nil, attrErr(ldap.UnwillingToPerform, "PWDLASTSET", "0000209A: SvcErr: DSID-031A1021, problem 5003 (WILL_NOT_PERFORM), data 0 (pwdLastSet takes 0 or -1)")
		}
		return []changeRecord{{ch.attr, "VALUE_ADDED", v}}, nil
	case "displayname", "description":
		s, err := single()
		if err != nil {
			return nil, err
		}
		a.DisplayName = s
		return []changeRecord{{ch.attr, "VALUE_ADDED", s}}, nil
	case "unicodepwd":
		if !c.tls && !c.layerConf {
			return nil, attrErr(ldap.UnwillingToPerform, "CONFIDENTIALITY", "0000001F: SvcErr: DSID-031A12D2, problem 5003 (WILL_NOT_PERFORM), data 0 (a password is set only over an encrypted connection)")
		}
		if ch.op != modReplace || len(ch.vals) != 1 {
			return nil, attrErr(ldap.UnwillingToPerform, "PASSWORD_CHANGE", "0000001F: SvcErr: DSID-031A12D2, problem 5003 (WILL_NOT_PERFORM), data 0 (the lab resets passwords with a replace)")
		}
		pw, ok := quotedUTF16(ch.vals[0])
		if !ok {
			return nil, attrErr(ldap.ConstraintViolation, "SYNTAX", "0000052D: AtrErr: DSID-03191083, #1:\n\t0: 0000052D: DSID-03191083, problem 1005 (CONSTRAINT_ATT_TYPE), data 0, Att 9005a (unicodePwd)\n")
		}
		if err := a.SetPassword(pw); err != nil {
			return nil, attrErr(ldap.ConstraintViolation, "PASSWORD", "%v", err)
		}
		return []changeRecord{{"unicodePwd", "VALUE_ADDED", "(password reset; msDS-KeyVersionNumber " + strconv.Itoa(a.KVNO) + ")"}}, nil
	}
	return nil, attrErr(ldap.UnwillingToPerform, "NOT_WRITABLE", "0000209A: SvcErr: DSID-031A1021, problem 5003 (WILL_NOT_PERFORM), data 0 (the lab does not write %s)", ch.attr)
}

// applySPN writes servicePrincipalName with the 2012 R2 uniqueness check.
func (c *conn) applySPN(l *directory.Lab, a *directory.Account, op int, vals []string, permissive bool) ([]changeRecord, *ldap.Error) {
	next, recs, err := multi("servicePrincipalName", a.SPNs, op, vals, permissive)
	if err != nil {
		return nil, err
	}
	for _, s := range next {
		if !strings.Contains(s, "/") {
			return nil, attrErr(ldap.ConstraintViolation, "SYNTAX", "0000202F: AtrErr: DSID-03190F80, problem 1005 (CONSTRAINT_ATT_TYPE), data 0, Att 90303 (servicePrincipalName): %q is not service/host", s)
		}
		for _, o := range l.Accounts {
			if strings.EqualFold(o.Name, a.Name) {
				continue
			}
			for _, x := range o.SPNs {
				if strings.EqualFold(x, s) {
					return nil, &ldap.Error{Code: ldap.ConstraintViolation, Reason: "DUPLICATE_SPN", Message: diagDuplicateSPN}
				}
			}
		}
	}
	a.SPNs = next
	return recs, nil
}

// multi applies add/delete/replace to a multi-valued attribute.
func multi(attr string, cur []string, op int, vals []string, permissive bool) ([]string, []changeRecord, *ldap.Error) {
	has := func(list []string, v string) int {
		for i, x := range list {
			if strings.EqualFold(x, v) {
				return i
			}
		}
		return -1
	}
	out := append([]string(nil), cur...)
	var recs []changeRecord
	switch op {
	case modAdd:
		for _, v := range vals {
			if has(out, v) >= 0 {
				if permissive {
					continue
				}
				return nil, nil, attrErr(ldap.AttributeOrValueExists, "VALUE_EXISTS", "00002083: AtrErr: DSID-03151818, #1:\n\t0: 00002083: DSID-03151818, problem 1006 (ATT_OR_VALUE_EXISTS), data 0, Att (%s)\n", attr)
			}
			out = append(out, v)
			recs = append(recs, changeRecord{attr, "VALUE_ADDED", v})
		}
	case modDelete:
		if len(vals) == 0 {
			for _, v := range out {
				recs = append(recs, changeRecord{attr, "VALUE_DELETED", v})
			}
			return nil, recs, nil
		}
		for _, v := range vals {
			i := has(out, v)
			if i < 0 {
				if permissive {
					continue
				}
				return nil, nil, attrErr(ldap.NoSuchAttribute, "NO_SUCH_VALUE", "00002085: AtrErr: DSID-03152E29, #1:\n\t0: 00002085: DSID-03152E29, problem 1001 (NO_ATTRIBUTE_OR_VAL), data 0, Att (%s)\n", attr)
			}
			out = append(out[:i], out[i+1:]...)
			recs = append(recs, changeRecord{attr, "VALUE_DELETED", v})
		}
	case modReplace:
		for _, v := range out {
			if has(vals, v) < 0 {
				recs = append(recs, changeRecord{attr, "VALUE_DELETED", v})
			}
		}
		for _, v := range vals {
			if has(cur, v) < 0 {
				recs = append(recs, changeRecord{attr, "VALUE_ADDED", v})
			}
		}
		out = append([]string(nil), vals...)
	default:
		return nil, nil, attrErr(ldap.ProtocolErrorCode, "OPERATION", "modify operation %d", op)
	}
	return out, recs, nil
}

func accountBySID(l *directory.Lab, sid string) string {
	for _, a := range l.Accounts {
		if fmt.Sprintf("%s-%d", l.DomainSID, a.RID) == sid {
			return a.Name
		}
	}
	return ""
}

// quotedUTF16 decodes unicodePwd: the password in double quotes, UTF-16LE
// (MS-ADTS 3.1.1.3.1.5.1).
func quotedUTF16(b []byte) (string, bool) {
	if len(b)%2 != 0 || len(b) < 4 {
		return "", false
	}
	s := dtyp.FromUTF16LE(b)
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return "", false
	}
	return s[1 : len(s)-1], true
}

// handleAdd creates a user or computer account (what Samba's tests and
// New-ADUser/New-ADComputer over LDAP do).
func (c *conn) handleAdd(m *ldap.Message) {
	if c.needBind(m.ID, ldap.OpAddResponse) {
		return
	}
	p := m.Op
	if len(p.Children) < 2 {
		c.reply(m.ID, ldap.Result(ldap.OpAddResponse, ldap.ProtocolErrorCode, "", "add request is missing fields"))
		return
	}
	dn := ldap.Str(p.Children[0])
	if c.denyWrite(m.ID, ldap.OpAddResponse, dn, "Create Child") {
		return
	}
	attrs := map[string][][]byte{}
	for _, a := range p.Children[1].Children {
		if len(a.Children) < 2 {
			continue
		}
		var vals [][]byte
		for _, v := range a.Children[1].Children {
			vals = append(vals, ldap.Val(v))
		}
		attrs[strings.ToLower(ldap.Str(a.Children[0]))] = vals
	}
	first := func(k string) string {
		if v := attrs[k]; len(v) > 0 {
			return string(v[0])
		}
		return ""
	}
	isComputer, isUser, isGroup := false, false, false
	for _, oc := range attrs["objectclass"] {
		switch strings.ToLower(string(oc)) {
		case "computer":
			isComputer = true
		case "user":
			isUser = true
		case "group":
			isGroup = true
		}
	}
	if isGroup && !isUser && !isComputer {
		c.addGroup(m.ID, dn, first("samaccountname"))
		return
	}
	if isUser && !isComputer && hasControl(m.Controls, oidRODCJoin) {
		c.addKrbtgtN(m.ID, dn) // an RODC's krbtgt: the DC names and numbers it
		return
	}
	if !isComputer && !isUser {
		oc := attrs["objectclass"]
		if len(oc) == 0 {
			c.reply(m.ID, ldap.Result(ldap.OpAddResponse, ldap.ObjectClassViolation, "", "00002014: objectClass is missing"))
			return
		}
		c.addObject(m.ID, dn, string(oc[len(oc)-1]), attrs)
		return
	}
	sam := first("samaccountname")
	if sam == "" {
		rdn := ldap.SplitDN(dn)
		if len(rdn) > 0 {
			_, sam, _ = strings.Cut(rdn[0], "=")
		}
	}
	acct := directory.Account{Name: sam, Type: directory.TypeUser, DisplayName: first("displayname"), UPN: first("userprincipalname")}
	uac, _ := strconv.ParseInt(first("useraccountcontrol"), 10, 64)
	if isComputer {
		acct.Type = directory.TypeComputer
		if uac&directory.UACServerTrustAccount != 0 {
			acct.Groups = []string{"Domain Controllers"} // a DC's account (SERVER_TRUST_ACCOUNT)
		}
	}
	if pw, ok := quotedUTF16([]byte(first("unicodepwd"))); ok {
		if !c.tls && !c.layerConf {
			c.reply(m.ID, ldap.Result(ldap.OpAddResponse, ldap.UnwillingToPerform, "", "0000001F: SvcErr: DSID-031A12D2, problem 5003 (WILL_NOT_PERFORM), data 0 (a password is set only over an encrypted connection)"))
			return
		}
		acct.Password = pw
	}
	for _, s := range attrs["serviceprincipalname"] {
		acct.SPNs = append(acct.SPNs, string(s))
	}
	var lerr *ldap.Error
	_, err := c.s.cfg.Directory.Update(func(l *directory.Lab) error {
		if acct.Type == directory.TypeUser && acct.Password == "" {
			lerr = attrErr(ldap.UnwillingToPerform, "PASSWORD", "0000052D: SvcErr: DSID-031A12D2, problem 5003 (WILL_NOT_PERFORM), data 0 (a user needs unicodePwd in the lab)")
			return lerr
		}
		a, err := l.NewAccount(acct)
		if err == nil {
			// An LDAP add sets exactly the SPNs it carries (no domain join's HOST SPNs).
			a.SPNs = append([]string(nil), acct.SPNs...)
			if ldap.NormDN(l.DN(a)) != ldap.NormDN(dn) {
				a.DN = dn // created outside its default container: keep the DN it was given
			}
		}
		if err != nil {
			if errors.Is(err, directory.ErrDuplicateSPN) {
				lerr = &ldap.Error{Code: ldap.ConstraintViolation, Reason: "DUPLICATE_SPN", Message: diagDuplicateSPN}
			} else if l.Account(acct.Name) != nil {
				lerr = attrErr(ldap.EntryAlreadyExists, "EXISTS", "00000524: UpdErr: DSID-031A11E2, problem 6005 (ENTRY_EXISTS), data 0")
			} else {
				lerr = attrErr(ldap.ConstraintViolation, "INVALID", "%v", err)
			}
			return lerr
		}
		if first("useraccountcontrol") != "" {
			if err := a.SetUserAccountControl(uint32(uac)&^typeBits | a.UserAccountControl()&typeBits); err != nil {
				lerr = attrErr(ldap.UnwillingToPerform, "UAC", "%v", err)
				return lerr
			}
		}
		// The other attributes an add may carry, set as a modify sets them.
		for _, attr := range []string{"msds-allowedtodelegateto", "msds-supportedencryptiontypes",
			"msds-allowedtoactonbehalfofotheridentity", "pwdlastset", "msds-revealondemandgroup", "msds-neverrevealgroup", "managedby"} {
			if v := attrs[attr]; len(v) > 0 {
				if _, e := c.apply(l, a, change{op: modReplace, attr: attr, vals: v}, true); e != nil {
					lerr = e
					return lerr
				}
			}
		}
		return nil
	})
	if err != nil {
		if lerr == nil {
			lerr = attrErr(ldap.ConstraintViolation, "INVALID", "%v", err)
		}
		c.reply(m.ID, ldap.Result(ldap.OpAddResponse, lerr.Code, "", lerr.Message))
		return
	}
	c.s.ev.Emit(events.Event{ID: events.DirectoryChange, Outcome: events.Success, Client: c.name(), Account: acct.Name, Target: dn, Reason: "OBJECT_CREATED",
		Address: c.raw.RemoteAddr().String(), Message: "A directory service object was created: " + dn})
	c.reply(m.ID, ldap.Result(ldap.OpAddResponse, ldap.Success, "", ""))
}

// addGroup creates a global security group with the next RID.
func (c *conn) addGroup(id int64, dn, sam string) {
	if sam == "" {
		if rdn := ldap.SplitDN(dn); len(rdn) > 0 {
			_, sam, _ = strings.Cut(rdn[0], "=")
		}
	}
	if _, err := c.s.cfg.Directory.Update(func(l *directory.Lab) error { _, err := l.NewGroup(sam); return err }); err != nil {
		c.reply(id, ldap.Result(ldap.OpAddResponse, ldap.EntryAlreadyExists, "", "00000524: UpdErr: DSID-031A11E2, problem 6005 (ENTRY_EXISTS), data 0 ("+err.Error()+")"))
		return
	}
	c.s.ev.Emit(events.Event{ID: events.DirectoryChange, Outcome: events.Success, Client: c.name(), Target: dn, Reason: "OBJECT_CREATED",
		Address: c.raw.RemoteAddr().String(), Message: "A directory service object was created: " + dn})
	c.reply(id, ldap.Result(ldap.OpAddResponse, ldap.Success, "", ""))
}

// handleDelete removes an account or a group.
func (c *conn) handleDelete(m *ldap.Message) {
	if c.needBind(m.ID, ldap.OpDelResponse) {
		return
	}
	dn := ldap.Str(m.Op)
	if c.denyWrite(m.ID, ldap.OpDelResponse, dn, "Delete") {
		return
	}
	_, t := c.s.view()
	e, ok := t.Lookup(dn)
	if !ok {
		c.reply(m.ID, ldap.Result(ldap.OpDelResponse, ldap.NoSuchObject, "", noSuchObject(dn).Message))
		return
	}
	if e.Account == "" && c.s.cfg.Directory.View().Lab.Object(e.DN) != nil {
		if _, err := c.s.cfg.Directory.Update(func(l *directory.Lab) error { l.RemoveObject(e.DN); return nil }); err != nil {
			c.reply(m.ID, ldap.Result(ldap.OpDelResponse, ldap.UnwillingToPerform, "", err.Error()))
			return
		}
		c.s.ev.Emit(events.Event{ID: events.DirectoryChange, Outcome: events.Success, Client: c.name(), Target: e.DN, Reason: "OBJECT_DELETED",
			Address: c.raw.RemoteAddr().String(), Message: "A directory service object was deleted: " + e.DN})
		c.reply(m.ID, ldap.Result(ldap.OpDelResponse, ldap.Success, "", ""))
		return
	}
	if e.Account == "" {
		g, isGroup := e.Get("objectClass")
		name, _ := e.Get("sAMAccountName")
		if !isGroup || !hasValue(g, "group") || len(name.Vals) == 0 {
			c.reply(m.ID, ldap.Result(ldap.OpDelResponse, ldap.UnwillingToPerform, "", "0000209A: SvcErr: DSID-031A1021, problem 5003 (WILL_NOT_PERFORM), data 0 (the lab deletes accounts and groups only)"))
			return
		}
		if _, err := c.s.cfg.Directory.Update(func(l *directory.Lab) error { return l.RemoveGroup(string(name.Vals[0])) }); err != nil {
			c.reply(m.ID, ldap.Result(ldap.OpDelResponse, ldap.UnwillingToPerform, "", "0000209A: SvcErr: DSID-031A1021, problem 5003 (WILL_NOT_PERFORM), data 0 ("+err.Error()+")"))
			return
		}
		c.s.ev.Emit(events.Event{ID: events.DirectoryChange, Outcome: events.Success, Client: c.name(), Target: e.DN, Reason: "OBJECT_DELETED",
			Address: c.raw.RemoteAddr().String(), Message: "A directory service object was deleted: " + e.DN})
		c.reply(m.ID, ldap.Result(ldap.OpDelResponse, ldap.Success, "", ""))
		return
	}
	if _, err := c.s.cfg.Directory.Update(func(l *directory.Lab) error { return l.RemoveAccount(e.Account) }); err != nil {
		c.reply(m.ID, ldap.Result(ldap.OpDelResponse, ldap.UnwillingToPerform, "", "0000209A: SvcErr: DSID-031A1021, problem 5003 (WILL_NOT_PERFORM), data 0 ("+err.Error()+")"))
		return
	}
	c.s.ev.Emit(events.Event{ID: events.DirectoryChange, Outcome: events.Success, Client: c.name(), Account: e.Account, Target: e.DN, Reason: "OBJECT_DELETED",
		Address: c.raw.RemoteAddr().String(), Message: "A directory service object was deleted: " + e.DN})
	c.reply(m.ID, ldap.Result(ldap.OpDelResponse, ldap.Success, "", ""))
}
