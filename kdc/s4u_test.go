package kdc

import (
	"context"
	"testing"
	"time"

	"github.com/doublehop/doublehop/directory"
	"github.com/doublehop/doublehop/events"
	"github.com/doublehop/doublehop/krb/kcrypto"
	"github.com/doublehop/doublehop/krb/kdcclient"
	"github.com/doublehop/doublehop/krb/kerr"
	"github.com/doublehop/doublehop/krb/kmsg"
	"github.com/doublehop/doublehop/krb/pac"
	"github.com/jcmturner/gokrb5/v8/types"
)

// The MS-SFU 3.2.5.2 decision table, checked directly.
func TestCheckDelegationTable(t *testing.T) {
	const target = "MSSQLSvc/sql.lab.local:1433"
	mk := func(name string, d directory.Delegation, rbcd []string, sensitive bool) *directory.Entry {
		return &directory.Entry{Account: &directory.Account{Name: name, Delegation: d, AllowedToActOnBehalfOf: rbcd, Sensitive: sensitive}}
	}
	kcd := directory.Delegation{Mode: directory.DelegConstrained, AllowedTo: []string{target}}
	kcdOther := directory.Delegation{Mode: directory.DelegConstrained, AllowedTo: []string{"MSSQLSvc/other.lab.local:1433"}}
	none := directory.Delegation{Mode: directory.DelegNone}
	bob, sensitive := mk("bob", none, nil, false), mk("carol", none, nil, true)
	cases := []struct {
		name        string
		svc1, svc2  *directory.Entry
		forwardable bool
		s4u2self    bool // the evidence is an S4U2Self ticket (S-1-18-2 in its PAC)
		rbcdBit     bool
		user        *directory.Entry
		mech        string
		status      uint32
	}{
		{"KCD, target listed, forwardable evidence", mk("web", kcd, nil, false), mk("sql", none, nil, false), true, false, true, bob, "constrained", 0},
		{"KCD, target listed, evidence not forwardable, no RBCD bit", mk("web", kcd, nil, false), mk("sql", none, nil, false), false, false, false, bob, "", kerr.StatusAccountRestriction},
		{"KCD, target listed, evidence not forwardable, RBCD bit, no RBCD", mk("web", kcd, nil, false), mk("sql", none, nil, false), false, true, true, bob, "", kerr.StatusAccountRestriction},
		{"KCD, other target, no RBCD bit", mk("web", kcdOther, nil, false), mk("sql", none, nil, false), true, false, false, bob, "", kerr.StatusNoMatch},
		{"no delegation at all, no RBCD bit", mk("web", none, nil, false), mk("sql", none, nil, false), true, false, false, bob, "", kerr.StatusNotSupported},
		{"no delegation, RBCD bit, resource does not allow", mk("web", none, nil, false), mk("sql", none, nil, false), true, false, true, bob, "", kerr.StatusNotFound},
		{"RBCD allows web, forwardable evidence", mk("web", none, nil, false), mk("sql", none, []string{"web"}, false), true, false, true, bob, "rbcd", 0},
		{"RBCD allows web, non-forwardable S4U2Self evidence (no T2A4D)", mk("web", none, nil, false), mk("sql", none, []string{"web"}, false), false, true, true, bob, "rbcd", 0},
		{"RBCD allows web, the user's own ticket made non-forwardable", mk("web", none, nil, false), mk("sql", none, []string{"web"}, false), false, false, true, bob, "", kerr.StatusAccountRestriction},
		{"RBCD allows web, sensitive user, non-forwardable evidence", mk("web", none, nil, false), mk("sql", none, []string{"web"}, false), false, true, true, sensitive, "", kerr.StatusAccountRestriction},
		{"RBCD allows web but client sent no RBCD bit", mk("web", none, nil, false), mk("sql", none, []string{"web"}, false), true, false, false, bob, "", kerr.StatusNotSupported},
		{"KCD to other target, RBCD allows web", mk("web", kcdOther, nil, false), mk("sql", none, []string{"web"}, false), false, true, true, bob, "rbcd", 0},
	}
	for _, c := range cases {
		refusal := classicDelegation(c.svc1, target)
		d := delegationDecision{err: refusal}
		if refusal == nil || c.rbcdBit {
			d = checkDelegation(refusal, c.rbcdBit, c.svc1, c.svc2, c.forwardable, c.s4u2self, c.user)
		}
		switch {
		case c.status == 0 && d.err != nil:
			t.Errorf("%s: refused: %v", c.name, d.err)
		case c.status == 0 && d.mechanism != c.mech:
			t.Errorf("%s: mechanism %q, want %q", c.name, d.mechanism, c.mech)
		case c.status != 0 && (d.err == nil || d.err.Code != kerr.KDC_ERR_BADOPTION || d.err.Status != c.status):
			t.Errorf("%s: got %+v, want KDC_ERR_BADOPTION with status 0x%08X", c.name, d.err, c.status)
		}
	}
}

// s4uFixture logs svc_iispool and bob on to a test KDC.
type s4uFixture struct {
	tk       *testKDC
	kc       *kdcclient.Client
	svc, bob kmsg.Credential
}

func newS4U(t *testing.T, patch func(*directory.Lab, *directory.Account)) *s4uFixture {
	tk := startKDC(t)
	if patch != nil {
		if err := directory.Modify(tk.store, "svc_iispool", func(l *directory.Lab, a *directory.Account) error { patch(l, a); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	f := &s4uFixture{tk: tk, kc: &kdcclient.Client{Addr: tk.addr, Realm: "LAB.LOCAL"}}
	login := func(name string) kmsg.Credential {
		e, _ := tk.store.View().Account(name)
		rep, err := f.kc.LoginWithKey(context.Background(), name, e.Keys[kcrypto.ETypeAES256SHA1], e.KVNO, []int{kmsg.FlagForwardable})
		if err != nil {
			t.Fatalf("login %s: %v", name, err)
		}
		return rep.Credential()
	}
	f.svc, f.bob = login("svc_iispool"), login("bob")
	return f
}

func wantBadOption(t *testing.T, err error, why string) {
	t.Helper()
	if c, _ := kerr.CodeOf(err); c != kerr.KDC_ERR_BADOPTION {
		t.Fatalf("want KDC_ERR_BADOPTION (%s), got %v", why, err)
	}
}

// Kerberos-only KCD (the default lab): Bob's forwardable HTTP ticket is the
// evidence; the KDC issues MSSQLSvc for bob with S4U_DELEGATION_INFO.
func TestS4U2ProxyKerberosOnly(t *testing.T) {
	f := newS4U(t, nil)
	ctx := context.Background()
	http, err := f.kc.ServiceTicket(ctx, f.bob, "HTTP/web.lab.local", kmsg.FlagForwardable)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := f.kc.S4U2Proxy(ctx, f.svc, http.Credential(), "MSSQLSvc/sql.lab.local:1433")
	if err != nil {
		t.Fatalf("S4U2Proxy: %v", err)
	}
	if c := rep.Credential(); c.Client() != "bob@LAB.LOCAL" || c.Server() != "MSSQLSvc/sql.lab.local:1433@LAB.LOCAL" {
		t.Fatalf("ticket %s", c)
	}
	// The SQL service sees the transited service in the PAC.
	sql, _ := f.tk.store.View().Account("svc_mssqlserver")
	etp, err := kmsg.OpenTicket(rep.Ticket, sql.Keys[kcrypto.ETypeAES256SHA1])
	if err != nil {
		t.Fatal(err)
	}
	p, _ := kmsg.FindPAC(etp.AuthorizationData)
	pac, err := pac.Parse(p)
	if err != nil || pac.Info.Delegation == nil || pac.Info.Delegation.S4U2ProxyTarget != "MSSQLSvc/sql.lab.local:1433" ||
		len(pac.Info.Delegation.TransitedServices) != 1 || pac.Info.Delegation.TransitedServices[0] != "HTTP/web.lab.local@LAB.LOCAL" {
		t.Fatalf("S4U_DELEGATION_INFO: %v %+v", err, pac)
	}
	// Wrong target (no port) is not in msDS-AllowedToDelegateTo: BADOPTION + 4769 failure.
	// The client sets the RBCD PA-PAC-OPTIONS bit as Windows does, so the KDC
	// also tried RBCD and answers STATUS_NOT_FOUND (MS-SFU 3.2.5.2.3).
	_, err = f.kc.S4U2Proxy(ctx, f.svc, http.Credential(), "MSSQLSvc/sql.lab.local")
	wantBadOption(t, err, "target not allowed")
	if ke := err.(*kerr.Error); ke.Status != kerr.StatusNotFound {
		t.Fatalf("status %s", ke.StatusString())
	}
	var seen bool
	for _, e := range f.tk.ev.Events() {
		seen = seen || (e.ID == events.ServiceTicket && e.Outcome == events.Failure && e.CodeName == "KDC_ERR_BADOPTION" && e.Reason == "NOT_ALLOWED_TO_DELEGATE")
	}
	if !seen {
		t.Fatal("no 4769 failure with KDC_ERR_BADOPTION")
	}
}

// Protocol transition: S4U2Self is forwardable only with
// TrustedToAuthForDelegation; without it S4U2Proxy (classic) is refused.
func TestS4U2SelfForwardableRule(t *testing.T) {
	ctx := context.Background()
	f := newS4U(t, nil) // Kerberos-only KCD
	self, err := f.kc.S4U2Self(ctx, f.svc, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if kmsg.HasFlag(self.Part.Flags, kmsg.FlagForwardable) {
		t.Fatal("S4U2Self ticket forwardable without protocol transition")
	}
	_, err = f.kc.S4U2Proxy(ctx, f.svc, self.Credential(), "MSSQLSvc/sql.lab.local:1433")
	wantBadOption(t, err, "non-forwardable evidence")

	f = newS4U(t, func(l *directory.Lab, a *directory.Account) { a.Delegation.ProtocolTransition = true })
	self, err = f.kc.S4U2Self(ctx, f.svc, "bob")
	if err != nil || !kmsg.HasFlag(self.Part.Flags, kmsg.FlagForwardable) {
		t.Fatalf("S4U2Self with protocol transition: %v forwardable=%v", err, err == nil && kmsg.HasFlag(self.Part.Flags, kmsg.FlagForwardable))
	}
	if _, err := f.kc.S4U2Proxy(ctx, f.svc, self.Credential(), "MSSQLSvc/sql.lab.local:1433"); err != nil {
		t.Fatalf("S4U2Proxy after protocol transition: %v", err)
	}
	// A sensitive user's S4U2Self ticket is never forwardable.
	directory.Modify(f.tk.store, "bob", func(l *directory.Lab, a *directory.Account) error { a.Sensitive = true; return nil })
	self, err = f.kc.S4U2Self(ctx, f.svc, "bob")
	if err != nil || kmsg.HasFlag(self.Part.Flags, kmsg.FlagForwardable) {
		t.Fatalf("sensitive user: %v", err)
	}
}

// RBCD: the SQL account allows svc_iispool; even a non-forwardable S4U2Self
// ticket works, except for a sensitive user.
func TestRBCD(t *testing.T) {
	ctx := context.Background()
	f := newS4U(t, func(l *directory.Lab, a *directory.Account) {
		a.Delegation = directory.Delegation{Mode: directory.DelegNone}
	})
	self, err := f.kc.S4U2Self(ctx, f.svc, "bob")
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.kc.S4U2Proxy(ctx, f.svc, self.Credential(), "MSSQLSvc/sql.lab.local:1433")
	wantBadOption(t, err, "no RBCD yet")
	directory.Modify(f.tk.store, "svc_mssqlserver", func(l *directory.Lab, a *directory.Account) error {
		a.AllowedToActOnBehalfOf = []string{"svc_iispool"}
		return nil
	})
	rep, err := f.kc.S4U2Proxy(ctx, f.svc, self.Credential(), "MSSQLSvc/sql.lab.local:1433")
	if err != nil {
		t.Fatalf("RBCD: %v", err)
	}
	if rep.Credential().Client() != "bob@LAB.LOCAL" {
		t.Fatal(rep.Credential())
	}
	var mech string
	for _, e := range f.tk.ev.Events() {
		if e.ID == events.ServiceTicket && e.Outcome == events.Success && e.Target == "MSSQLSvc/sql.lab.local:1433" {
			mech = e.Mechanism
		}
	}
	if mech != "rbcd" {
		t.Fatalf("4769 mechanism %q", mech)
	}
	directory.Modify(f.tk.store, "bob", func(l *directory.Lab, a *directory.Account) error {
		a.Groups = append(a.Groups, "Protected Users")
		return nil
	})
	self, _ = f.kc.S4U2Self(ctx, f.svc, "bob")
	_, err = f.kc.S4U2Proxy(ctx, f.svc, self.Credential(), "MSSQLSvc/sql.lab.local:1433")
	wantBadOption(t, err, "Protected Users")
	if err.(*kerr.Error).Status != kerr.StatusAccountRestriction {
		t.Fatalf("status %s", err.(*kerr.Error).StatusString())
	}
}

// Bronze Bit (CVE-2020-17049): the service decrypts its own non-forwardable
// S4U2Self ticket, sets the forwardable bit, re-encrypts it with its key and
// presents it as evidence. The PAC ticket signature exposes it.
func TestBronzeBitRefused(t *testing.T) {
	ctx := context.Background()
	f := newS4U(t, nil)
	self, err := f.kc.S4U2Self(ctx, f.svc, "bob")
	if err != nil {
		t.Fatal(err)
	}
	e, _ := f.tk.store.View().Account("svc_iispool")
	key := e.Keys[self.Ticket.EncPart.EType]
	etp, err := kmsg.OpenTicket(self.Ticket, key)
	if err != nil {
		t.Fatal(err)
	}
	kmsg.SetFlag(&etp.Flags, kmsg.FlagForwardable)
	forged, err := kmsg.SealTicket(self.Ticket.SName, self.Ticket.Realm, etp, key, self.Ticket.EncPart.KVNO)
	if err != nil {
		t.Fatal(err)
	}
	cred := self.Credential()
	cred.Ticket = forged
	_, err = f.kc.S4U2Proxy(ctx, f.svc, cred, "MSSQLSvc/sql.lab.local:1433")
	if c, _ := kerr.CodeOf(err); c != kerr.KRB_AP_ERR_MODIFIED {
		t.Fatalf("Bronze Bit: want KRB_AP_ERR_MODIFIED, got %v", err)
	}
	if ke := err.(*kerr.Error); ke.Text == "" {
		t.Fatal("no e-text")
	}
}

// An expired TGT with the RENEW option is not a pass for S4U (review finding):
// only a plain renewal may present an expired TGT.
func TestExpiredTGTWithRenewIsNotS4U(t *testing.T) {
	f := newS4U(t, nil)
	ctx := context.Background()
	f.tk.offset.Store(int64(11 * time.Hour)) // the KDC is now past the TGT's end time
	pa, err := kmsg.NewPAForUser(types.PrincipalName{NameType: 1, NameString: []string{"bob"}}, "LAB.LOCAL", f.svc.Info.Key)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.kc.TGS(ctx, kmsg.TGSRequest{Client: f.svc.Info.PName, ClientRealm: "LAB.LOCAL", TGT: f.svc.Ticket, SessionKey: f.svc.Info.Key,
		Service: f.svc.Info.PName, Options: []int{kmsg.OptRenew}, PAData: []types.PAData{pa}, Now: time.Now().Add(11 * time.Hour)})
	if c, _ := kerr.CodeOf(err); c != kerr.KRB_AP_ERR_TKT_EXPIRED {
		t.Fatalf("want KRB_AP_ERR_TKT_EXPIRED, got %v", err)
	}
}

// till in the past is KDC_ERR_NEVER_VALID; till = 1970 means "the maximum" (RFC 4120 §5.4.1).
func TestTill(t *testing.T) {
	f := newS4U(t, nil)
	ctx := context.Background()
	req := kmsg.TGSRequest{Client: f.bob.Info.PName, ClientRealm: "LAB.LOCAL", TGT: f.bob.Ticket, SessionKey: f.bob.Info.Key,
		Service: kmsg.ParsePrincipalName("HTTP/web.lab.local"), Till: time.Now().Add(-time.Hour)}
	if _, err := f.kc.TGS(ctx, req); !isCodeErr(err, kerr.KDC_ERR_NEVER_VALID) {
		t.Fatalf("till in the past: %v", err)
	}
	req.Till = time.Unix(0, 0)
	rep, err := f.kc.TGS(ctx, req)
	if err != nil || rep.Part.EndTime.Before(time.Now().Add(time.Hour)) {
		t.Fatalf("till 1970 should mean the maximum: %v %v", err, rep)
	}
}

func isCodeErr(err error, c kerr.Code) bool {
	got, ok := kerr.CodeOf(err)
	return ok && got == c
}
