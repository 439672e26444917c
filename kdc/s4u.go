package kdc

import (
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
		return failWith(kerr.Errorf(kerr.KDC_ERR_BADOPTION, "S4U2SELF_NOT_SELF", "S4U2Self for %s must name the requesting service %s", res.SPN, svc.Name).WithStatus(kerr.StatusNotSupported))
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
	// MS-SFU 3.2.5.1.2: forwardable only with TrustedToAuthForDelegation, and never
	// for a user who cannot be delegated.
	flags := kmsg.NewFlags(kmsg.FlagPreAuthent)
	if svc.Delegation.ProtocolTransition && !user.CannotBeDelegated() {
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
	t, ke := x.serviceTicket(&stt, svc, x.req.Body.SName, flags, pc)
	if ke != nil {
		return failWith(ke)
	}
	return x.finish(ev, st, t)
}

// s4u2proxy issues a ticket to another service for the client of an evidence
// ticket (MS-SFU 3.2.5.2): classic constrained delegation checks the
// requester's msDS-AllowedToDelegateTo (3.2.5.2.1), resource-based checks the
// target's msDS-AllowedToActOnBehalfOfOtherIdentity (3.2.5.2.3).
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
	evidence, ke := x.openEvidence(b.AdditionalTickets[0], svc1)
	if evidence != nil {
		ev.Client = kmsg.PrincipalString(evidence.CName, evidence.CRealm)
		ev.Evidence = ev.Client + " -> " + kmsg.PrincipalString(b.AdditionalTickets[0].SName, "")
	}
	if ke != nil {
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
	var pacOpts bool
	if pa, ok := x.req.PA(kmsg.PAPACOptions); ok {
		if f, err := kmsg.ParsePAPACOptions(pa.PADataValue); err == nil {
			pacOpts = kmsg.HasFlag(f, kmsg.PACOptionRBCD)
		}
	}
	forwardable := kmsg.HasFlag(evidence.Flags, kmsg.FlagForwardable)

	decision := checkDelegation(svc1, svc2, target, forwardable, pacOpts, user)
	if decision.err != nil {
		return failWith(decision.err)
	}
	ev.Mechanism = decision.mechanism

	pc := evidence.pac
	if pc != nil {
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
	}
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
	t, ke := x.serviceTicket(&stt, svc2, b.SName, flags, pc)
	if ke != nil {
		return failWith(ke)
	}
	return x.finish(ev, st, t)
}

type delegationDecision struct {
	mechanism string // constrained | rbcd
	err       *kerr.Error
}

// checkDelegation applies MS-SFU 3.2.5.2.1 and 3.2.5.2.3 in order.
func checkDelegation(svc1, svc2 *directory.Entry, target string, evidenceForwardable, rbcdOption bool, user *directory.Entry) delegationDecision {
	allowed := svc1.Delegation.Mode == directory.DelegConstrained && containsFold(svc1.Delegation.AllowedTo, target)
	if allowed && evidenceForwardable {
		return delegationDecision{mechanism: "constrained"}
	}
	if !rbcdOption {
		switch {
		case allowed: // listed, but the evidence is not forwardable
			return delegationDecision{err: kerr.Errorf(kerr.KDC_ERR_BADOPTION, "EVIDENCE_TKT_NOT_FORWARDABLE",
				"the evidence ticket of %s is not forwardable (user sensitive, or S4U2Self without protocol transition)", user.Name).WithStatus(kerr.StatusNoMatch)}
		case len(svc1.Delegation.AllowedTo) == 0 || svc1.Delegation.Mode != directory.DelegConstrained:
			return delegationDecision{err: kerr.Errorf(kerr.KDC_ERR_BADOPTION, "NOT_TRUSTED_FOR_DELEGATION",
				"%s is not trusted for constrained delegation (msDS-AllowedToDelegateTo is empty)", svc1.Name).WithStatus(kerr.StatusNotSupported)}
		default:
			return delegationDecision{err: kerr.Errorf(kerr.KDC_ERR_BADOPTION, "NOT_ALLOWED_TO_DELEGATE",
				"%s is not in %s's msDS-AllowedToDelegateTo %v", target, svc1.Name, svc1.Delegation.AllowedTo).WithStatus(kerr.StatusNoMatch)}
		}
	}
	// Resource-based constrained delegation (MS-SFU 3.2.5.2.3).
	if len(svc2.AllowedToActOnBehalfOf) == 0 || !containsFold(svc2.AllowedToActOnBehalfOf, svc1.Name) {
		if allowed { // classic matched but the evidence was not forwardable
			return delegationDecision{err: kerr.Errorf(kerr.KDC_ERR_BADOPTION, "EVIDENCE_TKT_NOT_FORWARDABLE",
				"the evidence ticket of %s is not forwardable and %s does not allow %s by RBCD", user.Name, svc2.Name, svc1.Name).WithStatus(kerr.StatusNoMatch)}
		}
		reason := "NOT_ALLOWED_TO_DELEGATE"
		if svc1.Delegation.Mode != directory.DelegConstrained || len(svc1.Delegation.AllowedTo) == 0 {
			reason = "NOT_TRUSTED_FOR_DELEGATION"
		}
		return delegationDecision{err: kerr.Errorf(kerr.KDC_ERR_BADOPTION, reason,
			"%s does not list %s in msDS-AllowedToActOnBehalfOfOtherIdentity, and %s's msDS-AllowedToDelegateTo %v does not list %s",
			svc2.Name, svc1.Name, svc1.Name, svc1.Delegation.AllowedTo, target).WithStatus(kerr.StatusNotFound)}
	}
	// RBCD accepts non-forwardable evidence, except for users who cannot be
	// delegated (MS-SFU 3.2.5.2.3 and its product note; MIT ticket 8479).
	if !evidenceForwardable && user.CannotBeDelegated() {
		return delegationDecision{err: kerr.Errorf(kerr.KDC_ERR_BADOPTION, "USER_NOT_DELEGATABLE",
			"%s is sensitive or in Protected Users and cannot be delegated", user.Name).WithStatus(kerr.StatusAccountRestriction)}
	}
	return delegationDecision{mechanism: "rbcd"}
}

// evidenceTicket is a decrypted S4U2Proxy evidence ticket.
type evidenceTicket struct {
	messages.EncTicketPart
	pac *pac.PAC
}

// openEvidence decrypts the evidence ticket with the requesting service's key
// and checks its PAC signatures, the ticket signature included: a service that
// flipped the forwardable bit of a ticket it can decrypt (CVE-2020-17049,
// "Bronze Bit") is refused as patched AD refuses it (MS-PAC 2.8.3).
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
		return ev, kerr.Errorf(kerr.KDC_ERR_BADOPTION, "EVIDENCE_NO_PAC", "the evidence ticket carries no PAC")
	}
	pc, perr := pac.ParseVerified(p, key, kk)
	if perr != nil {
		return ev, kerr.Errorf(kerr.KRB_AP_ERR_MODIFIED, "EVIDENCE_PAC", "evidence PAC does not verify: %v", perr)
	}
	if err := pac.VerifyTicketSignature(etp, kk); err != nil {
		return ev, kerr.Errorf(kerr.KRB_AP_ERR_MODIFIED, "TICKET_SIGNATURE", "the evidence ticket was modified after the KDC issued it (ticket signature: %v)", err)
	}
	ev.pac = pc
	return ev, nil
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}
