package kdc

import (
	"errors"
	"strings"
	"time"

	"github.com/doublehop/doublehop/directory"
	"github.com/doublehop/doublehop/events"
	"github.com/doublehop/doublehop/krb/kcrypto"
	"github.com/doublehop/doublehop/krb/kerr"
	"github.com/doublehop/doublehop/krb/kmsg"
	"github.com/doublehop/doublehop/krb/pac"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

// tgsState is what a verified PA-TGS-REQ gives the TGS exchange.
type tgsState struct {
	tgt        messages.EncTicketPart
	requester  *directory.Entry // the TGT's client account
	rodc       *directory.Entry // the read-only DC that issued the TGT, if one did
	pac        *pac.PAC         // the TGT's PAC (verified)
	krbtgtKey  types.EncryptionKey
	replyKey   types.EncryptionKey
	replyUsage uint32
	subkey     types.EncryptionKey // the PA-TGS-REQ authenticator's, if any (FAST's armor, RFC 6113 §5.4.1.1)
	fastArmor  bool                // AD-fx-fast-armor in the TGT or the authenticator (RFC 6113 §5.4.1.1)
	fastUsed   bool                // AD-fx-fast-used there (RFC 6113 §5.4.2)
}

// tgs answers a TGS-REQ (RFC 4120 §3.3.2) and emits 4769.
func (x *exchange) tgs() []byte {
	b := x.req.Body
	ev := events.Event{ID: events.ServiceTicket, Outcome: events.Success, Message: "A Kerberos service ticket was requested",
		Service: kmsg.PrincipalString(b.SName, "")}
	failWith := func(e *kerr.Error) []byte { return x.refuse(&ev, e) }
	st, ke := x.verifyPATGSReq()
	if st != nil {
		ev.Client = kmsg.PrincipalString(st.tgt.CName, st.tgt.CRealm)
	}
	if ke != nil {
		return failWith(ke)
	}
	// An armored request: the inner body and padata from here on.
	fs, ke := x.unwrapFAST(&st.subkey, &st.tgt.Key)
	if ke != nil {
		return failWith(ke)
	}
	x.fast, b = fs, x.req.Body
	// RFC 6113: a ticket or authenticator marked for armor only is no
	// request's own (§5.4.1.1); one marked "FAST used" must come armored
	// (§5.4.2).
	if st.fastArmor {
		return failWith(kerr.Errorf(kerr.KRB_ERR_GENERIC, "AD_FX_FAST_ARMOR", "AD-fx-fast-armor in the request's ticket or authenticator"))
	}
	if fs == nil && st.fastUsed {
		return failWith(kerr.Errorf(kerr.KRB_AP_ERR_MODIFIED, "AD_FX_FAST_USED", "AD-fx-fast-used in a request that did not come through FAST"))
	}
	_, s4u2self := x.req.PA(kmsg.PAForUser)
	if kmsg.HasFlag(b.KDCOptions, kmsg.OptEncTktInSKey) {
		if s4u2self || kmsg.HasFlag(b.KDCOptions, kmsg.OptCNameInAddlTkt) {
			return failWith(kerr.Errorf(kerr.KDC_ERR_BADOPTION, "U2U_S4U", "user-to-user with S4U is not supported by the lab KDC"))
		}
		return x.user2user(st, ev)
	}
	if s4u2self {
		if st.rodc != nil {
			// S4U2Self needs a TGT from a writable DC (what Windows answers).
			return failWith(kerr.Errorf(kerr.KDC_ERR_C_PRINCIPAL_UNKNOWN, "S4U2SELF_RODC_TGT", "S4U2Self with a TGT from read-only DC %s", st.rodc.Name))
		}
		return x.s4u2self(st, ev)
	}
	if kmsg.HasFlag(b.KDCOptions, kmsg.OptCNameInAddlTkt) {
		return x.s4u2proxy(st, ev)
	}
	if x.isRenewal() || kmsg.HasFlag(b.KDCOptions, kmsg.OptValidate) {
		return x.renew(st, ev)
	}
	res, ok := x.view.ResolveService(b.SName)
	if !ok {
		return failWith(x.serviceUnknown(res))
	}
	svc := res.Entry
	ev.Account = svc.Name
	if res.Via == "host-mapping" {
		ev.Reason = "SPN_MAPPED_TO_HOST"
		ev.Message += " (" + res.SPN + " is on no account: sPNMappings mapped it to " + res.MappedFrom + ", held by " + svc.Name + ")"
	}
	if svc.Disabled {
		return failWith(kerr.Errorf(kerr.KDC_ERR_S_PRINCIPAL_UNKNOWN, "SERVICE_DISABLED", "account %s is disabled", svc.Name))
	}
	forwarded := kmsg.HasFlag(b.KDCOptions, kmsg.FlagForwarded)
	if forwarded && !kmsg.HasFlag(st.tgt.Flags, kmsg.FlagForwardable) {
		return failWith(kerr.Errorf(kerr.KDC_ERR_BADOPTION, "TGT_NOT_FORWARDABLE", "the TGT of %s is not forwardable", ev.Client))
	}
	if forwarded {
		ev.Mechanism = "forwarded-tgt"
	}
	flags := x.serviceFlags(st, svc, res.Via == "krbtgt", forwarded)
	t, ke := x.serviceTicket(st, svc, b.SName, flags, servicePAC(st, svc), nil)
	if ke != nil {
		return failWith(ke)
	}
	return x.finish(ev, st, t)
}

// servicePAC is the TGT's PAC as a ticket to svc carries it: none when the
// client declined it at its AS exchange (MS-KILE 3.3.5.7.2) or the service
// wants no authorization data (MS-KILE 3.3.5.6.4).
func servicePAC(st *tgsState, svc *directory.Entry) *pac.PAC {
	pc := st.pac
	if svc.Type != directory.TypeKrbtgt && pacDeclined(pc.Info) {
		return nil
	}
	if svc.NoAuthDataRequired {
		return nil
	}
	return pc
}

// pacDeclined reports PAC_ATTRIBUTES_INFO saying the client asked for no
// PAC at its AS exchange (MS-KILE 2.2.3, 3.3.5.7.2).
func pacDeclined(info pac.Info) bool {
	return info.HasAttributes && info.Attributes&(pac.WasRequested|pac.WasGivenImplicitly) == 0
}

// verifyPATGSReq checks the TGT and authenticator of PA-TGS-REQ (RFC 4120
// §3.3.2) and the checksum over the request body as received (§7.2.2 usage 6).
func (x *exchange) verifyPATGSReq() (*tgsState, *kerr.Error) {
	pa, ok := x.req.PA(kmsg.PATGSReq)
	if !ok {
		return nil, kerr.Errorf(kerr.KDC_ERR_PADATA_TYPE_NOSUPP, "NO_PA_TGS_REQ", "TGS-REQ without PA-TGS-REQ")
	}
	ap, fast := kmsg.FastAPReq(pa.PADataValue)
	if !fast {
		if err := kmsg.SafeUnmarshal(func() error { return ap.Unmarshal(pa.PADataValue) }); err != nil {
			return nil, kerr.Errorf(kerr.KRB_AP_ERR_MSG_TYPE, "BAD_AP_REQ", "PA-TGS-REQ: %v", err)
		}
	}
	st, ke := x.openTGT(ap.Ticket, false)
	if ke != nil {
		return st, ke
	}
	etp := st.tgt
	auth, ke := x.openAuthenticator(ap.EncryptedAuthenticator, etp, kcrypto.UsageTGSReqAuthenticator)
	if ke != nil {
		return st, ke
	}
	// Active Directory accepts a PA-TGS-REQ authenticator without the body
	// checksum (usage 6, RFC 4120 §7.2.2; the Authenticator's cksum is
	// OPTIONAL in §5.5.1) — impacket sends none and works against every DC —
	// while MIT requires it (KRB_AP_ERR_INAPP_CKSUM).
	// The lab follows AD; a checksum that is present is always verified.
	if auth.Cksum.CksumType == 0 && len(auth.Cksum.Checksum) == 0 {
		x.s.log.Debug("PA-TGS-REQ without a body checksum (accepted, as AD does)", "client", kmsg.PrincipalString(etp.CName, etp.CRealm))
	} else if err := kcrypto.VerifyChecksum(etp.Key, kcrypto.UsageTGSReqChecksum, x.req.RawBody, auth.Cksum); err != nil {
		ke, _ := err.(*kerr.Error)
		if ke == nil {
			ke = kerr.Errorf(kerr.KRB_AP_ERR_MODIFIED, "BAD_CHECKSUM", "%v", err)
		}
		ke.Text = "request body checksum: " + ke.Text
		return st, ke
	}
	if len(auth.AuthorizationData) > 0 {
		a := kmsg.SummarizeAD(auth.AuthorizationData)
		st.fastArmor, st.fastUsed = a.FastArmor, a.FastUsed
	}
	st.replyKey, st.replyUsage = etp.Key, kcrypto.UsageTGSRepEncPart
	if auth.SubKey.KeyType != 0 {
		st.replyKey, st.replyUsage = auth.SubKey, kcrypto.UsageTGSRepEncPartSub
		st.subkey = auth.SubKey
	}
	return st, x.checkTGT(st)
}

// openAuthenticator decrypts the authenticator of an AP-REQ whose ticket
// is etp (a PA-TGS-REQ's, or FAST's armor) and checks that it names the
// ticket's client and that its clock is within the skew (RFC 4120 §3.2.3).
func (x *exchange) openAuthenticator(ed types.EncryptedData, etp messages.EncTicketPart, usage uint32) (types.Authenticator, *kerr.Error) {
	plain, err := kcrypto.Decrypt(ed, etp.Key, usage)
	if err != nil {
		return types.Authenticator{}, kerr.Errorf(kerr.KRB_AP_ERR_BAD_INTEGRITY, "AUTHENTICATOR", "authenticator does not decrypt with the TGT session key")
	}
	auth, fast := kmsg.FastAuthenticator(plain)
	if !fast {
		if err := kmsg.SafeUnmarshal(func() error { return auth.Unmarshal(plain) }); err != nil {
			return auth, kerr.Errorf(kerr.KRB_AP_ERR_BAD_INTEGRITY, "AUTHENTICATOR", "authenticator: %v", err)
		}
	}
	if !kmsg.SameName(auth.CName, etp.CName) || !strings.EqualFold(auth.CRealm, etp.CRealm) {
		return auth, kerr.Errorf(kerr.KRB_AP_ERR_BADMATCH, "BADMATCH", "authenticator names %s, TGT names %s",
			kmsg.PrincipalString(auth.CName, auth.CRealm), kmsg.PrincipalString(etp.CName, etp.CRealm))
	}
	skew := x.view.Lab.Policy.MaxSkew.D()
	if d := x.now.Sub(auth.CTime); d > skew || d < -skew {
		return auth, kerr.Errorf(kerr.KRB_AP_ERR_SKEW, "SKEW", "client clock is %s off the KDC's (max %s)", d.Round(time.Second), skew).WithStatus(kerr.StatusTimeDifference)
	}
	return auth, nil
}

// openTGT decrypts a TGT — PA-TGS-REQ's, or the additional ticket of a
// user-to-user request — with the krbtgt key that sealed it (the domain's
// or an RODC's krbtgt_N) and checks its flags and times (RFC 4120 §3.3.3).
func (x *exchange) openTGT(t messages.Ticket, additional bool) (*tgsState, *kerr.Error) {
	tkt := kmsg.CleanTicket(t)
	if len(tkt.SName.NameString) != 2 || !strings.EqualFold(tkt.SName.NameString[0], "krbtgt") || !strings.EqualFold(tkt.SName.NameString[1], x.realm()) {
		if additional {
			// What Windows answers for a service ticket in its place: it
			// does not decrypt with the krbtgt key.
			return nil, kerr.Errorf(kerr.KRB_AP_ERR_MODIFIED, "U2U_NOT_A_TGT", "the additional ticket is for %s, not krbtgt/%s", kmsg.PrincipalString(tkt.SName, tkt.Realm), x.realm())
		}
		if x.isRenewal() || kmsg.HasFlag(x.req.Body.KDCOptions, kmsg.OptValidate) {
			// A service ticket presented for renewal or validation: refused
			// by policy (Windows renews and validates TGTs only).
			return nil, kerr.Errorf(kerr.KDC_ERR_POLICY, "RENEW_NOT_A_TGT", "only TGTs are renewed or validated here; this ticket is for %s", kmsg.PrincipalString(tkt.SName, tkt.Realm))
		}
		return nil, kerr.Errorf(kerr.KRB_AP_ERR_NOT_US, "NOT_A_TGT", "PA-TGS-REQ ticket is for %s, not krbtgt/%s", kmsg.PrincipalString(tkt.SName, tkt.Realm), x.realm())
	}
	krbtgt, rodc, ke := x.tgtIssuer(tkt.EncPart.KVNO)
	if ke != nil {
		return nil, ke
	}
	key, ok := krbtgt.Key(tkt.EncPart.EType)
	if !ok || len(krbtgt.ETypes) > 0 && tkt.EncPart.EType != krbtgt.ETypes[0] {
		// The KDC seals TGTs with the krbtgt's strongest key; one in another
		// (an RC4 TGT made with the krbtgt's NT hash) is refused, as Windows
		// does: KRB_ERR_GENERIC, or ETYPE_NOSUPP for a user-to-user ticket.
		code := kerr.KRB_ERR_GENERIC
		if additional || !ok {
			code = kerr.KDC_ERR_ETYPE_NOSUPP
		}
		return nil, kerr.Errorf(code, "TGT_ETYPE", "a TGT sealed in %s; %s seals TGTs in %s", kcrypto.ETypeName(tkt.EncPart.EType), krbtgt.Name, kcrypto.ETypeName(krbtgt.ETypes[0]))
	}
	if kv := int(uint32(tkt.EncPart.KVNO) & 0xffff); kv != 0 && kv != krbtgt.KVNO {
		return nil, kerr.Errorf(kerr.KRB_AP_ERR_BADKEYVER, "KRBTGT_KVNO", "TGT from %s kvno %d, current kvno %d", krbtgt.Name, kv, krbtgt.KVNO)
	}
	etp, err := kmsg.OpenTicket(tkt, key)
	if err != nil {
		return nil, err.(*kerr.Error)
	}
	st := &tgsState{tgt: etp, rodc: rodc, krbtgtKey: key}
	if kmsg.HasFlag(etp.Flags, kmsg.FlagInvalid) && (additional || !kmsg.HasFlag(x.req.Body.KDCOptions, kmsg.OptValidate)) {
		// RFC 4120 §2.2: an invalid (postdated) ticket serves only to be validated.
		return st, kerr.Errorf(kerr.KRB_AP_ERR_TKT_NYV, "TGT_INVALID", "the TGT is marked invalid: validate it first")
	}
	if x.now.Sub(etp.EndTime) > 0 && (additional || !x.isRenewal()) {
		return st, kerr.Errorf(kerr.KRB_AP_ERR_TKT_EXPIRED, "TGT_EXPIRED", "TGT expired at %s", etp.EndTime.UTC().Format(time.RFC3339))
	}
	return st, nil
}

// checkTGT finds the TGT's client and checks its PAC as AD does.
func (x *exchange) checkTGT(st *tgsState) *kerr.Error {
	etp := st.tgt
	name, err := clientName(etp.CName)
	requester, ok := x.view.Account(name)
	if err != nil || !ok || requester.Disabled {
		return kerr.Errorf(kerr.KDC_ERR_C_PRINCIPAL_UNKNOWN, "CLIENT_GONE", "the TGT's client %s no longer exists or is disabled", kmsg.PrincipalString(etp.CName, etp.CRealm)).WithStatus(kerr.StatusNoSuchUser)
	}
	st.requester = requester
	ad := kmsg.SummarizeAD(etp.AuthorizationData)
	st.fastArmor, st.fastUsed = st.fastArmor || ad.FastArmor, st.fastUsed || ad.FastUsed
	p := ad.PAC
	if p == nil {
		// A TGT must carry the PAC the KDC put in it (MS-KILE 3.3.5.7.1,
		// the November 2021 PAC hardening, KB5008380).
		return kerr.Errorf(kerr.KDC_ERR_TGT_REVOKED, "TGT_NO_PAC", "the TGT of %s carries no PAC", name)
	}
	pc, ke := tgtPAC(p, st.krbtgtKey)
	if ke != nil {
		return ke
	}
	st.pac = pc
	// The PAC names the account the TGT was issued to: its PAC_REQUESTOR
	// (MS-PAC 2.15) must be the account's, or the TGT was made for someone
	// else (CVE-2021-42287's renamed-account trick). Only the requestor:
	// Windows copies the logon information as the TGT carries it
	// (kdc_tgs_tests' logon_info_sid_mismatch cases).
	if pc.Info.Requestor == "" {
		return kerr.Errorf(kerr.KDC_ERR_TGT_REVOKED, "TGT_NO_REQUESTOR", "the TGT of %s has no PAC_REQUESTOR", name)
	}
	if !strings.EqualFold(pc.Info.Requestor, requester.SID) {
		return kerr.Errorf(kerr.KDC_ERR_TGT_REVOKED, "REQUESTOR_MISMATCH", "the TGT's PAC_REQUESTOR %s is not %s (%s)", pc.Info.Requestor, name, requester.SID)
	}
	if st.rodc != nil {
		return x.rodcTGT(st, name, requester)
	}
	return nil
}

// tgtPAC parses a TGT's PAC and checks it as AD does: its server signature
// with the krbtgt key (the KDC signature over it adds nothing inside a
// ticket only the KDC can open, and is not checked). Each problem has
// Windows' own code and status.
func tgtPAC(raw []byte, krbtgtKey types.EncryptionKey) (*pac.PAC, *kerr.Error) {
	pc, err := pac.Parse(raw)
	if err == nil {
		err = pc.VerifyServerChecksum(krbtgtKey)
	}
	if err == nil {
		return pc, nil
	}
	var se *pac.SignatureError
	if !errors.As(err, &se) {
		return nil, kerr.Errorf(kerr.KRB_AP_ERR_MODIFIED, "TGT_PAC", "TGT PAC: %v", err)
	}
	switch se.Problem {
	case pac.SigMismatch:
		return nil, kerr.Errorf(kerr.KRB_AP_ERR_MODIFIED, "TGT_PAC_SIGNATURE", "TGT %v", se).WithStatus(kerr.StatusWrongPassword)
	case pac.SigUnknownType:
		return nil, kerr.Errorf(kerr.KDC_ERR_SUMTYPE_NOSUPP, "TGT_PAC_SIGNATURE", "TGT %v", se).WithStatus(kerr.StatusLogonFailure)
	}
	return nil, kerr.Errorf(kerr.KRB_ERR_GENERIC, "TGT_PAC_SIGNATURE", "TGT %v", se).WithStatus(kerr.StatusInsufficientResources)
}

// serviceFlags derives the service ticket's flags from the TGT and the
// directory (RFC 4120 §2, MS-KILE 3.3.5.7): forwardable only if the TGT is and
// the user may be delegated; ok-as-delegate for services trusted for
// unconstrained delegation (that is what makes Windows clients forward a TGT).
func (x *exchange) serviceFlags(st *tgsState, svc *directory.Entry, toKrbtgt, forwarded bool) (f asnFlags) {
	f = kmsg.NewFlags()
	opts := x.req.Body.KDCOptions
	tf := st.tgt.Flags
	if kmsg.HasFlag(tf, kmsg.FlagForwardable) && !st.requester.CannotBeDelegated() && (kmsg.HasFlag(opts, kmsg.FlagForwardable) || forwarded) {
		kmsg.SetFlag(&f, kmsg.FlagForwardable)
	}
	if forwarded || kmsg.HasFlag(tf, kmsg.FlagForwarded) {
		kmsg.SetFlag(&f, kmsg.FlagForwarded)
	}
	if kmsg.HasFlag(tf, kmsg.FlagProxiable) && kmsg.HasFlag(opts, kmsg.FlagProxiable) {
		kmsg.SetFlag(&f, kmsg.FlagProxiable)
	}
	if kmsg.HasFlag(tf, kmsg.FlagRenewable) && (kmsg.HasFlag(opts, kmsg.FlagRenewable) || kmsg.HasFlag(opts, kmsg.OptRenewableOK)) {
		kmsg.SetFlag(&f, kmsg.FlagRenewable)
	}
	if kmsg.HasFlag(tf, kmsg.FlagPreAuthent) {
		kmsg.SetFlag(&f, kmsg.FlagPreAuthent)
	}
	if !toKrbtgt && svc.Delegation.Mode == directory.DelegUnconstrained {
		kmsg.SetFlag(&f, kmsg.FlagOKAsDelegate)
	}
	return f
}

// serviceTicket issues a ticket for svc to the TGT's client, copying the PAC.
// With u2uKey, it is sealed in that key (a user-to-user ticket).
func (x *exchange) serviceTicket(st *tgsState, svc *directory.Entry, sname types.PrincipalName, flags asnFlags, pc *pac.PAC, u2uKey *types.EncryptionKey) (ticketOut, *kerr.Error) {
	b := x.req.Body
	sessET, ok := sessionEType(b.EType, svc)
	if u2uKey != nil {
		sessET, ok = u2uKey.KeyType, true
	}
	if !ok {
		return ticketOut{}, kerr.Errorf(kerr.KDC_ERR_ETYPE_NOSUPP, "ETYPE_NOSUPP", "no etype common to the request %v and %s's keys %v",
			b.EType, svc.Name, svc.ETypes).WithStatus(kerr.StatusUnsupportedEtype)
	}
	sk, err := kcrypto.NewSessionKey(sessET)
	if err != nil {
		return ticketOut{}, kerr.Errorf(kerr.KRB_ERR_GENERIC, "KEYGEN", "%v", err)
	}
	end := st.tgt.EndTime
	if max := x.now.Add(x.view.Lab.Policy.TicketLifetime.D()); end.After(max) {
		end = max
	}
	if till := requestedTill(b.Till); !till.IsZero() && till.Before(end) {
		end = till
	}
	if !end.After(x.now) {
		return ticketOut{}, kerr.Errorf(kerr.KDC_ERR_NEVER_VALID, "NEVER_VALID", "the ticket would end at %s, before now", end.UTC().Format(time.RFC3339))
	}
	if pc != nil && svc.Type != directory.TypeKrbtgt {
		// MS-KILE 3.3.5.6.4.7/8: PAC_ATTRIBUTES_INFO and PAC_REQUESTOR belong in TGTs only.
		pc.RemoveBuffer(pac.TypeAttributesInfo)
		pc.RemoveBuffer(pac.TypeRequestor)
	}
	spec := ticketSpec{client: st.tgt.CName, clientRealm: st.tgt.CRealm, service: sname, serviceAcct: svc, flags: flags,
		authTime: st.tgt.AuthTime, endTime: end, sessionKey: sk, caddr: st.tgt.CAddr, pac: pc, u2uKey: u2uKey}
	if kmsg.HasFlag(flags, kmsg.FlagRenewable) {
		spec.renewTill = st.tgt.RenewTill
	}
	tkt, ke := x.seal(spec)
	return ticketOut{tkt: tkt, spec: spec}, ke
}

type ticketOut struct {
	tkt  messages.Ticket
	spec ticketSpec
}

// finish encodes the TGS-REP and emits the success event.
func (x *exchange) finish(ev events.Event, st *tgsState, t ticketOut) []byte {
	rep, ke := x.reply(t.tkt, t.spec, st.replyKey, st.replyUsage, 0, nil)
	if ke != nil {
		return x.refuse(&ev, ke)
	}
	if ev.Account == "" {
		ev.Account = t.spec.serviceAcct.Name
	}
	if ev.Client == "" {
		ev.Client = kmsg.PrincipalString(t.spec.client, t.spec.clientRealm)
	}
	ev.EType, ev.KVNO, ev.TicketFlags = t.tkt.EncPart.EType, t.tkt.EncPart.KVNO, kmsg.FlagNames(t.spec.flags)
	x.emit(ev)
	return rep
}

// renew answers RENEW/VALIDATE for a TGT or service ticket presented in
// PA-TGS-REQ (RFC 4120 §3.3.3.1); the lab only renews TGTs.
func (x *exchange) renew(st *tgsState, ev events.Event) []byte {
	failWith := func(e *kerr.Error) []byte { return x.refuse(&ev, e) }
	tgt := st.tgt
	if kmsg.HasFlag(x.req.Body.KDCOptions, kmsg.OptValidate) {
		return x.validate(st, ev)
	}
	if !kmsg.HasFlag(tgt.Flags, kmsg.FlagRenewable) {
		return failWith(kerr.Errorf(kerr.KDC_ERR_BADOPTION, "NOT_RENEWABLE", "the ticket is not renewable"))
	}
	if x.now.After(tgt.RenewTill) {
		return failWith(kerr.Errorf(kerr.KRB_AP_ERR_TKT_EXPIRED, "RENEW_TILL", "renew-till %s has passed", tgt.RenewTill.UTC().Format(time.RFC3339)))
	}
	end := x.now.Add(x.view.Lab.Policy.TicketLifetime.D())
	if end.After(tgt.RenewTill) {
		end = tgt.RenewTill
	}
	return x.reissue(st, ev, kmsg.CopyFlags(tgt.Flags), time.Time{}, end, "A Kerberos service ticket was renewed")
}

// reissue seals the TGT again with a new session key, flags and times: the
// answer to RENEW and VALIDATE (RFC 4120 §3.3.3.1). A zero start is now.
func (x *exchange) reissue(st *tgsState, ev events.Event, flags asnFlags, start, end time.Time, message string) []byte {
	tgt := st.tgt
	sk, err := kcrypto.NewSessionKey(tgt.Key.KeyType)
	if err != nil {
		return x.refuse(&ev, kerr.Errorf(kerr.KRB_ERR_GENERIC, "KEYGEN", "%v", err))
	}
	spec := ticketSpec{client: tgt.CName, clientRealm: tgt.CRealm, service: types.PrincipalName{NameType: kmsg.NTSrvInst, NameString: []string{"krbtgt", x.realm()}},
		serviceAcct: x.view.Krbtgt(), flags: flags, authTime: tgt.AuthTime, startTime: start, endTime: end, renewTill: tgt.RenewTill,
		sessionKey: sk, caddr: tgt.CAddr, pac: st.pac}
	tkt, ke := x.seal(spec)
	if ke != nil {
		return x.refuse(&ev, ke)
	}
	ev.Message = message
	return x.finish(ev, st, ticketOut{tkt: tkt, spec: spec})
}

// validate gives back an invalid (postdated) TGT made valid once its start
// time has come (RFC 4120 §3.3.3.1, the VALIDATE option).
func (x *exchange) validate(st *tgsState, ev events.Event) []byte {
	failWith := func(e *kerr.Error) []byte { return x.refuse(&ev, e) }
	tgt := st.tgt
	if !kmsg.HasFlag(tgt.Flags, kmsg.FlagInvalid) {
		return failWith(kerr.Errorf(kerr.KDC_ERR_BADOPTION, "NOT_INVALID", "VALIDATE for a ticket that is not invalid"))
	}
	start := tgt.StartTime
	if start.IsZero() {
		start = tgt.AuthTime
	}
	if start.Sub(x.now) > x.view.Lab.Policy.MaxSkew.D() {
		return failWith(kerr.Errorf(kerr.KRB_AP_ERR_TKT_NYV, "TKT_NYV", "the ticket starts at %s", start.UTC().Format(time.RFC3339)))
	}
	if x.now.After(tgt.EndTime) {
		return failWith(kerr.Errorf(kerr.KRB_AP_ERR_TKT_EXPIRED, "TKT_EXPIRED", "the ticket ended at %s", tgt.EndTime.UTC().Format(time.RFC3339)))
	}
	flags := kmsg.CopyFlags(tgt.Flags)
	kmsg.ClearFlag(&flags, kmsg.FlagInvalid)
	return x.reissue(st, ev, flags, tgt.StartTime, tgt.EndTime, "A Kerberos ticket was validated")
}

// serviceUnknown is the KDC's answer for an SPN it cannot resolve (TGS-REQ
// and S4U2Proxy alike): on several accounts, AD logs KDC event 11
// (KDCEVENT_NAME_NOT_UNIQUE) and issues no ticket (the client falls back, to
// NTLM on Windows); on none, KDC_ERR_S_PRINCIPAL_UNKNOWN.
func (x *exchange) serviceUnknown(res directory.Resolution) *kerr.Error {
	if len(res.Duplicates) > 0 {
		x.emit(events.Event{ID: events.KDCDuplicateName, Outcome: events.Failure, Service: res.SPN, Reason: "DUPLICATE_SPN",
			Message: "The KDC encountered duplicate names while processing a Kerberos authentication request. The duplicate name is " +
				res.SPN + " (of type DS_SERVICE_PRINCIPAL_NAME), registered on " + strings.Join(res.Duplicates, ", ")})
		return kerr.Errorf(kerr.KDC_ERR_S_PRINCIPAL_UNKNOWN, "DUPLICATE_SPN", "%s is registered on %s", res.SPN, strings.Join(res.Duplicates, " and "))
	}
	return kerr.Errorf(kerr.KDC_ERR_S_PRINCIPAL_UNKNOWN, "SERVER_UNKNOWN", "no account holds the SPN %s", res.SPN).WithStatus(kerr.StatusNoSuchUser)
}
