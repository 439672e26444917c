package kdc

import (
	"fmt"
	"strings"
	"time"

	"github.com/doublehop/doublehop/directory"
	"github.com/doublehop/doublehop/events"
	"github.com/doublehop/doublehop/krb/der"
	"github.com/doublehop/doublehop/krb/kcrypto"
	"github.com/doublehop/doublehop/krb/kerr"
	"github.com/doublehop/doublehop/krb/kmsg"
	"github.com/doublehop/doublehop/krb/pac"
	"github.com/doublehop/doublehop/ntstatus"
	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/types"
)

// as answers an AS-REQ (RFC 4120 §3.1.2) and emits 4768 / 4771.
func (x *exchange) as() []byte {
	ev := events.Event{ID: events.TGTRequested, Outcome: events.Success, Message: "A Kerberos authentication ticket (TGT) was requested"}
	failWith := func(e *kerr.Error) []byte { return x.refuse(&ev, e) }
	fs, ke := x.unwrapFAST(nil, nil)
	x.fast = fs
	b := x.req.Body // the inner body of an armored request
	ev.Service = kmsg.PrincipalString(b.SName, b.Realm)
	if ke != nil {
		return failWith(ke)
	}
	name, err := clientName(b.CName)
	if err != nil {
		return failWith(kerr.Errorf(kerr.KDC_ERR_C_PRINCIPAL_UNKNOWN, "BAD_CNAME", "%v", err))
	}
	ev.Client = name + "@" + x.realm()
	if !strings.EqualFold(b.Realm, x.realm()) {
		return failWith(kerr.Errorf(kerr.KDC_ERR_WRONG_REALM, "WRONG_REALM", "this KDC serves %s, not %s", x.realm(), b.Realm))
	}
	client, ok := x.view.Account(name)
	if !ok {
		return failWith(kerr.Errorf(kerr.KDC_ERR_C_PRINCIPAL_UNKNOWN, "CLIENT_UNKNOWN", "no account %s", name).WithStatus(kerr.StatusNoSuchUser))
	}
	ev.Client = client.Name + "@" + x.realm()
	// Disabled, locked out, expired, outside its logon hours: the KDC refuses
	// before looking at the password (MS-KILE 3.3.5.7.1).
	if r := client.BeforePassword(x.view.Lab.Policy, x.now); r != nil {
		return failWith(kerr.Errorf(kerr.KDC_ERR_CLIENT_REVOKED, r.Reason, "%s", r.Text).WithStatus(uint32(r.Status)))
	}
	res, ok := x.view.ResolveService(b.SName)
	if !ok || res.Entry.Disabled {
		return failWith(kerr.Errorf(kerr.KDC_ERR_S_PRINCIPAL_UNKNOWN, "SERVER_UNKNOWN", "no account holds %s", res.SPN))
	}
	svc := res.Entry
	ev.Account = svc.Name

	// Reply key: the client's first requested etype the account has a key for.
	replyEType := int32(0)
	for _, e := range b.EType {
		if _, ok := client.Key(e); ok {
			replyEType = e
			break
		}
	}
	// The proof of the password: PA-ENC-TIMESTAMP, or inside FAST the
	// encrypted challenge (RFC 6113 §5.4.6).
	proof, proved := x.req.PA(kmsg.PAEncTimestamp)
	check := x.checkTimestamp
	if x.fast != nil {
		// Inside the tunnel the encrypted challenge is the proof; a
		// timestamp there is not taken (PREAUTH_REQUIRED, as Windows answers).
		proof, proved = x.req.PA(kmsg.PAEncryptedChallenge)
		check = x.checkEncChallenge
	}
	if replyEType == 0 && !proved {
		// With a timestamp the key the client proves is the reply key, even
		// one it did not list (Windows; Samba's protected_users_tests).
		return failWith(kerr.Errorf(kerr.KDC_ERR_ETYPE_NOSUPP, "ETYPE_NOSUPP", "client offers %v, account %s has keys %v", b.EType, client.Name, client.ETypes).WithStatus(kerr.StatusUnsupportedEtype))
	}

	// Pre-authentication (RFC 4120 §5.2.7.2), required unless DONT_REQ_PREAUTH.
	preauth := false
	if proved {
		et, e := check(proof.PADataValue, client)
		if e != nil {
			x.emit(events.Event{ID: events.PreauthFailed, Outcome: events.Failure, Client: ev.Client, Service: ev.Service,
				Message: "Kerberos pre-authentication failed: " + e.Text, Code: int(e.Code), CodeName: e.Code.Name(), Status: e.StatusString(), Reason: e.Reason})
			if e.Code == kerr.KDC_ERR_PREAUTH_FAILED {
				x.badPassword(client.Name)
			}
			if e.Code == kerr.KDC_ERR_ETYPE_NOSUPP {
				// A timestamp under a key the account does not have (RC4 for
				// Protected Users): Windows says nothing more.
				if x.fast != nil {
					return x.s.fastError(x, e, nil)
				}
				return x.s.errorReplyData(x, e, nil)
			}
			return x.s.errorReply(x, e)
		}
		preauth = true
		replyEType = et // the reply is sealed with the key the client just proved (as Windows does)
		if r := client.AfterPassword(); r != nil {
			// The password was right and must be changed first (MS-KILE 3.3.5.7.1).
			return failWith(kerr.Errorf(kerr.KDC_ERR_KEY_EXPIRED, r.Reason, "%s", r.Text).WithStatus(uint32(r.Status)))
		}
		if client.BadPwdCount > 0 {
			x.goodPassword(client.Name)
		}
	} else if !client.DontRequirePreauth {
		return x.preauthRequired(client)
	}

	sessET, ok := sessionEType(b.EType, svc)
	if !ok {
		return failWith(kerr.Errorf(kerr.KDC_ERR_ETYPE_NOSUPP, "ETYPE_NOSUPP", "no etype common to the request %v and %s %v", b.EType, svc.Name, svc.ETypes).WithStatus(kerr.StatusUnsupportedEtype))
	}
	sk, err := kcrypto.NewSessionKey(sessET)
	if err != nil {
		return failWith(kerr.Errorf(kerr.KRB_ERR_GENERIC, "KEYGEN", "%v", err))
	}
	pol := x.view.Lab.Policy
	flags := kmsg.NewFlags(kmsg.FlagInitial)
	if preauth {
		kmsg.SetFlag(&flags, kmsg.FlagPreAuthent)
	}
	if kmsg.HasFlag(b.KDCOptions, kmsg.FlagForwardable) && !client.CannotBeDelegated() {
		kmsg.SetFlag(&flags, kmsg.FlagForwardable)
	}
	protected := client.InGroup("Protected Users")
	if kmsg.HasFlag(b.KDCOptions, kmsg.FlagProxiable) && !protected {
		kmsg.SetFlag(&flags, kmsg.FlagProxiable)
	}
	end := x.now.Add(pol.TicketLifetime.D())
	if protected && end.After(x.now.Add(4*60*60e9)) {
		end = x.now.Add(4 * 60 * 60e9) // Protected Users: a 4-hour TGT, not renewable beyond it
	}
	if till := requestedTill(b.Till); !till.IsZero() && till.Before(end) {
		end = till
	}
	if !end.After(x.now) {
		return failWith(kerr.Errorf(kerr.KDC_ERR_NEVER_VALID, "NEVER_VALID", "requested end time %s is not in the future", b.Till.UTC()))
	}
	var renewTill = b.RTime
	if kmsg.HasFlag(b.KDCOptions, kmsg.FlagRenewable) || kmsg.HasFlag(b.KDCOptions, kmsg.OptRenewableOK) {
		kmsg.SetFlag(&flags, kmsg.FlagRenewable)
		max := x.now.Add(pol.RenewLifetime.D())
		if renewTill.IsZero() || renewTill.After(max) {
			renewTill = max
		}
		if renewTill.Before(end) || protected {
			renewTill = end
		}
	} else {
		renewTill = time.Time{}
	}
	cname := b.CName // echo the name as asked, an enterprise name too (RFC 6806 §5: canonicalize is the client's to ask)
	if kmsg.HasFlag(b.KDCOptions, kmsg.OptCanonicalize) {
		cname = types.PrincipalName{NameType: kmsg.NTPrincipal, NameString: []string{client.Name}}
	}
	info := x.pacInfo(client, x.now)
	info.ClientName = strings.Join(cname.NameString, "/") // PAC_CLIENT_INFO names the ticket's client (MS-PAC 2.7)
	// PAC_ATTRIBUTES_INFO records what the client asked (MS-KILE
	// 3.3.5.6.4.7): the TGT carries a PAC either way, and a TGT whose client
	// declined it gets service tickets without one.
	info.HasAttributes = true
	switch include, asked := x.req.PACRequested(); {
	case !asked:
		info.Attributes = pac.WasGivenImplicitly
	case include:
		info.Attributes = pac.WasRequested
	default:
		info.Attributes = 0
	}
	declined := pacDeclined(info)
	if svc.Type != directory.TypeKrbtgt {
		// A service ticket straight from the AS exchange: no TGT-only buffers.
		info.Attributes, info.HasAttributes, info.Requestor = 0, false, ""
	}
	pac, err := pac.New(info)
	if err != nil {
		return failWith(kerr.Errorf(kerr.KRB_ERR_GENERIC, "PAC", "%v", err))
	}
	if svc.Type != directory.TypeKrbtgt && declined {
		pac = nil // no PAC in a service ticket whose client declined it (MS-KILE 3.3.5.7.2)
	}
	sname := b.SName
	if kmsg.HasFlag(b.KDCOptions, kmsg.OptCanonicalize) && svc.Type != directory.TypeKrbtgt {
		// Canonicalized, a service the AS exchange names by an SPN comes back
		// under its account name (as Windows answers; Samba's etype_tests).
		sname = types.PrincipalName{NameType: kmsg.NTPrincipal, NameString: []string{svc.Name}}
	}
	spec := ticketSpec{client: cname, clientRealm: x.realm(), service: sname, serviceAcct: svc, flags: flags, authTime: x.now,
		endTime: end, renewTill: renewTill, sessionKey: sk, caddr: b.Addresses, pac: pac}
	tkt, ke := x.seal(spec)
	if ke != nil {
		return failWith(ke)
	}
	replyKey, _ := client.Key(replyEType)
	// PA-ETYPE-INFO2 in the AS-REP names the AES key's salt; an RC4 reply
	// key has no salt and Windows sends none (what Samba's tests expect).
	var padata types.PADataSequence
	if replyEType == kcrypto.ETypeAES256SHA1 || replyEType == kcrypto.ETypeAES128SHA1 {
		info := kmsg.MarshalETypeInfo2(types.ETypeInfo2{{EType: replyEType, Salt: client.Salt(x.realm())}}) // = asn1.Marshal, which cannot fail here
		padata = types.PADataSequence{{PADataType: kmsg.PAETypeInfo2, PADataValue: info}}
	}
	rep, ke := x.reply(tkt, spec, replyKey, kcrypto.UsageASRepEncPart, client.KVNO, padata)
	if ke != nil {
		return failWith(ke)
	}
	ev.EType, ev.KVNO, ev.TicketFlags = tkt.EncPart.EType, tkt.EncPart.KVNO, kmsg.FlagNames(flags)
	if !preauth {
		ev.Reason = "NO_PREAUTH"
		ev.Message += " without pre-authentication (DONT_REQ_PREAUTH is set: the reply is crackable offline)"
	}
	x.emit(ev)
	return rep
}

// checkTimestamp verifies PA-ENC-TIMESTAMP (RFC 4120 §5.2.7.2, key usage 1).
func (x *exchange) checkTimestamp(v []byte, client *directory.Entry) (int32, *kerr.Error) {
	et, _, ke := x.checkEncTS(v, client, "PA-ENC-TIMESTAMP", kcrypto.UsageASReqTimestamp, nil)
	return et, ke
}

// checkEncTS decrypts and checks a PA-ENC-TS-ENC under the client's key
// (or the key derive makes of it) and returns the etype and client key.
func (x *exchange) checkEncTS(v []byte, client *directory.Entry, what string, usage uint32, derive func(types.EncryptionKey) (types.EncryptionKey, error)) (int32, types.EncryptionKey, *kerr.Error) {
	ed, fast := kmsg.FastEncryptedData(v)
	if !fast {
		if err := kmsg.SafeUnmarshal(func() error { return ed.Unmarshal(v) }); err != nil {
			return 0, types.EncryptionKey{}, kerr.Errorf(kerr.KDC_ERR_PREAUTH_FAILED, "BAD_PADATA", "%s: %v", what, err).WithStatus(kerr.StatusWrongPassword)
		}
	}
	key, ok := client.Key(ed.EType)
	if !ok {
		return 0, key, kerr.Errorf(kerr.KDC_ERR_ETYPE_NOSUPP, "ETYPE_NOSUPP", "%s in etype %d, account has %v", what, ed.EType, client.ETypes).WithStatus(kerr.StatusUnsupportedEtype)
	}
	dk := key
	if derive != nil {
		var err error
		if dk, err = derive(key); err != nil {
			return 0, key, kerr.Errorf(kerr.KRB_ERR_GENERIC, "PREAUTH_KEY", "%v", err)
		}
	}
	plain, err := kcrypto.Decrypt(ed, dk, usage)
	if err != nil {
		return 0, key, kerr.Errorf(kerr.KDC_ERR_PREAUTH_FAILED, "PREAUTH_FAILED", "wrong password for %s", client.Name).WithStatus(kerr.StatusWrongPassword)
	}
	ts, fast := kmsg.FastPAEncTSEnc(plain)
	if !fast {
		if err := kmsg.SafeUnmarshal(func() error { return ts.Unmarshal(plain) }); err != nil {
			return 0, key, kerr.Errorf(kerr.KDC_ERR_PREAUTH_FAILED, "BAD_PADATA", "PA-ENC-TS-ENC: %v", err).WithStatus(kerr.StatusWrongPassword)
		}
	}
	skew := x.view.Lab.Policy.MaxSkew.D()
	if d := x.now.Sub(ts.PATimestamp); d > skew || d < -skew {
		return 0, key, kerr.Errorf(kerr.KRB_AP_ERR_SKEW, "SKEW", "client clock is %s off the KDC's (max %s)", d.Round(1e9), skew).WithStatus(kerr.StatusTimeDifference)
	}
	return ed.EType, key, nil
}

// preauthRequired answers KDC_ERR_PREAUTH_REQUIRED with METHOD-DATA naming
// PA-ENC-TIMESTAMP and the keys' salts (RFC 4120 §5.2.7.4-5).
func (x *exchange) preauthRequired(client *directory.Entry) []byte {
	return x.s.errorReply(x, kerr.Errorf(kerr.KDC_ERR_PREAUTH_REQUIRED, "NEEDED_PREAUTH", ""))
}

// methodPA is the e-data of an AS error as a Windows KDC sends it: METHOD-
// DATA with PA-ETYPE-INFO2 for the strongest AES key the client proposed and
// the RC4 key when it proposed RC4, the old PA-ETYPE-INFO (RC4, no salt) only
// when it proposed no AES key the account has, and PA-ENC-TIMESTAMP as the
// way to pre-authenticate unless the error is about the password, the clock
// or the account itself (what Samba's Windows-validated tests expect).
// Inside FAST the way to pre-authenticate is the encrypted challenge (RFC
// 6113 §5.4.6), not the timestamp.
func (x *exchange) methodPA(client *directory.Entry, code kerr.Code) types.PADataSequence {
	var aes, rc4 int32
	if client != nil {
		for _, e := range x.req.Body.EType {
			if _, ok := client.Key(e); !ok {
				continue
			}
			switch e {
			case kcrypto.ETypeAES256SHA1, kcrypto.ETypeAES128SHA1:
				if e > aes {
					aes = e
				}
			case kcrypto.ETypeRC4HMAC:
				rc4 = e
			}
		}
	}
	var info types.ETypeInfo2
	if aes != 0 {
		info = append(info, types.ETypeInfo2Entry{EType: aes, Salt: client.Salt(x.realm())})
	}
	if rc4 != 0 {
		info = append(info, types.ETypeInfo2Entry{EType: rc4})
	}
	var pa types.PADataSequence
	if aes == 0 && rc4 != 0 {
		pa = append(pa, types.PAData{PADataType: kmsg.PAETypeInfo, PADataValue: der.Seq(der.Seq(der.Ctx(0, der.Int(int64(rc4))), der.Ctx(1, der.Octets(nil))))})
	}
	if len(info) > 0 {
		ib, _ := asn1.Marshal(info)
		pa = append(pa, types.PAData{PADataType: kmsg.PAETypeInfo2, PADataValue: ib})
	}
	switch code {
	case kerr.KDC_ERR_PREAUTH_FAILED, kerr.KRB_AP_ERR_SKEW, kerr.KDC_ERR_POLICY, kerr.KDC_ERR_CLIENT_REVOKED:
	default:
		if x.fast != nil {
			pa = append(pa, types.PAData{PADataType: kmsg.PAEncryptedChallenge, PADataValue: []byte{}})
		} else {
			pa = append(pa, types.PAData{PADataType: kmsg.PAEncTimestamp, PADataValue: []byte{}})
		}
	}
	if x.fast == nil && code == kerr.KDC_ERR_PREAUTH_REQUIRED && x.view.Lab.Policy.KerberosArmoring == "supported" {
		// The KDC offers armoring (RFC 6113 §5.4.2): PA-FX-FAST and a cookie.
		pa = append(pa, types.PAData{PADataType: kmsg.PAFXFast, PADataValue: []byte{}}, types.PAData{PADataType: kmsg.PAFXCookie, PADataValue: fastCookie})
	}
	return pa
}

// refuse records the failed exchange in its audit event and answers with the
// KRB-ERROR (RFC 4120 §3.1.6, §3.3.3).
func (x *exchange) refuse(ev *events.Event, e *kerr.Error) []byte {
	fail(ev, e)
	x.emit(*ev)
	return x.s.errorReply(x, e)
}

// requestedTill reads KDC-REQ-BODY till: the zero time and 19700101000000Z
// both mean "as long as the KDC allows" (RFC 4120 §5.4.1).
func requestedTill(t time.Time) time.Time {
	if t.Unix() == 0 {
		return time.Time{}
	}
	return t
}

// isRenewal reports a TGS-REQ that only renews its ticket: the one case in
// which an expired TGT may be presented (RFC 4120 §3.3.3.1). S4U requests with
// the RENEW bit set are not renewals.
func (x *exchange) isRenewal() bool {
	if !kmsg.HasFlag(x.req.Body.KDCOptions, kmsg.OptRenew) || kmsg.HasFlag(x.req.Body.KDCOptions, kmsg.OptCNameInAddlTkt) {
		return false
	}
	_, s4u := x.req.PA(kmsg.PAForUser)
	return !s4u
}

// badPassword counts a wrong password against the account (badPwdCount)
// and locks it when the domain's threshold is reached: 4740 "A user
// account was locked out".
func (x *exchange) badPassword(name string) {
	if directory.RecordBadPassword(x.s.cfg.Directory, name, x.now) {
		x.emit(events.Event{ID: events.AccountLockedOut, Outcome: events.Failure, Client: name + "@" + x.realm(), Account: name,
			Reason: "LOCKED_OUT", Status: ntstatus.AccountLockedOut.String(),
			Message: fmt.Sprintf("A user account was locked out: %s after %d bad passwords within the observation window", name, x.view.Lab.Policy.LockoutThreshold)})
	}
}

// goodPassword resets badPwdCount after a successful logon, as AD does.
func (x *exchange) goodPassword(name string) {
	directory.Modify(x.s.cfg.Directory, name, func(_ *directory.Lab, a *directory.Account) error {
		a.BadPwdCount, a.BadPwdTime = 0, time.Time{}
		return nil
	})
}
