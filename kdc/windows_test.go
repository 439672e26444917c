package kdc

import (
	"testing"
	"time"

	"github.com/doublehop/doublehop/directory"
	"github.com/doublehop/doublehop/krb/kcrypto"
	"github.com/doublehop/doublehop/krb/kerr"
	"github.com/doublehop/doublehop/krb/kmsg"
	"github.com/doublehop/doublehop/krb/pac"
	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

// Windows' answers that Samba's krb5 suite (written against Windows DCs)
// found the lab giving differently; each is kept here.

func asReq(t *testing.T, tk *testKDC, user string, etypes []int32, pa []types.PAData) ([]byte, int) {
	t.Helper()
	b, nonce, err := kmsg.ASRequest{Realm: "LAB.LOCAL", Client: types.PrincipalName{NameType: kmsg.NTPrincipal, NameString: []string{user}},
		ETypes: etypes, PAData: pa, Till: time.Now().Add(time.Hour)}.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return tk.k.Handle(b, "127.0.0.1:1"), nonce
}

func krbError(t *testing.T, rep []byte) messages.KRBError {
	t.Helper()
	var e messages.KRBError
	if err := e.Unmarshal(rep); err != nil {
		t.Fatalf("not a KRB-ERROR: %v", err)
	}
	return e
}

func paTypes(t *testing.T, edata []byte) map[int32][]byte {
	t.Helper()
	var md types.PADataSequence
	if _, err := asn1.Unmarshal(edata, &md); err != nil {
		t.Fatalf("e-data is not METHOD-DATA: %v", err)
	}
	out := map[int32][]byte{}
	for _, p := range md {
		out[p.PADataType] = p.PADataValue
	}
	return out
}

func TestASErrorsCarryMethodData(t *testing.T) {
	tk := startKDC(t)
	tk.store.Update(func(l *directory.Lab) error { l.Policy.AllowRC4 = true; return nil })
	// AES proposed: PA-ETYPE-INFO2 with the strongest AES key, no PA-ETYPE-INFO.
	rep, _ := asReq(t, tk, "bob", []int32{kcrypto.ETypeAES128SHA1, kcrypto.ETypeAES256SHA1}, nil)
	e := krbError(t, rep)
	pa := paTypes(t, e.EData)
	info, ok := kmsg.ETypeInfo2FromPA(pa[kmsg.PAETypeInfo2])
	if e.ErrorCode != int32(kerr.KDC_ERR_PREAUTH_REQUIRED) || !ok || len(info) != 1 || info[0].EType != kcrypto.ETypeAES256SHA1 {
		t.Fatalf("PREAUTH_REQUIRED for AES: code %d info %+v", e.ErrorCode, info)
	}
	if _, ok := pa[kmsg.PAETypeInfo]; ok {
		t.Fatal("PA-ETYPE-INFO sent to an AES client")
	}
	// RC4 only: the old PA-ETYPE-INFO too.
	rep, _ = asReq(t, tk, "bob", []int32{kcrypto.ETypeRC4HMAC}, nil)
	if pa := paTypes(t, krbError(t, rep).EData); pa[kmsg.PAETypeInfo] == nil || pa[kmsg.PAETypeInfo2] == nil {
		t.Fatalf("PREAUTH_REQUIRED for an RC4-only client: padata %v", pa)
	}
	// Another AS error (no etype in common): METHOD-DATA too, not KERB-ERROR-DATA.
	rep, _ = asReq(t, tk, "bob", []int32{99}, nil)
	e = krbError(t, rep)
	if e.ErrorCode != int32(kerr.KDC_ERR_ETYPE_NOSUPP) {
		t.Fatalf("unknown etype: code %d", e.ErrorCode)
	}
	if pa := paTypes(t, e.EData); pa[kmsg.PAEncTimestamp] == nil {
		t.Fatalf("ETYPE_NOSUPP's METHOD-DATA lacks PA-ENC-TIMESTAMP: %v", pa)
	}
}

func TestASReplyKeyIsThePreauthKey(t *testing.T) {
	tk := startKDC(t)
	v := tk.store.View()
	bob, _ := v.Account("bob")
	key := bob.Keys[kcrypto.ETypeAES256SHA1]
	ts, err := kmsg.NewPAEncTimestamp(key, bob.KVNO, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	// AES128 first in the list, AES256 proven: the reply is sealed with AES256.
	rep, nonce := asReq(t, tk, "bob", []int32{kcrypto.ETypeAES128SHA1, kcrypto.ETypeAES256SHA1}, []types.PAData{ts})
	r, err := kmsg.DecodeKDCRep(rep, key, kcrypto.UsageASRepEncPart, nonce)
	if err != nil {
		t.Fatalf("the AS-REP does not decrypt with the pre-authentication key: %v", err)
	}
	// A TGT's PAC has no ticket signature (MS-PAC 2.8.3: service tickets only).
	kt := v.Krbtgt()
	etp, err := kmsg.OpenTicket(r.Ticket, kt.Keys[kt.ETypes[0]])
	if err != nil {
		t.Fatal(err)
	}
	b, ok := kmsg.FindPAC(etp.AuthorizationData)
	if !ok {
		t.Fatal("no PAC in the TGT")
	}
	p, err := pac.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	for _, buf := range p.Buffers {
		if buf.Type == pac.TypeTicketChecksum {
			t.Fatal("the TGT's PAC carries a ticket signature")
		}
	}
}

// RFC 6806 §11, as Windows answers: every AS-REP's enc-part says enc-pa-rep;
// the proof (a checksum of the request under the reply key) comes when the
// client asks for it with PA-REQ-ENC-PA-REP, as MIT's kinit always does,
// and then the ticket carries the flag too.
func TestEncPARep(t *testing.T) {
	tk := startKDC(t)
	bob, _ := tk.store.View().Account("bob")
	key := bob.Keys[kcrypto.ETypeAES256SHA1]
	for _, asked := range []bool{false, true} {
		ts, _ := kmsg.NewPAEncTimestamp(key, bob.KVNO, time.Now())
		pa := []types.PAData{ts}
		if asked {
			pa = append(pa, types.PAData{PADataType: kmsg.PAReqEncPARep, PADataValue: []byte{}})
		}
		b, nonce, err := kmsg.ASRequest{Realm: "LAB.LOCAL", Client: types.PrincipalName{NameType: kmsg.NTPrincipal, NameString: []string{"bob"}},
			ETypes: []int32{kcrypto.ETypeAES256SHA1}, PAData: pa, Till: time.Now().Add(time.Hour)}.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		r, err := kmsg.DecodeKDCRep(tk.k.Handle(b, "127.0.0.1:1"), key, kcrypto.UsageASRepEncPart, nonce)
		if err != nil {
			t.Fatal(err)
		}
		if !kmsg.HasFlag(r.Part.Flags, kmsg.FlagEncPARep) {
			t.Fatalf("asked=%v: no enc-pa-rep flag", asked)
		}
		kt := tk.store.View().Krbtgt()
		// The ticket itself says enc-pa-rep when the client asked for the
		// encrypted padata (Samba's fast_tests, written against Windows).
		if etp, err := kmsg.OpenTicket(r.Ticket, kt.Keys[kt.ETypes[0]]); err != nil || kmsg.HasFlag(etp.Flags, kmsg.FlagEncPARep) != asked {
			t.Fatalf("asked=%v: the TGT's own flags %v (%v)", asked, kmsg.FlagNames(etp.Flags), err)
		}
		var proof []byte
		for _, p := range r.Part.EncPAData {
			if p.PADataType == kmsg.PAReqEncPARep {
				proof = p.PADataValue
			}
		}
		if !asked {
			if proof != nil {
				t.Fatal("a proof nobody asked for")
			}
			continue
		}
		var ck types.Checksum
		if _, err := asn1.Unmarshal(proof, &ck); err != nil {
			t.Fatalf("PA-REQ-ENC-PA-REP: %v", err)
		}
		if err := kcrypto.VerifyChecksum(key, kcrypto.UsageASReq, b, ck); err != nil {
			t.Fatalf("the proof does not verify over the request: %v", err)
		}
	}
}
