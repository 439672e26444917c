package kdc

import (
	"errors"
	"slices"
	"strings"

	"github.com/doublehop/doublehop/directory"
	"github.com/doublehop/doublehop/events"
	"github.com/doublehop/doublehop/krb/kerr"
	"github.com/doublehop/doublehop/krb/kmsg"
	"github.com/doublehop/doublehop/krb/pac"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

// s4u2self issues a ticket to the requesting service for a user named in
// PA-FOR-USER (MS-SFU 3.2.5.1, protocol transition).
func (x *exchange) s4u2self(st *tgsState, ev events.Event) []byte {
	ev.Mechanism = "s4u2self"
	failWith := func(e *kerr.Error) []byte { return x.refuse(&ev, e) }
	pa, _ := x.req.PA(kmsg.PAForUser)
	// MS-SFU 2.2.1: the checksum is keyed with the TGT session key.
	fu, err := kmsg.ParsePAForUser(pa.PADataValue, st.tgt.Key)
	if err != nil {
		return failWith(err.(*kerr.Error))
	}
	svc := st.requester
	ev.Account = svc.Name
	ev.Target = svc.Name
	// The S4U2Self ticket is for the requesting service itself (MS-SFU 3.1.5.1.1.1).
	res, ok := x.view.ResolveService(x.req.Body.SName)
	if !ok || res.Entry != svc {
		return failWith(kerr.Errorf(kerr.KRB_AP_ERR_BADMATCH, "S4U2SELF_NOT_SELF", "S4U2Self for %s must name the requesting service %s", res.SPN, svc.Name))
	}
	if !strings.EqualFold(fu.UserRealm, x.realm()) {
		return failWith(kerr.Errorf(kerr.KDC_ERR_WRONG_REALM, "S4U_REALM", "user realm %s is not %s", fu.UserRealm, x.realm()))
	}
	name, _ := clientName(fu.UserName)
	user, ok := x.view.Account(name)
	if !ok || user.Disabled {
		ev.Client = name + "@" + x.realm()
		return failWith(kerr.Errorf(kerr.KDC_ERR_C_PRINCIPAL_UNKNOWN, "S4U_USER_UNKNOWN", "no account %s", name).WithStatus(kerr.StatusNoSuchUser))
	}
	ev.Client = user.Name + "@" + x.realm()
	// MS-SFU 3.2.5.1.2: forwardable when asked and the TGT is, never for a
	// user who cannot be delegated, and not for a service that lists targets
	// in msDS-AllowedToDelegateTo without TrustedToAuthForDelegation (that
	// is Kerberos-only constrained delegation: no protocol transition).
	flags := kmsg.NewFlags(kmsg.FlagPreAuthent)
	kerberosOnly := !svc.Delegation.ProtocolTransition && len(svc.Delegation.AllowedTo) > 0
	if kmsg.HasFlag(x.req.Body.KDCOptions, kmsg.FlagForwardable) && kmsg.HasFlag(st.tgt.Flags, kmsg.FlagForwardable) &&
		!user.CannotBeDelegated() && !kerberosOnly {
		kmsg.SetFlag(&flags, kmsg.FlagForwardable)
	} else {
		ev.Reason = "S4U2SELF_NOT_FORWARDABLE"
	}
	// MS-SFU 3.2.5.1.2: SERVICE_ASSERTED_IDENTITY instead of AUTHENTICATION_AUTHORITY_ASSERTED_IDENTITY.
	info := x.pacInfo(user, x.now)
	info.ExtraSIDs = []string{"S-1-18-2"}
	pc, perr := pac.New(info)
	if perr != nil {
		return failWith(kerr.Errorf(kerr.KRB_ERR_GENERIC, "PAC", "%v", perr))
	}
	userPN := types.PrincipalName{NameType: kmsg.NTPrincipal, NameString: []string{user.Name}}
	stt := *st
	stt.tgt.CName, stt.tgt.CRealm, stt.tgt.AuthTime = userPN, x.realm(), x.now
	t, ke := x.serviceTicket(&stt, svc, x.req.Body.SName, flags, pc, nil)
	if ke != nil {
		return failWith(ke)
	}
	return x.finish(ev, st, t)
}

// s4u2proxy issues a ticket to another service for the client of an evidence
// ticket (MS-SFU 3.2.5.2): classic constrained delegation checks the
// requester's msDS-AllowedToDelegateTo (3.2.5.2.1), resource-based checks the
// target's msDS-AllowedToActOnBehalfOfOtherIdentity (3.2.5.2.3). The order
// and the codes are Windows': the classic check first (its failure's status
// travels with any later RBCD refusal), then the evidence ticket and its
// PAC, then forwardability and the resource's list.
func (x *exchange) s4u2proxy(st *tgsState, ev events.Event) []byte {
	ev.Mechanism = "constrained"
	failWith := func(e *kerr.Error) []byte { return x.refuse(&ev, e) }
	svc1 := st.requester
	b := x.req.Body
	target := kmsg.PrincipalString(b.SName, "")
	ev.Target = target
	ev.Transited = []string{svc1.Name}
	if len(b.AdditionalTickets) != 1 {
		return failWith(kerr.Errorf(kerr.KDC_ERR_BADOPTION, "NO_EVIDENCE", "cname-in-addl-tkt with %d additional tickets", len(b.AdditionalTickets)))
	}
	var rbcdOption bool
	if pa, ok := x.req.PA(kmsg.PAPACOptions); ok {
		if f, err := kmsg.ParsePAPACOptions(pa.PADataValue); err == nil {
			rbcdOption = kmsg.HasFlag(f, kmsg.PACOptionRBCD)
		}
	}
	classicRefusal := classicDelegation(svc1, target)
	if classicRefusal != nil && !rbcdOption {
		return failWith(classicRefusal)
	}
	evidence, ke := x.openEvidence(b.AdditionalTickets[0], svc1)
	if evidence != nil {
		ev.Client = kmsg.PrincipalString(evidence.CName, evidence.CRealm)
		ev.Evidence = ev.Client + " -> " + kmsg.PrincipalString(b.AdditionalTickets[0].SName, "")
	}
	if ke != nil {
		if classicRefusal != nil {
			ke.Status = classicRefusal.Status
		}
		return failWith(ke)
	}
	res, ok := x.view.ResolveService(b.SName)
	if !ok {
		return failWith(x.serviceUnknown(res))
	}
	svc2 := res.Entry
	ev.Account = svc2.Name
	if svc2.Disabled {
		return failWith(kerr.Errorf(kerr.KDC_ERR_S_PRINCIPAL_UNKNOWN, "SERVICE_DISABLED", "account %s is disabled", svc2.Name))
	}
	name, _ := clientName(evidence.CName)
	user, ok := x.view.Account(name)
	if !ok || user.Disabled {
		return failWith(kerr.Errorf(kerr.KDC_ERR_C_PRINCIPAL_UNKNOWN, "S4U_USER_UNKNOWN", "evidence client %s is unknown or disabled", name).WithStatus(kerr.StatusNoSuchUser))
	}
	forwardable := kmsg.HasFlag(evidence.Flags, kmsg.FlagForwardable)
	decision := checkDelegation(classicRefusal, rbcdOption, svc1, svc2, forwardable, evidence.fromS4U2Self(), user)
	if decision.err != nil {
		return failWith(decision.err)
	}
	ev.Mechanism = decision.mechanism

	pc := evidence.pac
	transited := []string{}
	if pc.Info.Delegation != nil {
		transited = append(transited, pc.Info.Delegation.TransitedServices...)
	}
	// MS-PAC 2.9: the front end is named by the service name of the
	// evidence ticket it presented, as Windows writes it: the SPN the user
	// asked for (HTTP/web.lab.local@LAB.LOCAL), or the service's own name
	// for an S4U2Self ticket (svc_iispool@LAB.LOCAL).
	transited = append(transited, kmsg.PrincipalString(b.AdditionalTickets[0].SName, x.realm()))
	if err := pc.SetDelegation(&pac.S4UDelegationInfo{S4U2ProxyTarget: target, TransitedServices: transited}); err != nil {
		return failWith(kerr.Errorf(kerr.KRB_ERR_GENERIC, "PAC", "%v", err))
	}
	ev.Transited = transited
	// The proxy ticket is forwardable (it can be used for further S4U2Proxy hops).
	flags := kmsg.NewFlags(kmsg.FlagForwardable)
	if kmsg.HasFlag(evidence.Flags, kmsg.FlagPreAuthent) {
		kmsg.SetFlag(&flags, kmsg.FlagPreAuthent)
	}
	stt := *st
	stt.tgt.CName, stt.tgt.CRealm, stt.tgt.AuthTime = evidence.CName, evidence.CRealm, evidence.AuthTime
	if evidence.EndTime.Before(stt.tgt.EndTime) {
		stt.tgt.EndTime = evidence.EndTime
	}
	if svc2.NoAuthDataRequired {
		pc = nil // MS-KILE 3.3.5.6.4
	}
	t, ke := x.serviceTicket(&stt, svc2, b.SName, flags, pc, nil)
	if ke != nil {
		return failWith(ke)
	}
	return x.finish(ev, st, t)
}

// classicDelegation is MS-SFU 3.2.5.2.1: nil when the front end lists the
// target in msDS-AllowedToDelegateTo, else the refusal with its status
// (NOT_SUPPORTED when the list is empty, NO_MATCH otherwise).
func classicDelegation(svc1 *directory.Entry, target string) *kerr.Error {
	if svc1.Delegation.Mode == directory.DelegConstrained && containsFold(svc1.Delegation.AllowedTo, target) {
		return nil
	}
	if svc1.Delegation.Mode != directory.DelegConstrained || len(svc1.Delegation.AllowedTo) == 0 {
		return kerr.Errorf(kerr.KDC_ERR_BADOPTION, "NOT_TRUSTED_FOR_DELEGATION",
			"%s is not trusted for constrained delegation (msDS-AllowedToDelegateTo is empty)", svc1.Name).WithStatus(kerr.StatusNotSupported)
	}
	return kerr.Errorf(kerr.KDC_ERR_BADOPTION, "NOT_ALLOWED_TO_DELEGATE",
		"%s is not in %s's msDS-AllowedToDelegateTo %v", target, svc1.Name, svc1.Delegation.AllowedTo).WithStatus(kerr.StatusNoMatch)
}

type delegationDecision struct {
	mechanism string // constrained | rbcd
	err       *kerr.Error
}

// checkDelegation decides once the evidence is known good (MS-SFU
// 3.2.5.2.1, 3.2.5.2.3): classic delegation needs forwardable evidence;
// RBCD needs the resource to list the front end, and takes non-forwardable
// evidence only when it is an S4U2Self ticket (protocol transition not
// allowed) for a user who may be delegated. A ticket the user got himself
// and that is not forwardable is STATUS_ACCOUNT_RESTRICTION either way.
func checkDelegation(classicRefusal *kerr.Error, rbcdOption bool, svc1, svc2 *directory.Entry, forwardable, s4u2self bool, user *directory.Entry) delegationDecision {
	classic := classicRefusal == nil
	notForwardable := kerr.Errorf(kerr.KDC_ERR_BADOPTION, "EVIDENCE_TKT_NOT_FORWARDABLE",
		"the evidence ticket of %s is not forwardable (user sensitive, or S4U2Self without protocol transition)", user.Name).WithStatus(kerr.StatusAccountRestriction)
	if classic {
		if forwardable {
			return delegationDecision{mechanism: "constrained"}
		}
		if !rbcdOption {
			return delegationDecision{err: notForwardable}
		}
	}
	if !containsFold(svc2.AllowedToActOnBehalfOf, svc1.Name) {
		if classic {
			return delegationDecision{err: notForwardable}
		}
		return delegationDecision{err: kerr.Errorf(kerr.KDC_ERR_BADOPTION, classicRefusal.Reason,
			"%s does not list %s in msDS-AllowedToActOnBehalfOfOtherIdentity, and %s's msDS-AllowedToDelegateTo %v does not list it",
			svc2.Name, svc1.Name, svc1.Name, svc1.Delegation.AllowedTo).WithStatus(kerr.StatusNotFound)}
	}
	if !forwardable && (!s4u2self || user.CannotBeDelegated()) {
		if user.CannotBeDelegated() {
			return delegationDecision{err: kerr.Errorf(kerr.KDC_ERR_BADOPTION, "USER_NOT_DELEGATABLE",
				"%s is sensitive or in Protected Users and cannot be delegated", user.Name).WithStatus(kerr.StatusAccountRestriction)}
		}
		return delegationDecision{err: notForwardable}
	}
	return delegationDecision{mechanism: "rbcd"}
}

// evidenceTicket is a decrypted S4U2Proxy evidence ticket.
type evidenceTicket struct {
	messages.EncTicketPart
	pac *pac.PAC
}

// fromS4U2Self reports an S4U2Self ticket: its PAC asserts the identity for
// the service (S-1-18-2), as only S4U2Self does (MS-SFU 3.2.5.1.2).
func (e *evidenceTicket) fromS4U2Self() bool {
	return e.pac != nil && slices.Contains(e.pac.Info.ExtraSIDs, "S-1-18-2")
}

// openEvidence decrypts the evidence ticket with the requesting service's key
// and checks its PAC signatures, the ticket signature included: a service that
// flipped the forwardable bit of a ticket it can decrypt (CVE-2020-17049,
// "Bronze Bit") is refused as patched AD refuses it (MS-PAC 2.8.3). The
// codes are Windows' for each problem (Samba's s4u_tests record them).
func (x *exchange) openEvidence(t messages.Ticket, svc1 *directory.Entry) (*evidenceTicket, *kerr.Error) {
	key, ok := svc1.Key(t.EncPart.EType)
	if !ok {
		return nil, kerr.Errorf(kerr.KDC_ERR_BADOPTION, "EVIDENCE_ETYPE", "evidence ticket in etype %d, %s has no such key", t.EncPart.EType, svc1.Name)
	}
	etp, err := kmsg.OpenTicket(t, key)
	if err != nil {
		return nil, kerr.Errorf(kerr.KDC_ERR_BADOPTION, "EVIDENCE_NOT_FOR_REQUESTER", "the evidence ticket is not a ticket to %s: %v", svc1.Name, err)
	}
	ev := &evidenceTicket{EncTicketPart: etp}
	if x.now.After(etp.EndTime) {
		return ev, kerr.Errorf(kerr.KRB_AP_ERR_TKT_EXPIRED, "EVIDENCE_EXPIRED", "the evidence ticket has expired")
	}
	krbtgt := x.view.Krbtgt()
	kk, _ := krbtgt.Key(krbtgt.ETypes[0])
	p, ok := kmsg.FindPAC(etp.AuthorizationData)
	if !ok {
		// krb5 PR #1159: S4U2Proxy must not work without a valid PAC in the evidence ticket.
		return ev, kerr.Errorf(kerr.KRB_AP_ERR_MODIFIED, "EVIDENCE_NO_PAC", "the evidence ticket carries no PAC")
	}
	pc, perr := pac.ParseVerified(p, key, kk)
	if perr == nil {
		perr = pac.VerifyTicketSignature(etp, kk)
	}
	if perr != nil {
		return ev, evidenceError(perr)
	}
	ev.pac = pc
	return ev, nil
}

// evidenceError is Windows' answer to an evidence PAC that does not check: a
// missing server or KDC signature or one of a type it cannot use is
// KRB_ERR_GENERIC, an unknown type for the server signature
// KDC_ERR_SUMTYPE_NOSUPP, a wrong value (or a missing ticket signature)
// KRB_AP_ERR_MODIFIED.
func evidenceError(err error) *kerr.Error {
	var se *pac.SignatureError
	if !errors.As(err, &se) {
		return kerr.Errorf(kerr.KRB_AP_ERR_MODIFIED, "EVIDENCE_PAC", "evidence PAC: %v", err)
	}
	reason := "EVIDENCE_PAC"
	if se.Buffer == pac.TypeTicketChecksum {
		reason = "TICKET_SIGNATURE" // the Bronze Bit's trace
	}
	switch {
	case se.Problem == pac.SigMismatch || se.Problem == pac.SigMissing && se.Buffer == pac.TypeTicketChecksum:
		return kerr.Errorf(kerr.KRB_AP_ERR_MODIFIED, reason, "the evidence ticket was modified after the KDC issued it (%v)", se)
	case se.Problem == pac.SigUnknownType && se.Buffer == pac.TypeServerChecksum:
		return kerr.Errorf(kerr.KDC_ERR_SUMTYPE_NOSUPP, reason, "evidence %v", se)
	}
	return kerr.Errorf(kerr.KRB_ERR_GENERIC, reason, "evidence %v", se)
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}
