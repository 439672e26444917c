package kdc

import (
	"slices"
	"strings"

	"github.com/doublehop/doublehop/events"
	"github.com/doublehop/doublehop/krb/kerr"
	"github.com/doublehop/doublehop/krb/kmsg"
)

// user2user answers a TGS-REQ with ENC-TKT-IN-SKEY (RFC 4120 §3.3.3,
// §2.9.2; MS-KILE 3.3.5.7.3): the ticket is for the account whose TGT is
// the additional ticket, sealed in that TGT's session key rather than a
// long-term key. The additional TGT is checked as a PA-TGS-REQ's is (its
// PAC, its requestor, an RODC's policy); the sname must name its client.
func (x *exchange) user2user(st *tgsState, ev events.Event) []byte {
	failWith := func(e *kerr.Error) []byte { return x.refuse(&ev, e) }
	b := x.req.Body
	ev.Mechanism = "user-to-user"
	if len(b.AdditionalTickets) == 0 {
		return failWith(kerr.Errorf(kerr.KDC_ERR_BADOPTION, "U2U_NO_TICKET", "ENC-TKT-IN-SKEY without an additional ticket"))
	}
	u, ke := x.openTGT(b.AdditionalTickets[0], true)
	if ke == nil {
		ke = x.checkTGT(u)
	}
	if ke != nil {
		ke.Text = "the additional ticket: " + ke.Text
		return failWith(ke)
	}
	if !strings.EqualFold(b.Realm, x.realm()) {
		return failWith(kerr.Errorf(kerr.KDC_ERR_S_PRINCIPAL_UNKNOWN, "U2U_REALM", "user-to-user to %s in realm %s", kmsg.PrincipalString(b.SName, ""), b.Realm))
	}
	if len(b.SName.NameString) == 0 {
		return failWith(kerr.Errorf(kerr.KDC_ERR_S_PRINCIPAL_UNKNOWN, "U2U_NO_SNAME", "user-to-user without a server name"))
	}
	res, ok := x.view.ResolveService(b.SName)
	if !ok {
		return failWith(x.serviceUnknown(res))
	}
	svc := res.Entry
	ev.Account = svc.Name
	if svc.Name != u.requester.Name {
		// The server's name and the additional ticket's client are one
		// account (RFC 4120 §3.3.3: "the server name ... must match").
		return failWith(kerr.Errorf(kerr.KRB_AP_ERR_BADMATCH, "U2U_BADMATCH", "user-to-user to %s with the TGT of %s",
			kmsg.PrincipalString(b.SName, ""), u.requester.Name))
	}
	key := u.tgt.Key
	if !slices.Contains(b.EType, key.KeyType) {
		return failWith(kerr.Errorf(kerr.KDC_ERR_ETYPE_NOSUPP, "U2U_ETYPE", "the additional TGT's session key (etype %d) is not among the request's %v",
			key.KeyType, b.EType).WithStatus(kerr.StatusUnsupportedEtype))
	}
	flags := x.serviceFlags(st, svc, false, false)
	t, ke := x.serviceTicket(st, svc, b.SName, flags, servicePAC(st, svc), &key)
	if ke != nil {
		return failWith(ke)
	}
	return x.finish(ev, st, t)
}
