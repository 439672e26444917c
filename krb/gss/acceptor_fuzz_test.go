package gss

import (
	"testing"
	"time"

	"github.com/doublehop/doublehop/krb/kcrypto"
	"github.com/doublehop/doublehop/krb/keytab"
	"github.com/doublehop/doublehop/krb/kmsg"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

// FuzzAccept feeds arbitrary context tokens to the acceptor: SPNEGO, GSS and
// bare AP-REQ shapes, seeded with real tokens. It must never panic.
func FuzzAccept(f *testing.F) {
	svcKey, _ := kcrypto.NewSessionKey(kcrypto.ETypeAES256SHA1)
	kt, err := keytab.Gokrb5([]keytab.Entry{{Principal: kmsg.Principal{NameType: kmsg.NTSrvInst, Components: []string{"HTTP", "web.lab.local"}, Realm: "LAB.LOCAL"},
		Timestamp: time.Now(), KVNO: 1, Key: svcKey}})
	if err != nil {
		f.Fatal(err)
	}
	sk, _ := kcrypto.NewSessionKey(kcrypto.ETypeAES256SHA1)
	now := time.Now()
	etp := messages.EncTicketPart{Flags: kmsg.NewFlags(kmsg.FlagForwardable), Key: sk, CRealm: "LAB.LOCAL",
		CName: types.PrincipalName{NameType: 1, NameString: []string{"bob"}}, AuthTime: kmsg.KerberosTime(now), EndTime: kmsg.KerberosTime(now.Add(time.Hour)),
		Transited: messages.TransitedEncoding{TRType: 1, Contents: []byte{}}}
	tkt, err := kmsg.SealTicket(kmsg.ParsePrincipalName("HTTP/web.lab.local"), "LAB.LOCAL", etp, svcKey, 1)
	if err != nil {
		f.Fatal(err)
	}
	cred := kmsg.Credential{Ticket: tkt, Info: kmsg.KrbCredInfo{Key: sk, PName: etp.CName, PRealm: "LAB.LOCAL"}}
	for _, o := range []InitiatorOptions{{SPNEGO: true}, {Flags: FlagMutual}, {SPNEGO: true, Deleg: []byte{0x76, 0x00}}} {
		tok, _, err := InitiatorToken(cred, o)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(tok)
	}
	f.Add([]byte("NTLMSSP\x00\x01\x00\x00\x00"))
	f.Add([]byte{0xa0, 0x03, 0x30, 0x01, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		a := NewAcceptor(AcceptorConfig{Keytab: kt, Realm: "LAB.LOCAL"})
		a.Accept(b)
		ParseErrorToken(b)
		ParseAPRepToken(b)
		ParseNegTokenResp(b)
		ParseChecksum(b)
		kmsg.ParseKRBCred(b, sk)
	})
}
