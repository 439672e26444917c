package sqltier

import (
	"testing"
	"time"

	"github.com/doublehop/doublehop/events"
	"github.com/doublehop/doublehop/krb/gss"
	"github.com/doublehop/doublehop/krb/kcrypto"
	"github.com/doublehop/doublehop/krb/kmsg"
	"github.com/doublehop/doublehop/krb/pac"
	"github.com/doublehop/doublehop/sqltier/tds"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

// mint makes the SPNEGO token of a service ticket for MSSQLSvc/sql.lab.local:1433
// that the lab KDC would issue in a delegation flow (notes: VERIFIED approach,
// messages.NewTicket-style): given flags, client realm, and a PAC carrying
// S4U_DELEGATION_INFO when deleg is set. The PAC's KDC signature uses a
// made-up krbtgt key: a service verifies only the server signature.
func (r *testRealm) mint(t testing.TB, client, crealm string, flags []int, deleg *pac.S4UDelegationInfo) []byte {
	t.Helper()
	sname, _ := kmsg.ParsePrincipal(spnPort)
	svcKey, kvno, err := r.keytab.GetEncryptionKey(sname, "LAB.LOCAL", 0, 18)
	if err != nil {
		t.Fatal(err)
	}
	et, err := crypto.GetEtype(18)
	if err != nil {
		t.Fatal(err)
	}
	sess, err := types.GenerateEncryptionKey(et)
	if err != nil {
		t.Fatal(err)
	}
	kdcKey, _ := types.GenerateEncryptionKey(et)
	now := time.Now().UTC().Truncate(time.Second)
	cname, _ := kmsg.ParsePrincipal(client)
	etp := messages.EncTicketPart{Flags: kmsg.NewFlags(flags...), Key: sess, CRealm: crealm, CName: cname,
		AuthTime: now, StartTime: now, EndTime: now.Add(10 * time.Hour)}
	pac, err := pac.New(pac.Info{LogonTime: now, EffectiveName: client, LogonDomainName: "LAB", DomainSID: "S-1-5-21-1-2-3",
		UserRID: 1105, PrimaryGroupRID: 513, ClientName: client, DNSDomainName: "LAB.LOCAL", UPN: client + "@lab.local", Delegation: deleg})
	if err != nil {
		t.Fatal(err)
	}
	if err := pac.SignTicket(&etp, svcKey, kdcKey); err != nil {
		t.Fatal(err)
	}
	tkt, err := kmsg.SealTicket(sname, "LAB.LOCAL", etp, svcKey, kvno)
	if err != nil {
		t.Fatal(err)
	}
	auth := kmsg.NewAuthenticator(cname, crealm, time.Now())
	ap, err := kmsg.MarshalAPReq(tkt, sess, auth, kcrypto.UsageAPReqAuthenticator, nil)
	if err != nil {
		t.Fatal(err)
	}
	return gss.MarshalNegTokenInit(gss.WrapKRB5(gss.MechKRB5, []byte{0x01, 0x00}, ap), false)
}

func TestDelegationEvidence(t *testing.T) {
	r := labRealm(t)
	ts := startServer(t, r.keytab, nil)
	const q = "SELECT SUSER_SNAME(), forwarded, delegation, s4u2proxy_target, transited_services FROM lab.connection_info"
	cursor := len(ts.events.Events())
	for _, tc := range []struct {
		name      string
		flags     []int
		deleg     *pac.S4UDelegationInfo
		forwarded bool
		delegWord string
		mechanism string
	}{
		{"constrained (S4U2Proxy)", []int{kmsg.FlagForwardable}, &pac.S4UDelegationInfo{S4U2ProxyTarget: spnPort, TransitedServices: []string{"svc_iispool@LAB.LOCAL"}},
			false, "constrained (S4U2Proxy)", "constrained"},
		{"unconstrained (forwarded TGT)", []int{kmsg.FlagForwardable, kmsg.FlagForwarded}, nil, true, "unconstrained (forwarded TGT)", "unconstrained"},
		{"direct", []int{kmsg.FlagForwardable, kmsg.FlagPreAuthent}, nil, false, "none", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, ts.addr)
			c.prelogin()
			if toks := c.login(tds.Version74, r.mint(t, "bob", "LAB.LOCAL", tc.flags, tc.deleg)); !hasLoginAck(toks) {
				t.Fatalf("login: %v", toks)
			}
			rows := findRows(c.batch(q))
			if len(rows) != 1 {
				t.Fatal(rows)
			}
			row := rows[0]
			if row[0] != `LAB\bob` || row[1] != tc.forwarded || row[2] != tc.delegWord {
				t.Errorf("row %v", row)
			}
			if tc.deleg != nil && (row[3] != spnPort || row[4] != "svc_iispool@LAB.LOCAL") {
				t.Errorf("S4U info %v", row)
			}
			ev := ts.nextEvent(t, &cursor, events.SQLLoginSuccess)
			if ev.ID != events.SQLLoginSuccess || ev.Mechanism != tc.mechanism {
				t.Errorf("event %+v", ev)
			}
			if tc.deleg != nil && (ev.Target != spnPort || len(ev.Transited) != 1 || ev.Transited[0] != "svc_iispool@LAB.LOCAL") {
				t.Errorf("event S4U fields %+v", ev)
			}
		})
	}
	// A principal of another realm, in a ticket of this realm: untrusted domain.
	c := dialRaw(t, ts.addr)
	c.prelogin()
	toks := c.login(tds.Version74, r.mint(t, "bob", "OTHER.LOCAL", []int{kmsg.FlagForwardable}, nil))
	if ms := findMessages(toks); len(ms) != 1 || ms[0].Number != 18452 || hasLoginAck(toks) {
		t.Errorf("foreign realm: %v", toks)
	}
	ev := ts.waitEvent(t, events.SQLUntrustedDomain)
	if ev.Reason != "UNTRUSTED_REALM" || ev.Client != "bob@OTHER.LOCAL" {
		t.Errorf("event %+v", ev)
	}
}
