package krb

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

func testService(t *testing.T) (*keytab.Keytab, Credential) {
	t.Helper()
	svcKey, _ := NewSessionKey(ETypeAES256SHA1)
	kt, err := GokrbKeytab([]KeytabEntry{{Principal: Principal{NameType: NTSrvInst, Components: []string{"HTTP", "web.lab.local"}, Realm: "LAB.LOCAL"},
		Timestamp: time.Now(), KVNO: 1, Key: svcKey}})
	if err != nil {
		t.Fatal(err)
	}
	sk, _ := NewSessionKey(ETypeAES256SHA1)
	now := time.Now()
	bob := types.PrincipalName{NameType: NTPrincipal, NameString: []string{"bob"}}
	etp := messages.EncTicketPart{Flags: NewFlags(FlagForwardable), Key: sk, CRealm: "LAB.LOCAL", CName: bob,
		AuthTime: KerberosTime(now), EndTime: KerberosTime(now.Add(time.Hour)), Transited: messages.TransitedEncoding{TRType: 1, Contents: []byte{}}}
	tkt, err := SealTicket(ParsePrincipalName("HTTP/web.lab.local"), "LAB.LOCAL", etp, svcKey, 1)
	if err != nil {
		t.Fatal(err)
	}
	return kt, Credential{Ticket: tkt, Info: KrbCredInfo{Key: sk, PName: bob, PRealm: "LAB.LOCAL"}}
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
	if !errors.As(err, &ae) || ae.Code != KRB_AP_ERR_BADMATCH {
		t.Fatalf("spoofed realm: want KRB_AP_ERR_BADMATCH, got %v", err)
	}
	tok, _, _ = InitiatorToken(cred, InitiatorOptions{SPNEGO: true})
	ctx, err := a.Accept(tok)
	if err != nil || ctx.ClientPrincipal() != "bob@LAB.LOCAL" {
		t.Fatalf("genuine: %v", err)
	}
	// The error token carries the KRB-ERROR back, as Windows servers do.
	_, err = a.Accept(tok)
	if !errors.As(err, &ae) || ae.Code != KRB_AP_ERR_REPEAT {
		t.Fatalf("replay: %v", err)
	}
	if e, ok := ParseErrorToken(ae.Token); !ok || e.Code != KRB_AP_ERR_REPEAT {
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
	if !errors.As(err, &ae) || ae.Code != KRB_AP_ERR_REPEAT {
		t.Fatalf("replay with a rewritten sname: want KRB_AP_ERR_REPEAT, got %v", err)
	}
}

// A forwarded TGT must be the authenticated client's own TGT.
func TestDelegatedCredentialMustBeTheClients(t *testing.T) {
	kt, cred := testService(t)
	a := NewAcceptor(AcceptorConfig{Keytab: kt, Realm: "LAB.LOCAL"})
	tgtKey, _ := NewSessionKey(ETypeAES256SHA1)
	other := Credential{Ticket: cred.Ticket, Info: KrbCredInfo{Key: tgtKey, PRealm: "LAB.LOCAL",
		PName: types.PrincipalName{NameType: NTPrincipal, NameString: []string{"alice"}}, SRealm: "LAB.LOCAL",
		SName: types.PrincipalName{NameType: NTSrvInst, NameString: []string{"krbtgt", "LAB.LOCAL"}}}}
	kc, err := MarshalKRBCred([]Credential{other}, cred.Info.Key)
	if err != nil {
		t.Fatal(err)
	}
	tok, _, _ := InitiatorToken(cred, InitiatorOptions{Deleg: kc})
	_, err = a.Accept(tok)
	var ae *AcceptError
	if !errors.As(err, &ae) || ae.Code != KRB_AP_ERR_BADMATCH || ae.Reason != "KRB_CRED_CLIENT" {
		t.Fatalf("alice's TGT in bob's context: %v", err)
	}
}
