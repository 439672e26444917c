package gss

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/doublehop/doublehop/krb/kcrypto"
	"github.com/doublehop/doublehop/krb/kerr"
	"github.com/doublehop/doublehop/krb/keytab"
	"github.com/doublehop/doublehop/krb/kmsg"
	gokeytab "github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

func testService(t *testing.T) (*gokeytab.Keytab, kmsg.Credential) {
	t.Helper()
	svcKey, _ := kcrypto.NewSessionKey(kcrypto.ETypeAES256SHA1)
	kt, err := keytab.Gokrb5([]keytab.Entry{{Principal: kmsg.Principal{NameType: kmsg.NTSrvInst, Components: []string{"HTTP", "web.lab.local"}, Realm: "LAB.LOCAL"},
		Timestamp: time.Now(), KVNO: 1, Key: svcKey}})
	if err != nil {
		t.Fatal(err)
	}
	sk, _ := kcrypto.NewSessionKey(kcrypto.ETypeAES256SHA1)
	now := time.Now()
	bob := types.PrincipalName{NameType: kmsg.NTPrincipal, NameString: []string{"bob"}}
	etp := messages.EncTicketPart{Flags: kmsg.NewFlags(kmsg.FlagForwardable), Key: sk, CRealm: "LAB.LOCAL", CName: bob,
		AuthTime: kmsg.KerberosTime(now), EndTime: kmsg.KerberosTime(now.Add(time.Hour)), Transited: messages.TransitedEncoding{TRType: 1, Contents: []byte{}}}
	tkt, err := kmsg.SealTicket(kmsg.ParsePrincipalName("HTTP/web.lab.local"), "LAB.LOCAL", etp, svcKey, 1)
	if err != nil {
		t.Fatal(err)
	}
	return kt, kmsg.Credential{Ticket: tkt, Info: kmsg.KrbCredInfo{Key: sk, PName: bob, PRealm: "LAB.LOCAL"}}
}

// The identity comes from the ticket: an authenticator claiming another realm
// (gokrb5's middleware would believe it, notes §2) is refused.
func TestAcceptorRefusesRealmSpoofing(t *testing.T) {
	kt, cred := testService(t)
	a := NewAcceptor(AcceptorConfig{Keytab: kt, Realm: "LAB.LOCAL"})
	spoofed := cred
	spoofed.Info.PRealm = "EVIL.REALM"
	tok, _, err := InitiatorToken(spoofed, InitiatorOptions{SPNEGO: true})
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.Accept(tok)
	var ae *AcceptError
	if !errors.As(err, &ae) || ae.Code != kerr.KRB_AP_ERR_BADMATCH {
		t.Fatalf("spoofed realm: want KRB_AP_ERR_BADMATCH, got %v", err)
	}
	tok, _, _ = InitiatorToken(cred, InitiatorOptions{SPNEGO: true, Flags: FlagMutual})
	ctx, err := a.Accept(tok)
	if err != nil || ctx.ClientPrincipal() != "bob@LAB.LOCAL" {
		t.Fatalf("genuine: %v", err)
	}
	// The error token carries the KRB-ERROR back, as Windows servers do, to
	// a client that asked for mutual authentication.
	_, err = a.Accept(tok)
	if !errors.As(err, &ae) || ae.Code != kerr.KRB_AP_ERR_REPEAT {
		t.Fatalf("replay: %v", err)
	}
	if e, ok := ParseErrorToken(ae.Token); !ok || e.Code != kerr.KRB_AP_ERR_REPEAT {
		t.Fatalf("error token: %v %v", e, ok)
	}
}

// Two authenticators in the same second from the same client are not a
// replay (MIT keys its rcache on the authenticator, not the time).
func TestReplayCacheKeysOnAuthenticator(t *testing.T) {
	kt, cred := testService(t)
	a := NewAcceptor(AcceptorConfig{Keytab: kt, Realm: "LAB.LOCAL"})
	now := time.Now()
	for i := 0; i < 3; i++ {
		tok, _, _ := InitiatorToken(cred, InitiatorOptions{Now: now})
		if _, err := a.Accept(tok); err != nil {
			t.Fatalf("authenticator %d with the same ctime: %v", i, err)
		}
	}
}

// The replay cache ignores the ticket's clear-text sname: rewriting it does
// not make a captured AP-REQ new (the acceptor decrypts with the account key
// whatever the sname says).
func TestReplayWithRewrittenSName(t *testing.T) {
	kt, cred := testService(t)
	a := NewAcceptor(AcceptorConfig{Keytab: kt, Realm: "LAB.LOCAL"})
	tok, _, err := InitiatorToken(cred, InitiatorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Accept(tok); err != nil {
		t.Fatal(err)
	}
	forged := bytes.Replace(tok, []byte("web.lab.local"), []byte("WEB.lab.local"), 1)
	if bytes.Equal(forged, tok) {
		t.Fatal("the sname was not found in the token")
	}
	_, err = a.Accept(forged)
	var ae *AcceptError
	if !errors.As(err, &ae) || ae.Code != kerr.KRB_AP_ERR_REPEAT {
		t.Fatalf("replay with a rewritten sname: want KRB_AP_ERR_REPEAT, got %v", err)
	}
}

// A forwarded TGT must be the authenticated client's own TGT.
func TestDelegatedCredentialMustBeTheClients(t *testing.T) {
	kt, cred := testService(t)
	a := NewAcceptor(AcceptorConfig{Keytab: kt, Realm: "LAB.LOCAL"})
	tgtKey, _ := kcrypto.NewSessionKey(kcrypto.ETypeAES256SHA1)
	other := kmsg.Credential{Ticket: cred.Ticket, Info: kmsg.KrbCredInfo{Key: tgtKey, PRealm: "LAB.LOCAL",
		PName: types.PrincipalName{NameType: kmsg.NTPrincipal, NameString: []string{"alice"}}, SRealm: "LAB.LOCAL",
		SName: types.PrincipalName{NameType: kmsg.NTSrvInst, NameString: []string{"krbtgt", "LAB.LOCAL"}}}}
	kc, err := kmsg.MarshalKRBCred([]kmsg.Credential{other}, cred.Info.Key)
	if err != nil {
		t.Fatal(err)
	}
	tok, _, _ := InitiatorToken(cred, InitiatorOptions{Deleg: kc})
	_, err = a.Accept(tok)
	var ae *AcceptError
	if !errors.As(err, &ae) || ae.Code != kerr.KRB_AP_ERR_BADMATCH || ae.Reason != "KRB_CRED_CLIENT" {
		t.Fatalf("alice's TGT in bob's context: %v", err)
	}
}
