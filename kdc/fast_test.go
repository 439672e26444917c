package kdc

import (
	"testing"
	"time"

	"github.com/doublehop/doublehop/krb/der"
	"github.com/doublehop/doublehop/krb/kcrypto"
	"github.com/doublehop/doublehop/krb/kerr"
	"github.com/doublehop/doublehop/krb/kmsg"
	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

// FAST (RFC 6113) from the client's side, message by message: svc_iispool's
// TGT armors bob's AS exchange; the KDC answers PREAUTH_REQUIRED inside the
// tunnel, takes the encrypted challenge, proves itself with its own, and
// seals the reply in the strengthened key with the ticket bound by
// KrbFastFinished. MIT's kinit -T does the same against the lab
// (lab/mit_test.go).

type fastClient struct {
	t        *testing.T
	tk       *testKDC
	armor    []byte
	armorKey types.EncryptionKey
}

func newFastClient(t *testing.T, f *s4uFixture) *fastClient {
	sub, err := kcrypto.NewSessionKey(kcrypto.ETypeAES256SHA1)
	if err != nil {
		t.Fatal(err)
	}
	auth := kmsg.NewAuthenticator(f.svc.Info.PName, f.svc.Info.PRealm, time.Now())
	auth.SubKey = sub
	ap, err := kmsg.MarshalAPReq(f.svc.Ticket, f.svc.Info.Key, auth, kcrypto.UsageAPReqAuthenticator, nil)
	if err != nil {
		t.Fatal(err)
	}
	ak, err := kcrypto.CF2(sub, f.svc.Info.Key, "subkeyarmor", "ticketarmor")
	if err != nil {
		t.Fatal(err)
	}
	return &fastClient{t: t, tk: f.tk, armor: ap, armorKey: ak}
}

// as sends bob's AS-REQ inside FAST with inner padata and returns the raw
// reply and the nonce.
func (c *fastClient) as(options asn1.BitString, padata ...types.PAData) ([]byte, int) {
	c.t.Helper()
	b, _, err := kmsg.ASRequest{Realm: "LAB.LOCAL", Client: types.PrincipalName{NameType: kmsg.NTPrincipal, NameString: []string{"bob"}},
		Options: []int{kmsg.FlagForwardable}, Till: time.Now().Add(time.Hour)}.Marshal()
	if err != nil {
		c.t.Fatal(err)
	}
	req, err := kmsg.ParseKDCReq(b)
	if err != nil {
		c.t.Fatal(err)
	}
	fx, err := kmsg.MarshalFastArmoredReq(c.armor, c.armorKey, req.RawBody, options, padata, req.RawBody)
	if err != nil {
		c.t.Fatal(err)
	}
	pa, _ := asn1.Marshal(types.PADataSequence{{PADataType: kmsg.PAFXFast, PADataValue: fx}})
	outer := der.App(10, der.Seq(der.Ctx(1, der.Int(5)), der.Ctx(2, der.Int(10)), der.Ctx(3, pa), der.Ctx(4, req.RawBody)))
	return c.tk.k.Handle(outer, "127.0.0.1:1"), req.Body.Nonce
}

// response opens the PA-FX-FAST of a padata list.
func (c *fastClient) response(padata types.PADataSequence, nonce int) *kmsg.KrbFastResponse {
	c.t.Helper()
	for _, p := range padata {
		if p.PADataType == kmsg.PAFXFast {
			r, err := kmsg.OpenFastReply(p.PADataValue, c.armorKey)
			if err != nil {
				c.t.Fatalf("the FAST response does not open with the armor key: %v", err)
			}
			if r.Nonce != nonce {
				c.t.Fatalf("FAST response nonce %d, request %d", r.Nonce, nonce)
			}
			return r
		}
	}
	c.t.Fatalf("no PA-FX-FAST in %v", padata)
	return nil
}

func find(padata types.PADataSequence, typ int32) (types.PAData, bool) {
	for _, p := range padata {
		if p.PADataType == typ {
			return p, true
		}
	}
	return types.PAData{}, false
}

func TestFASTArmoredAS(t *testing.T) {
	f := newS4U(t, nil)
	c := newFastClient(t, f)
	bob, _ := f.tk.store.View().Account("bob")
	key := bob.Keys[kcrypto.ETypeAES256SHA1]

	// No pre-authentication: the error is inside the tunnel.
	rep, nonce := c.as(kmsg.NewFlags())
	e := krbError(t, rep)
	if e.ErrorCode != int32(kerr.KDC_ERR_PREAUTH_REQUIRED) {
		t.Fatalf("outer error %d, want PREAUTH_REQUIRED", e.ErrorCode)
	}
	var outer types.PADataSequence
	if _, err := asn1.Unmarshal(e.EData, &outer); err != nil || len(outer) != 1 {
		t.Fatalf("outer e-data: %v %v", outer, err)
	}
	r := c.response(outer, nonce)
	fxErr, ok := find(r.PAData, kmsg.PAFXError)
	if !ok {
		t.Fatal("no PA-FX-ERROR in the FAST response")
	}
	var inner messages.KRBError
	if err := inner.Unmarshal(fxErr.PADataValue); err != nil || inner.ErrorCode != int32(kerr.KDC_ERR_PREAUTH_REQUIRED) {
		t.Fatalf("PA-FX-ERROR: %v %v", inner.ErrorCode, err)
	}
	for _, typ := range []int32{kmsg.PAFXCookie, kmsg.PAETypeInfo2, kmsg.PAEncryptedChallenge} {
		if _, ok := find(r.PAData, typ); !ok {
			t.Errorf("FAST error padata lacks type %d: %v", typ, r.PAData)
		}
	}
	if _, ok := find(r.PAData, kmsg.PAEncTimestamp); ok {
		t.Error("PA-ENC-TIMESTAMP offered inside FAST (the encrypted challenge replaces it)")
	}

	// The encrypted challenge, with hide-client-names.
	ck, _ := kcrypto.CF2(c.armorKey, key, "clientchallengearmor", "challengelongterm")
	ts, _ := kmsg.MarshalPAEncTSEnc(time.Now())
	ed, _ := kcrypto.Encrypt(ts, ck, kcrypto.UsageEncChallengeClient, 0)
	rep, nonce = c.as(kmsg.NewFlags(kmsg.FastHideClientNames), types.PAData{PADataType: kmsg.PAEncryptedChallenge, PADataValue: kmsg.MarshalEncryptedData(ed)})
	var asrep messages.ASRep
	if err := asrep.Unmarshal(rep); err != nil {
		t.Fatalf("not an AS-REP: %v (%x)", err, rep[:min(len(rep), 8)])
	}
	if asrep.CName.NameType != kmsg.NTWellKnown || asrep.CName.NameString[1] != "ANONYMOUS" {
		t.Errorf("hide-client-names: the outer cname is %v", asrep.CName)
	}
	r = c.response(asrep.PAData, nonce)
	if r.StrengthenKey == nil || r.Finished == nil {
		t.Fatalf("no strengthen key or KrbFastFinished: %+v", r)
	}
	if r.Finished.CName.NameString[0] != "bob" {
		t.Errorf("KrbFastFinished names %v", r.Finished.CName)
	}
	tb, _ := kmsg.MarshalTicket(asrep.Ticket)
	if err := kcrypto.VerifyChecksum(c.armorKey, kcrypto.UsageFastFinished, tb, r.Finished.TicketChecksum); err != nil {
		t.Errorf("the ticket checksum: %v", err)
	}
	kdcChallenge, ok := find(r.PAData, kmsg.PAEncryptedChallenge)
	if !ok {
		t.Fatal("the KDC did not prove itself with PA-ENCRYPTED-CHALLENGE")
	}
	kk, _ := kcrypto.CF2(c.armorKey, key, "kdcchallengearmor", "challengelongterm")
	var ked types.EncryptedData
	if _, err := asn1.Unmarshal(kdcChallenge.PADataValue, &ked); err != nil {
		t.Fatal(err)
	}
	if _, err := kcrypto.Decrypt(ked, kk, kcrypto.UsageEncChallengeKDC); err != nil {
		t.Errorf("the KDC's challenge: %v", err)
	}
	reply, _ := kcrypto.CF2(*r.StrengthenKey, key, "strengthenkey", "replykey")
	if _, err := kmsg.DecodeKDCRep(rep, reply, kcrypto.UsageASRepEncPart, nonce); err != nil {
		t.Fatalf("the reply does not open with the strengthened key: %v", err)
	}

	// A wrong password inside the tunnel: PREAUTH_FAILED, inside it too.
	bad, _ := kcrypto.StringToKey("not-bobs", "LAB.LOCALbob", kcrypto.ETypeAES256SHA1)
	ck, _ = kcrypto.CF2(c.armorKey, bad, "clientchallengearmor", "challengelongterm")
	ed, _ = kcrypto.Encrypt(ts, ck, kcrypto.UsageEncChallengeClient, 0)
	rep, _ = c.as(kmsg.NewFlags(), types.PAData{PADataType: kmsg.PAEncryptedChallenge, PADataValue: kmsg.MarshalEncryptedData(ed)})
	if e := krbError(t, rep); e.ErrorCode != int32(kerr.KDC_ERR_PREAUTH_FAILED) {
		t.Fatalf("a wrong challenge: error %d", e.ErrorCode)
	}
	// PA-ENC-TIMESTAMP inside the tunnel is not a proof there.
	tsPA, _ := kmsg.NewPAEncTimestamp(key, bob.KVNO, time.Now())
	rep, _ = c.as(kmsg.NewFlags(), tsPA)
	if e := krbError(t, rep); e.ErrorCode != int32(kerr.KDC_ERR_PREAUTH_REQUIRED) {
		t.Fatalf("a timestamp inside FAST: error %d, want PREAUTH_REQUIRED", e.ErrorCode)
	}
	// An unknown critical FAST option.
	rep, _ = c.as(kmsg.NewFlags(5))
	if e := krbError(t, rep); e.ErrorCode != int32(kerr.KDC_ERR_UNKNOWN_CRITICAL_FAST_OPTIONS) {
		t.Fatalf("critical option 5: error %d", e.ErrorCode)
	}
}
