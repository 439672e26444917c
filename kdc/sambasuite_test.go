package kdc

import (
	"context"
	"testing"
	"time"

	"github.com/doublehop/doublehop/directory"
	"github.com/doublehop/doublehop/krb/kcrypto"
	"github.com/doublehop/doublehop/krb/kdcclient"
	"github.com/doublehop/doublehop/krb/kerr"
	"github.com/doublehop/doublehop/krb/kmsg"
	"github.com/doublehop/doublehop/krb/pac"
	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

// More of Windows' answers that Samba's krb5 suite found the lab giving
// differently (kdc_tgs_tests, s4u_tests, protected_users_tests), each
// kept here by a test that asks the KDC the way the suite does.

const webSPN = "HTTP/web.lab.local"

// reseal opens a TGT with the krbtgt's key, lets change edit it, and seals
// it again: what a forger with the krbtgt key (or a KDC bug) would hand in.
func reseal(t *testing.T, tk *testKDC, tgt kmsg.Credential, change func(*messages.EncTicketPart)) kmsg.Credential {
	t.Helper()
	kt := tk.store.View().Krbtgt()
	key := kt.Keys[kt.ETypes[0]]
	etp, err := kmsg.OpenTicket(tgt.Ticket, key)
	if err != nil {
		t.Fatal(err)
	}
	change(&etp)
	tgt.Ticket, err = kmsg.SealTicket(tgt.Ticket.SName, tgt.Ticket.Realm, etp, key, kt.KVNO)
	if err != nil {
		t.Fatal(err)
	}
	return tgt
}

func wantCode(t *testing.T, err error, want kerr.Code, why string) {
	t.Helper()
	if c, _ := kerr.CodeOf(err); c != want {
		t.Fatalf("%s: want %s, got %v", why, kerr.Code(want), err)
	}
}

// ticketPAC opens a service ticket with the service's key and returns its
// PAC (nil when it has none).
func ticketPAC(t *testing.T, tk *testKDC, account string, tkt messages.Ticket) *pac.PAC {
	t.Helper()
	e, _ := tk.store.View().Account(account)
	etp, err := kmsg.OpenTicket(tkt, e.Keys[tkt.EncPart.EType])
	if err != nil {
		t.Fatal(err)
	}
	b, ok := kmsg.FindPAC(etp.AuthorizationData)
	if !ok {
		return nil
	}
	p, err := pac.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// KB5008380: a TGT must carry a PAC, and its PAC_REQUESTOR must name the
// ticket's client; otherwise KDC_ERR_TGT_REVOKED (kdc_tgs_tests'
// test_*_no_pac, test_*_requester_sid_mismatch).
func TestTGTWithoutPACIsRevoked(t *testing.T) {
	f := newS4U(t, nil)
	ctx := context.Background()
	if _, err := f.kc.ServiceTicket(ctx, f.bob, webSPN); err != nil {
		t.Fatalf("the real TGT: %v", err)
	}
	noPAC := reseal(t, f.tk, f.bob, func(etp *messages.EncTicketPart) { etp.AuthorizationData = nil })
	_, err := f.kc.ServiceTicket(ctx, noPAC, webSPN)
	wantCode(t, err, kerr.KDC_ERR_TGT_REVOKED, "a TGT without a PAC")

	// bob's PAC in svc_iispool's TGT: the requestor SID is not the client's.
	kt := f.tk.store.View().Krbtgt()
	bobTGT, _ := kmsg.OpenTicket(f.bob.Ticket, kt.Keys[kt.ETypes[0]])
	swapped := reseal(t, f.tk, f.svc, func(etp *messages.EncTicketPart) { etp.AuthorizationData = bobTGT.AuthorizationData })
	_, err = f.kc.ServiceTicket(ctx, swapped, webSPN)
	wantCode(t, err, kerr.KDC_ERR_TGT_REVOKED, "another account's PAC in the TGT")
}

// An INVALID TGT is good for VALIDATE only (RFC 4120 §2.2, §3.3.3): any
// other request is KRB_AP_ERR_TKT_NYV; VALIDATE gives it back valid.
func TestInvalidTGTOnlyValidates(t *testing.T) {
	f := newS4U(t, nil)
	ctx := context.Background()
	invalid := reseal(t, f.tk, f.bob, func(etp *messages.EncTicketPart) {
		etp.Flags = kmsg.CopyFlags(etp.Flags)
		kmsg.SetFlag(&etp.Flags, kmsg.FlagInvalid)
	})
	_, err := f.kc.ServiceTicket(ctx, invalid, webSPN)
	wantCode(t, err, kerr.KRB_AP_ERR_TKT_NYV, "a service ticket with an invalid TGT")

	rep, err := f.kc.TGS(ctx, kmsg.TGSRequest{Client: invalid.Info.PName, ClientRealm: invalid.Info.PRealm, TGT: invalid.Ticket,
		SessionKey: invalid.Info.Key, Service: invalid.Ticket.SName, Options: []int{kmsg.OptValidate}})
	if err != nil {
		t.Fatalf("VALIDATE: %v", err)
	}
	if kmsg.HasFlag(rep.Part.Flags, kmsg.FlagInvalid) {
		t.Fatal("the validated TGT is still invalid")
	}
	if _, err := f.kc.ServiceTicket(ctx, rep.Credential(), webSPN); err != nil {
		t.Fatalf("a service ticket with the validated TGT: %v", err)
	}
}

// PA-PAC-REQUEST (MS-KILE 2.2.3, 3.3.5.7.5): include-pac FALSE gives a TGT
// whose PAC_ATTRIBUTES_INFO records the choice, and service tickets from
// it carry no PAC; TRUE (or nothing) gives PACs with PAC_WAS_REQUESTED.
func TestPACRequestIsKept(t *testing.T) {
	tk := startKDC(t)
	kc := &pacLogin{tk}
	bob, _ := tk.store.View().Account("bob")
	for _, include := range []bool{true, false} {
		v, _ := asn1.Marshal(struct {
			IncludePAC bool `asn1:"explicit,tag:0"`
		}{include})
		tgt := kc.login(t, "bob", bob, types.PAData{PADataType: kmsg.PAPACRequest, PADataValue: v})
		kt := tk.store.View().Krbtgt()
		etp, _ := kmsg.OpenTicket(tgt.Ticket, kt.Keys[kt.ETypes[0]])
		b, ok := kmsg.FindPAC(etp.AuthorizationData)
		if !ok {
			t.Fatalf("include-pac %v: the TGT has no PAC", include)
		}
		p, err := pac.Parse(b)
		if err != nil || !p.Info.HasAttributes || (p.Info.Attributes&pac.WasRequested != 0) != include {
			t.Fatalf("include-pac %v: PAC_ATTRIBUTES_INFO %v %#x (%v)", include, p.Info.HasAttributes, p.Info.Attributes, err)
		}
		rep, err := (&kdcclient.Client{Addr: tk.addr, Realm: "LAB.LOCAL"}).ServiceTicket(context.Background(), tgt, webSPN)
		if err != nil {
			t.Fatal(err)
		}
		if got := ticketPAC(t, tk, "svc_iispool", rep.Ticket) != nil; got != include {
			t.Fatalf("include-pac %v: the service ticket has a PAC: %v", include, got)
		}
	}
}

// NO_AUTH_DATA_REQUIRED on the service (UAC 0x2000000): its tickets carry
// no PAC (MS-KILE 3.3.5.7.5).
func TestNoAuthDataRequired(t *testing.T) {
	f := newS4U(t, nil)
	if err := directory.Modify(f.tk.store, "svc_iispool", func(l *directory.Lab, a *directory.Account) error {
		a.NoAuthDataRequired = true
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	rep, err := f.kc.ServiceTicket(context.Background(), f.bob, webSPN)
	if err != nil {
		t.Fatal(err)
	}
	if ticketPAC(t, f.tk, "svc_iispool", rep.Ticket) != nil {
		t.Fatal("a PAC in a ticket to a NO_AUTH_DATA_REQUIRED service")
	}
}

// S4U2Self names the service itself: another sname is KRB_AP_ERR_BADMATCH
// (s4u_tests' test_s4u2self_wrong_sname).
func TestS4U2SelfForeignSName(t *testing.T) {
	f := newS4U(t, nil)
	pa, err := kmsg.NewPAForUser(types.PrincipalName{NameType: kmsg.NTPrincipal, NameString: []string{"bob"}}, "LAB.LOCAL", f.svc.Info.Key)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.kc.TGS(context.Background(), kmsg.TGSRequest{Client: f.svc.Info.PName, ClientRealm: f.svc.Info.PRealm, TGT: f.svc.Ticket,
		SessionKey: f.svc.Info.Key, Service: kmsg.ParsePrincipalName("MSSQLSvc/sql.lab.local:1433"), Options: []int{kmsg.FlagForwardable},
		PAData: []types.PAData{pa}})
	wantCode(t, err, kerr.KRB_AP_ERR_BADMATCH, "S4U2Self to another service")
}

// Protected Users (MS-KILE 3.3.5.6, protected_users_tests): no RC4 even
// where the domain allows it (the RC4 timestamp is KDC_ERR_ETYPE_NOSUPP
// with no METHOD-DATA), no proxiable TGT, and a 4-hour TGT lifetime that
// renewal cannot stretch.
func TestProtectedUsers(t *testing.T) {
	tk := startKDC(t)
	tk.store.Update(func(l *directory.Lab) error { l.Policy.AllowRC4 = true; return nil })
	if err := directory.Modify(tk.store, "bob", func(l *directory.Lab, a *directory.Account) error {
		a.Groups = append(a.Groups, "Protected Users")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	rc4, err := kcrypto.StringToKey("Bob-Passw0rd!", "", kcrypto.ETypeRC4HMAC)
	if err != nil {
		t.Fatal(err)
	}
	ts, _ := kmsg.NewPAEncTimestamp(rc4, 1, time.Now())
	rep, _ := asReq(t, tk, "bob", []int32{kcrypto.ETypeRC4HMAC}, []types.PAData{ts})
	if e := krbError(t, rep); e.ErrorCode != int32(kerr.KDC_ERR_ETYPE_NOSUPP) || len(e.EData) != 0 {
		t.Fatalf("an RC4 timestamp for a Protected User: code %d, e-data %x", e.ErrorCode, e.EData)
	}

	bob, _ := tk.store.View().Account("bob")
	key := bob.Keys[kcrypto.ETypeAES256SHA1]
	ts, _ = kmsg.NewPAEncTimestamp(key, bob.KVNO, time.Now())
	b, nonce, err := kmsg.ASRequest{Realm: "LAB.LOCAL", Client: types.PrincipalName{NameType: kmsg.NTPrincipal, NameString: []string{"bob"}},
		Options: []int{kmsg.FlagForwardable, kmsg.FlagProxiable, kmsg.FlagRenewable}, PAData: []types.PAData{ts},
		Till: time.Now().Add(10 * time.Hour), RTime: time.Now().Add(7 * 24 * time.Hour)}.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	r, err := kmsg.DecodeKDCRep(tk.k.Handle(b, "127.0.0.1:1"), key, kcrypto.UsageASRepEncPart, nonce)
	if err != nil {
		t.Fatal(err)
	}
	if kmsg.HasFlag(r.Part.Flags, kmsg.FlagProxiable) {
		t.Error("a proxiable TGT for a Protected User")
	}
	life := r.Part.EndTime.Sub(r.Part.AuthTime)
	renew := r.Part.RenewTill.Sub(r.Part.AuthTime)
	if life > 4*time.Hour+time.Minute || renew > 4*time.Hour+time.Minute {
		t.Errorf("Protected User's TGT: lifetime %s, renewable for %s (want at most 4h each)", life, renew)
	}
}

// pacLogin logs on with extra padata (the suite's PA-PAC-REQUEST).
type pacLogin struct{ tk *testKDC }

func (k *pacLogin) login(t *testing.T, user string, e *directory.Entry, extra ...types.PAData) kmsg.Credential {
	t.Helper()
	key := e.Keys[kcrypto.ETypeAES256SHA1]
	ts, err := kmsg.NewPAEncTimestamp(key, e.KVNO, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	b, nonce, err := kmsg.ASRequest{Realm: "LAB.LOCAL", Client: types.PrincipalName{NameType: kmsg.NTPrincipal, NameString: []string{user}},
		Options: []int{kmsg.FlagForwardable}, PAData: append([]types.PAData{ts}, extra...), Till: time.Now().Add(10 * time.Hour)}.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	r, err := kmsg.DecodeKDCRep(k.tk.k.Handle(b, "127.0.0.1:1"), key, kcrypto.UsageASRepEncPart, nonce)
	if err != nil {
		t.Fatalf("login %s: %v", user, err)
	}
	return r.Credential()
}

// User-to-user (RFC 4120 §3.3.3): the ticket is sealed in the session key
// of the additional TGT, whose client the sname must name; a service
// ticket in its place does not open (KRB_AP_ERR_MODIFIED), another name is
// KRB_AP_ERR_BADMATCH, and the additional TGT is checked as any TGT.
func TestUserToUser(t *testing.T) {
	f := newS4U(t, nil)
	ctx := context.Background()
	u2u := func(add kmsg.Credential, sname string) (*kmsg.KDCReply, error) {
		return f.kc.TGS(ctx, kmsg.TGSRequest{Client: f.svc.Info.PName, ClientRealm: f.svc.Info.PRealm, TGT: f.svc.Ticket,
			SessionKey: f.svc.Info.Key, Service: kmsg.ParsePrincipalName(sname), Options: []int{kmsg.OptEncTktInSKey},
			AdditionalTickets: []messages.Ticket{add.Ticket}})
	}
	rep, err := u2u(f.bob, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if rep.Ticket.EncPart.KVNO != 0 {
		t.Errorf("a user-to-user ticket with kvno %d", rep.Ticket.EncPart.KVNO)
	}
	etp, err := kmsg.OpenTicket(rep.Ticket, f.bob.Info.Key)
	if err != nil {
		t.Fatalf("the ticket does not open with bob's TGT session key: %v", err)
	}
	if etp.CName.NameString[0] != "svc_iispool" {
		t.Errorf("the ticket's client is %v", etp.CName)
	}
	if _, ok := kmsg.FindPAC(etp.AuthorizationData); !ok {
		t.Error("no PAC in the user-to-user ticket")
	}
	_, err = u2u(f.bob, "administrator")
	wantCode(t, err, kerr.KRB_AP_ERR_BADMATCH, "a user-to-user ticket to another name")
	st, err := f.kc.ServiceTicket(ctx, f.bob, webSPN)
	if err != nil {
		t.Fatal(err)
	}
	_, err = u2u(st.Credential(), "bob")
	wantCode(t, err, kerr.KRB_AP_ERR_MODIFIED, "a service ticket as the additional ticket")
	_, err = u2u(reseal(t, f.tk, f.bob, func(etp *messages.EncTicketPart) { etp.AuthorizationData = nil }), "bob")
	wantCode(t, err, kerr.KDC_ERR_TGT_REVOKED, "an additional TGT without a PAC")
}

// What the TGS takes and refuses as Windows does: a service ticket for
// renewal is KDC_ERR_POLICY, a TGT sealed in the krbtgt's RC4 key is
// KRB_ERR_GENERIC, and the logon information of a TGT's PAC is copied as
// it is (only PAC_REQUESTOR is held to the client).
func TestTGSTicketChecks(t *testing.T) {
	f := newS4U(t, func(l *directory.Lab, _ *directory.Account) { l.Policy.AllowRC4 = true })
	ctx := context.Background()
	st, err := f.kc.ServiceTicket(ctx, f.bob, webSPN)
	if err != nil {
		t.Fatal(err)
	}
	svcTkt := st.Credential()
	_, err = f.kc.TGS(ctx, kmsg.TGSRequest{Client: svcTkt.Info.PName, ClientRealm: svcTkt.Info.PRealm, TGT: svcTkt.Ticket,
		SessionKey: svcTkt.Info.Key, Service: svcTkt.Ticket.SName, Options: []int{kmsg.OptRenew}})
	wantCode(t, err, kerr.KDC_ERR_POLICY, "renewing a service ticket")

	kt := f.tk.store.View().Krbtgt()
	rc4, ok := kt.Key(kcrypto.ETypeRC4HMAC)
	if !ok {
		t.Fatal("the krbtgt has no RC4 key with allow_rc4")
	}
	etp, _ := kmsg.OpenTicket(f.bob.Ticket, kt.Keys[kt.ETypes[0]])
	rc4TGT := f.bob
	rc4TGT.Ticket, err = kmsg.SealTicket(f.bob.Ticket.SName, f.bob.Ticket.Realm, etp, rc4, kt.KVNO)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.kc.ServiceTicket(ctx, rc4TGT, webSPN)
	wantCode(t, err, kerr.KRB_ERR_GENERIC, "a TGT sealed in RC4")

	key := kt.Keys[kt.ETypes[0]]
	changed := reseal(t, f.tk, f.bob, func(etp *messages.EncTicketPart) {
		b, _ := kmsg.FindPAC(etp.AuthorizationData)
		p, err := pac.Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		info := p.Info
		info.UserRID = 500
		nb, err := pac.Encode(info, key, key)
		if err == nil {
			etp.AuthorizationData, err = kmsg.SetPAC(etp.AuthorizationData, nb)
		}
		if err != nil {
			t.Fatal(err)
		}
	})
	rep, err := f.kc.ServiceTicket(ctx, changed, webSPN)
	if err != nil {
		t.Fatalf("a TGT whose logon information names RID 500: %v", err)
	}
	if p := ticketPAC(t, f.tk, "svc_iispool", rep.Ticket); p == nil || p.Info.UserRID != 500 {
		t.Fatalf("the service ticket's PAC: %+v", p)
	}
}

// An enterprise name (RFC 6806 §5) comes back as asked unless the client
// asks to canonicalize, and the PAC's client name is the ticket's; a user
// with a userPrincipalName is salted with its prefix.
func TestEnterpriseNameEcho(t *testing.T) {
	tk := startKDC(t)
	if err := directory.Modify(tk.store, "bob", func(l *directory.Lab, a *directory.Account) error {
		a.UPN = "robert@lab.local"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	bob, _ := tk.store.View().Account("bob")
	if s := bob.Salt("LAB.LOCAL"); s != "LAB.LOCALrobert" {
		t.Fatalf("salt %q, want the UPN's prefix", s)
	}
	key := bob.Keys[kcrypto.ETypeAES256SHA1]
	for _, canon := range []bool{false, true} {
		ts, _ := kmsg.NewPAEncTimestamp(key, bob.KVNO, time.Now())
		opts := []int{kmsg.FlagForwardable}
		if canon {
			opts = append(opts, kmsg.OptCanonicalize)
		}
		b, nonce, err := kmsg.ASRequest{Realm: "LAB.LOCAL", Client: types.PrincipalName{NameType: kmsg.NTEnterprise, NameString: []string{"robert@lab.local"}},
			Options: opts, PAData: []types.PAData{ts}, Till: time.Now().Add(time.Hour)}.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		r, err := kmsg.DecodeKDCRep(tk.k.Handle(b, "127.0.0.1:1"), key, kcrypto.UsageASRepEncPart, nonce)
		if err != nil {
			t.Fatalf("canonicalize %v: %v", canon, err)
		}
		want := types.PrincipalName{NameType: kmsg.NTEnterprise, NameString: []string{"robert@lab.local"}}
		if canon {
			want = types.PrincipalName{NameType: kmsg.NTPrincipal, NameString: []string{"bob"}}
		}
		if r.CName.NameType != want.NameType || r.CName.NameString[0] != want.NameString[0] {
			t.Fatalf("canonicalize %v: cname %v, want %v", canon, r.CName, want)
		}
		kt := tk.store.View().Krbtgt()
		etp, _ := kmsg.OpenTicket(r.Ticket, kt.Keys[kt.ETypes[0]])
		pb, _ := kmsg.FindPAC(etp.AuthorizationData)
		p, err := pac.Parse(pb)
		if err != nil || p.Info.ClientName != want.NameString[0] {
			t.Fatalf("canonicalize %v: PAC client name %q (%v)", canon, p.Info.ClientName, err)
		}
	}
}
