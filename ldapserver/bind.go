package ldapserver

import (
	"context"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/doublehop/doublehop/ldap"

	"github.com/doublehop/doublehop/directory"
	"github.com/doublehop/doublehop/events"
	"github.com/doublehop/doublehop/krb/gss"
	"github.com/doublehop/doublehop/ntlm"
	"github.com/doublehop/doublehop/ntstatus"
	ber "github.com/go-asn1-ber/asn1-ber"
)

// Binds as AD takes them (RFC 4513, RFC 4752, MS-ADTS 5.1.1.1): simple
// (over TLS unless the lab's named setting allows it in clear), SASL GSSAPI
// with RFC 4752's security layers, GSS-SPNEGO, and Microsoft's Sicily NTLM
// bind (MS-ADTS 5.1.1.1.3), which impacket and older Windows tools use.

// Bind authentication choices (RFC 4511 §4.2; MS-ADTS 5.1.1.1.3 for 9–11).
const (
	authSimple          = 0
	authSASL            = 3
	authSicilyDiscovery = 9
	authSicilyNegotiate = 10
	authSicilyResponse  = 11
)

// RFC 4752 §3.3 security layer bits.
const (
	layerNone      = 0x01
	layerIntegrity = 0x02
	layerConf      = 0x04
)

// GSS context flags that ask for per-message protection (RFC 4121 §4.1.1.1).
const (
	gssConf  = 0x10
	gssInteg = 0x20
)

// bindState is a multi-step bind in progress.
type bindState struct {
	mech string
	sec  *gss.SecContext     // GSSAPI: the established context awaiting the layer negotiation
	step int                 // GSSAPI: 1 = AP-REP sent, 2 = layer offer sent
	ntlm *ntlm.ServerContext // Sicily: the challenge sent
	// spnegoNTLM is NTLM inside GSS-SPNEGO, mid-handshake.
	spnegoNTLM *gss.NTLMAcceptor
	who        *identity
}

func (c *conn) handleBind(ctx context.Context, m *ldap.Message) bool {
	p := m.Op
	if len(p.Children) < 3 {
		c.reply(m.ID, ldap.Result(ldap.OpBindResponse, ldap.ProtocolErrorCode, "", "bind request is missing fields"))
		return true
	}
	if ver, _ := ldap.Int(p.Children[0]); ver != 3 {
		c.reply(m.ID, ldap.Result(ldap.OpBindResponse, ldap.ProtocolErrorCode, "", "00000057: LdapErr: DSID-0C090C6E, comment: the lab speaks LDAP version 3 only, data 0, v4563"))
		return true
	}
	if c.layer != nil {
		// RFC 4513 §5.2.1.3 allows re-binding; the lab keeps it simple and safe.
		c.reply(m.ID, ldap.Result(ldap.OpBindResponse, ldap.UnwillingToPerform, "", "a connection with a security layer cannot bind again; open a new connection"))
		return true
	}
	name := ldap.Str(p.Children[1])
	auth := p.Children[2]
	if auth.ClassType != ber.ClassContext {
		c.reply(m.ID, ldap.Result(ldap.OpBindResponse, ldap.ProtocolErrorCode, "", "bad authentication choice"))
		return true
	}
	switch int(auth.Tag) {
	case authSimple:
		c.bind = nil
		c.simpleBind(m.ID, name, ldap.Val(auth))
	case authSASL:
		mech := ldap.Str(ldap.Child(auth, 0))
		var creds []byte
		if x := ldap.Child(auth, 1); x != nil {
			creds = ldap.Val(x)
		}
		switch strings.ToUpper(mech) {
		case "GSSAPI":
			c.gssapiBind(m.ID, creds)
		case "GSS-SPNEGO":
			c.spnegoBind(ctx, m.ID, creds)
		default:
			c.bind = nil
			c.reply(m.ID, ldap.Result(ldap.OpBindResponse, ldap.AuthMethodNotSupported, "", "00002027: LdapErr: DSID-0C09099A, comment: Unknown SASL mechanism "+mech+" (this DC offers GSSAPI and GSS-SPNEGO), data 0, v4563"))
		}
	case authSicilyDiscovery:
		c.bind = nil
		c.reply(m.ID, ldap.Result(ldap.OpBindResponse, ldap.Success, "NTLM", "")) // the packages, in matchedDN
	case authSicilyNegotiate:
		c.sicilyNegotiate(m.ID, ldap.Val(auth))
	case authSicilyResponse:
		c.sicilyResponse(ctx, m.ID, ldap.Val(auth))
	default:
		c.bind = nil
		c.reply(m.ID, ldap.Result(ldap.OpBindResponse, ldap.AuthMethodNotSupported, "", fmt.Sprintf("authentication choice %d", auth.Tag)))
	}
	return true
}

func bindResponse(code ldap.ResultCode, diag string, serverCreds []byte) *ber.Packet {
	r := ldap.Result(ldap.OpBindResponse, code, "", diag)
	if serverCreds != nil {
		r.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 7, string(serverCreds), "serverSaslCreds"))
	}
	return r
}

// logon logs the DC's 4624 for a bind.
func (c *conn) logon(id *identity, pkg string, logonType int) {
	c.s.ev.Emit(events.Event{ID: events.LogonSuccess, Outcome: events.Success, Client: id.Client, Account: c.s.cfg.Account,
		Service: "ldap/" + c.s.cfg.Host, LogonType: logonType, Package: pkg, Address: c.raw.RemoteAddr().String(),
		Message: "An account was successfully logged on (LDAP bind, " + id.Mech + ")."})
}

// refuse logs 4625 and answers invalidCredentials (or the code given).
func (c *conn) refuse(msgID int64, client, pkg, status, reason, text string, code ldap.ResultCode, diag string) {
	c.bind = nil
	c.s.ev.Emit(events.Event{ID: events.LogonFailure, Outcome: events.Failure, Client: client, Account: c.s.cfg.Account,
		Service: "ldap/" + c.s.cfg.Host, LogonType: 3, Package: pkg, Status: status, Reason: reason, Address: c.raw.RemoteAddr().String(),
		Message: "An account failed to log on (LDAP bind): " + text})
	c.reply(msgID, bindResponse(code, diag, nil))
}

// simpleBind checks a DN, UPN or DOMAIN\user and its password (RFC 4513 §5.1).
func (c *conn) simpleBind(id int64, name string, password []byte) {
	v := c.s.cfg.Directory.View()
	if len(password) == 0 {
		// Anonymous and unauthenticated binds (RFC 4513 §5.1.1-2) leave the connection anonymous.
		c.who = nil
		c.reply(id, bindResponse(ldap.Success, "", nil))
		return
	}
	if !c.tls && (!v.Lab.Policy.LDAPSimpleBindInClear || v.Lab.Policy.LDAPSigningRequired) {
		c.refuse(id, name, "SIMPLE", ntstatus.AccessDenied.String(), "STRONGER_AUTH_REQUIRED",
			"a simple bind in clear text (LDAP server signing requirements: Require signing)", ldap.StrongerAuthRequired, diagStrongerAuth)
		return
	}
	e := c.s.findBindName(v, name)
	if e == nil {
		c.refuse(id, name, "SIMPLE", ntstatus.NoSuchUser.String(), "NO_SUCH_USER", "no account "+name, ldap.InvalidCredentials,
			"8009030C: LdapErr: DSID-0C0906B5, comment: AcceptSecurityContext error, data 525, v4563")
		return
	}
	client := e.Name + "@" + v.Lab.Realm
	now := c.s.cfg.Now()
	if e.LockedNow(v.Lab.Policy, now) {
		c.refuse(id, client, "SIMPLE", ntstatus.AccountLockedOut.String(), "LOCKED_OUT", "the account is locked out", ldap.InvalidCredentials,
			"8009030C: LdapErr: DSID-0C0906B5, comment: AcceptSecurityContext error, data 775, v4563")
		return
	}
	if subtle.ConstantTimeCompare([]byte(e.Password), password) != 1 {
		if directory.RecordBadPassword(c.s.cfg.Directory, e.Name, now) {
			c.s.ev.Emit(events.Event{ID: events.AccountLockedOut, Outcome: events.Failure, Client: client, Account: e.Name, Reason: "LOCKED_OUT",
				Status: ntstatus.AccountLockedOut.String(), Message: "A user account was locked out: " + e.Name + " (bad passwords in LDAP simple binds)"})
		}
		c.refuse(id, client, "SIMPLE", ntstatus.WrongPassword.String(), "BAD_PASSWORD", "unknown user name or bad password", ldap.InvalidCredentials, diagInvalidCredentials)
		return
	}
	if r := e.BeforePassword(v.Lab.Policy, now); r != nil {
		c.refuse(id, client, "SIMPLE", r.Status.String(), r.Reason, r.Text, ldap.InvalidCredentials, adData(r.Status))
		return
	}
	if r := e.AfterPassword(); r != nil {
		c.refuse(id, client, "SIMPLE", r.Status.String(), r.Reason, r.Text, ldap.InvalidCredentials, adData(r.Status))
		return
	}
	who, _ := c.s.identityOf(v, e.Name, "SIMPLE")
	c.who = who
	c.logon(who, "Negotiate", 8) // NetworkCleartext
	c.reply(id, bindResponse(ldap.Success, "", nil))
}

// adData is the "data" word of AD's bind diagnostics for an account state.
func adData(st ntstatus.Status) string {
	d := map[ntstatus.Status]string{
		ntstatus.AccountDisabled: "533", ntstatus.AccountExpired: "701", ntstatus.PasswordExpired: "532",
		ntstatus.PasswordMustChange: "773", ntstatus.AccountLockedOut: "775", ntstatus.InvalidLogonHours: "530",
	}[st]
	if d == "" {
		d = "52e"
	}
	return "8009030C: LdapErr: DSID-0C0906B5, comment: AcceptSecurityContext error, data " + d + ", v4563"
}

// findBindName resolves a simple-bind name: a DN, user@realm or DOMAIN\user.
func (s *Server) findBindName(v *directory.View, name string) *directory.Entry {
	if _, n, ok := strings.Cut(name, `\`); ok {
		name = n
	} else if strings.Contains(name, "=") {
		_, t := s.view()
		if e, _ := t.Lookup(name); e != nil && e.Account != "" {
			name = e.Account
		} else {
			return nil
		}
	} else if u, _, ok := strings.Cut(name, "@"); ok {
		name = u
	}
	e, ok := v.Account(name)
	if !ok || e.Type == directory.TypeKrbtgt {
		return nil
	}
	return e
}

// accept opens a ticket for ldap/<dc> with the DC's own key.
func (s *Server) accept(tok []byte) (*gss.SecContext, error) {
	acc, err := s.dcKeys.Acceptor()
	if err != nil {
		return nil, err
	}
	return acc.Accept(tok)
}

func (c *conn) kerberosRefused(id int64, mech string, err error) {
	var ae *gss.AcceptError
	client, status, reason := "", ntstatus.LogonFailure.String(), "TICKET_REFUSED"
	if errors.As(err, &ae) {
		client, reason = ae.Client, ae.Reason
		if ae.Status != 0 {
			status = fmt.Sprintf("0x%08X", ae.Status)
		}
	}
	c.s.ev.Emit(events.Event{ID: events.LogonFailure, Outcome: events.Failure, Client: client, Account: c.s.cfg.Account,
		Service: "ldap/" + c.s.cfg.Host, LogonType: 3, Package: "Kerberos", Status: status, Reason: reason, Address: c.raw.RemoteAddr().String(),
		Message: "An account failed to log on (LDAP " + mech + " bind): " + err.Error()})
	c.bind = nil
	c.reply(id, bindResponse(ldap.InvalidCredentials, "80090322: LdapErr: DSID-0C0906B5, comment: AcceptSecurityContext error, data 0, v4563 ("+err.Error()+")", nil))
}

// kerberosContext accepts the client's AP-REQ with the DC's key and finds
// its account; a refusal is answered (and audited) here.
func (c *conn) kerberosContext(v *directory.View, id int64, mech string, creds []byte) (*gss.SecContext, *identity, bool) {
	sec, err := c.s.accept(creds)
	if err == nil {
		var who *identity
		if who, err = c.s.identityOf(v, strings.Join(sec.Client.NameString, "/"), mech); err == nil {
			return sec, who, true
		}
	}
	c.kerberosRefused(id, mech, err)
	return nil, nil, false
}

// gssapiBind runs RFC 4752: the context (1–2 round trips), then the security
// layer offer and the client's choice.
func (c *conn) gssapiBind(id int64, creds []byte) {
	v := c.s.cfg.Directory.View()
	b := c.bind
	if b == nil || b.mech != "GSSAPI" {
		sec, who, ok := c.kerberosContext(v, id, "GSSAPI", creds)
		if !ok {
			return
		}
		c.bind = &bindState{mech: "GSSAPI", sec: sec, step: 1, who: who}
		c.reply(id, bindResponse(ldap.SaslBindInProgress, "", sec.ResponseToken))
		return
	}
	switch b.step {
	case 1:
		// The client has our AP-REP; offer the layers (RFC 4752 §3.1, wrapped without confidentiality).
		if !b.sec.CanWrap() {
			c.refuse(id, b.who.Client, "Kerberos", ntstatus.LogonFailure.String(), "ETYPE", "no security layer for this enctype", ldap.AuthMethodNotSupported,
				"the lab's SASL layers need an AES session key")
			return
		}
		offer := binary.BigEndian.AppendUint32(nil, uint32(maxSASLBuffer-1)&0xffffff) // 24-bit maximum buffer
		offer[0] = layerNone | layerIntegrity | layerConf
		if v.Lab.Policy.LDAPSigningRequired && !c.tls {
			offer[0] = layerIntegrity | layerConf // signing required: no "no layer"
		}
		tok, err := b.sec.Wrap(offer, false)
		if err != nil {
			c.kerberosRefused(id, "GSSAPI", err)
			return
		}
		b.step = 2
		c.reply(id, bindResponse(ldap.SaslBindInProgress, "", tok))
	case 2:
		msg, _, err := b.sec.Unwrap(creds)
		if err != nil || len(msg) < 4 {
			c.kerberosRefused(id, "GSSAPI", fmt.Errorf("security layer choice: %v", err))
			return
		}
		choice := msg[0]
		peerMax := int(binary.BigEndian.Uint32(msg) & 0xffffff)
		if choice != layerNone && choice != layerIntegrity && choice != layerConf {
			c.refuse(id, b.who.Client, "Kerberos", ntstatus.LogonFailure.String(), "LAYER", fmt.Sprintf("security layer choice 0x%02x", choice), ldap.ProtocolErrorCode, "one security layer must be chosen")
			return
		}
		if choice == layerNone && c.unsigned(id, b.who.Client, "GSSAPI") {
			return
		}
		c.bind, c.who = nil, b.who
		c.logon(b.who, "Kerberos", 3)
		c.reply(id, bindResponse(ldap.Success, "", nil))
		if choice != layerNone {
			if peerMax == 0 {
				peerMax = 65536
			}
			c.startLayer(krbLayer{sec: b.sec, conf: choice == layerConf}, peerMax)
		}
	}
}

// spnegoBind is GSS-SPNEGO as Windows clients and impacket send it: one
// round trip, the layer taken from the context's flags (MS-ADTS 5.1.1.1.2).
func (c *conn) spnegoBind(ctx context.Context, id int64, creds []byte) {
	if b := c.bind; (b != nil && b.spnegoNTLM != nil) || gss.IsNTLM(creds) || isSPNEGONTLM(creds) {
		c.spnegoNTLM(ctx, id, creds)
		return
	}
	c.bind = nil
	sec, who, ok := c.kerberosContext(c.s.cfg.Directory.View(), id, "GSS-SPNEGO", creds)
	if !ok {
		return
	}
	if (sec.GSSFlags&(gssConf|gssInteg) == 0 || !sec.CanWrap()) && c.unsigned(id, who.Client, "GSS-SPNEGO") {
		return
	}
	c.who = who
	c.logon(who, "Kerberos", 3)
	c.reply(id, bindResponse(ldap.Success, "", sec.ResponseToken))
	if sec.GSSFlags&(gssConf|gssInteg) != 0 && sec.CanWrap() {
		c.startLayer(krbLayer{sec: sec, conf: sec.GSSFlags&gssConf != 0}, maxSASLBuffer)
	}
}

// spnegoNTLM is NTLM inside GSS-SPNEGO, what Windows and Samba clients send
// when they get no ticket (an IP address as the server name): NEGOTIATE ->
// CHALLENGE (saslBindInProgress), AUTHENTICATE -> the DC's own validation
// (4776), then NTLM's signing or sealing on the connection as negotiated.
func (c *conn) spnegoNTLM(ctx context.Context, id int64, creds []byte) {
	if c.s.cfg.NTLM == nil {
		c.bind = nil
		c.reply(id, bindResponse(ldap.AuthMethodNotSupported, "NTLM binds are off on this DC", nil))
		return
	}
	b := c.bind
	if b == nil || b.spnegoNTLM == nil {
		l := c.s.cfg.Directory.View().Lab
		b = &bindState{mech: "GSS-SPNEGO", spnegoNTLM: &gss.NTLMAcceptor{
			Config: ntlm.MemberServer(l.NetBIOS, l.Realm, c.s.cfg.Host, strings.TrimSuffix(c.s.cfg.Account, "$"), c.s.cfg.Now)}}
		c.bind = b
	}
	out, res, err := b.spnegoNTLM.Step(ctx, creds, c.s.cfg.NTLM)
	if err != nil {
		c.ntlmRefused(id, err)
		return
	}
	if res == nil {
		c.reply(id, bindResponse(ldap.SaslBindInProgress, "", out))
		return
	}
	c.bind = nil
	if res.Anonymous {
		c.who = nil
		c.reply(id, bindResponse(ldap.Success, "", out))
		return
	}
	who, err := c.s.identityOf(c.s.cfg.Directory.View(), res.Validation.Account, "GSS-SPNEGO (NTLM)")
	if err != nil {
		c.refuse(id, res.User, "NTLM", ntstatus.NoSuchUser.String(), "NO_SUCH_USER", err.Error(), ldap.InvalidCredentials, diagInvalidCredentials)
		return
	}
	if (res.Session == nil || res.Flags&(ntlm.FlagSeal|ntlm.FlagSign) == 0) && c.unsigned(id, who.Client, "GSS-SPNEGO (NTLM)") {
		return
	}
	c.who = who
	c.logon(who, "NTLM", 3)
	c.reply(id, bindResponse(ldap.Success, "", out))
	if res.Session != nil && res.Flags&(ntlm.FlagSeal|ntlm.FlagSign) != 0 {
		// After SPNEGO's mechListMIC the RC4 streams start over and the
		// sequence numbers go on (MS-SPNG 3.3.5.1), as Windows and Samba do.
		s, seq := res.Session, uint32(1)
		if res.MICPresent {
			s = s.Reset()
		}
		c.startLayer(&ntlmLayer{s: s, seal: res.Flags&ntlm.FlagSeal != 0, sendSeq: seq, recvSeq: seq}, maxSASLBuffer)
	}
}

// unsigned handles a bind that asks for no integrity on a connection
// without TLS: AD logs 2889, and refuses it when LDAP signing is required.
// It reports whether the bind was refused.
func (c *conn) unsigned(id int64, client, mech string) bool {
	if c.tls {
		return false
	}
	required := c.s.cfg.Directory.View().Lab.Policy.LDAPSigningRequired
	c.s.ev.Emit(events.Event{ID: events.LDAPUnsignedBind, Outcome: map[bool]string{true: events.Failure, false: events.Success}[required],
		Client: client, Account: c.s.cfg.Account, Reason: "UNSIGNED_BIND", Address: c.raw.RemoteAddr().String(),
		Message: "The following client performed a SASL (Negotiate, Kerberos, NTLM, or Digest) LDAP bind without requesting signing (integrity verification): " + c.raw.RemoteAddr().String() + " as " + client + " (" + mech + ")"})
	if !required {
		return false
	}
	c.refuse(id, client, mech, ntstatus.AccessDenied.String(), "SIGNING_REQUIRED",
		"a bind without signing (LDAP server signing requirements: Require signing)", ldap.StrongerAuthRequired, diagStrongerAuth)
	return true
}

// ntlmRefused answers a refused NTLM logon with the NTSTATUS the DC gave.
func (c *conn) ntlmRefused(id int64, err error) {
	var ne *ntlm.Error
	status, reason := ntstatus.LogonFailure, "NTLM"
	if errors.As(err, &ne) {
		status, reason = ne.Status, ne.Reason
	}
	c.refuse(id, "", "NTLM", status.String(), reason, err.Error(), ldap.InvalidCredentials, adData(status))
}

func isSPNEGONTLM(b []byte) bool {
	msg, _, _ := gss.SplitNTLM(b)
	return msg != nil
}

// sicilyNegotiate answers NTLM's NEGOTIATE with a CHALLENGE in matchedDN.
func (c *conn) sicilyNegotiate(id int64, neg []byte) {
	if c.s.cfg.NTLM == nil {
		c.bind = nil
		c.reply(id, bindResponse(ldap.AuthMethodNotSupported, "NTLM binds are off on this DC", nil))
		return
	}
	v := c.s.cfg.Directory.View()
	l := v.Lab
	sc := ntlm.NewServerContext(ntlm.MemberServer(l.NetBIOS, l.Realm, c.s.cfg.Host, strings.TrimSuffix(c.s.cfg.Account, "$"), c.s.cfg.Now))
	ch, err := sc.Challenge(neg)
	if err != nil {
		c.bind = nil
		c.reply(id, bindResponse(ldap.InvalidCredentials, "80090308: LdapErr: DSID-0C0905FE, comment: AcceptSecurityContext error, data 0, v4563 ("+err.Error()+")", nil))
		return
	}
	c.bind = &bindState{mech: "NTLM", ntlm: sc}
	c.reply(id, ldap.Result(ldap.OpBindResponse, ldap.Success, string(ch), "")) // the CHALLENGE, in matchedDN
}

func (c *conn) sicilyResponse(ctx context.Context, id int64, auth []byte) {
	b := c.bind
	if b == nil || b.ntlm == nil {
		c.refuse(id, "", "NTLM", ntstatus.LogonFailure.String(), "NO_CHALLENGE", "an NTLM response without a challenge", ldap.ProtocolErrorCode, "sicilyResponse without sicilyNegotiate")
		return
	}
	res, err := b.ntlm.Authenticate(ctx, auth, c.s.cfg.NTLM)
	if err != nil {
		c.ntlmRefused(id, err)
		return
	}
	if res.Anonymous {
		c.bind, c.who = nil, nil
		c.reply(id, bindResponse(ldap.Success, "", nil))
		return
	}
	who, err := c.s.identityOf(c.s.cfg.Directory.View(), res.Validation.Account, "NTLM")
	if err != nil {
		c.refuse(id, res.User, "NTLM", ntstatus.NoSuchUser.String(), "NO_SUCH_USER", err.Error(), ldap.InvalidCredentials, diagInvalidCredentials)
		return
	}
	// The lab installs no NTLM layer after a Sicily bind: every one is unsigned.
	if c.unsigned(id, who.Client, "NTLM") {
		return
	}
	c.bind, c.who = nil, who
	c.logon(who, "NTLM", 3)
	c.reply(id, bindResponse(ldap.Success, "", nil))
}
