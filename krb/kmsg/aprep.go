package kmsg

import (
	"fmt"
	"time"

	"github.com/doublehop/doublehop/krb/der"
	"github.com/doublehop/doublehop/krb/kcrypto"
	"github.com/doublehop/doublehop/krb/kerr"
	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/types"
)

// EncAPRepPart (RFC 4120 §5.5.2).
type EncAPRepPart struct {
	CTime     time.Time           `asn1:"generalized,explicit,tag:0"`
	Cusec     int                 `asn1:"explicit,tag:1"`
	Subkey    types.EncryptionKey `asn1:"explicit,optional,tag:2"`
	SeqNumber int64               `asn1:"explicit,optional,tag:3"`
}

// MarshalAPRep builds KRB_AP_REP for mutual authentication: the client's ctime
// and cusec echoed under the session key, key usage 12 (RFC 4120 §3.2.4, §5.5.2).
func MarshalAPRep(ctime time.Time, cusec int, seq int64, sessionKey types.EncryptionKey) ([]byte, error) {
	return MarshalAPRepPart(EncAPRepPart{CTime: KerberosTime(ctime), Cusec: cusec, SeqNumber: seq}, sessionKey)
}

// MarshalAPRepPart builds KRB_AP_REP from its encrypted part (a DCE-style
// acceptor's carries a subkey, MS-KILE 3.4.5.1).
func MarshalAPRepPart(p EncAPRepPart, sessionKey types.EncryptionKey) ([]byte, error) {
	enc, err := asn1.Marshal(p)
	if err != nil {
		return nil, err
	}
	ed, err := kcrypto.Encrypt(der.App(tagEncAPRepPart, enc), sessionKey, kcrypto.UsageAPRepEncPart, 0)
	if err != nil {
		return nil, err
	}
	edb, err := ed.Marshal()
	if err != nil {
		return nil, err
	}
	return der.App(tagAPRep, der.Seq(der.Ctx(0, der.Int(5)), der.Ctx(1, der.Int(MsgAPRep)), der.Ctx(2, edb))), nil
}

// VerifyAPRep decrypts an AP-REP and checks it echoes ctime/cusec (RFC 4120 §3.2.5).
func VerifyAPRep(b []byte, sessionKey types.EncryptionKey, ctime time.Time, cusec int) error {
	p, err := OpenAPRep(b, sessionKey)
	if err != nil {
		return err
	}
	if !p.CTime.Equal(KerberosTime(ctime)) || p.Cusec != cusec {
		return kerr.Errorf(kerr.KRB_AP_ERR_MUT_FAIL, "MUT_FAIL", "AP-REP does not echo the authenticator time")
	}
	return nil
}

// OpenAPRep decrypts an AP-REP's EncAPRepPart (key usage 12).
func OpenAPRep(b []byte, sessionKey types.EncryptionKey) (EncAPRepPart, error) {
	t, _, err := der.Read(b)
	if err != nil || t.Class != 1 || t.Tag != tagAPRep {
		return EncAPRepPart{}, fmt.Errorf("not an AP-REP")
	}
	var m struct {
		PVNO    int                 `asn1:"explicit,tag:0"`
		MsgType int                 `asn1:"explicit,tag:1"`
		EncPart types.EncryptedData `asn1:"explicit,tag:2"`
	}
	if err := SafeUnmarshal(func() error { _, e := asn1.Unmarshal(t.Content, &m); return e }); err != nil {
		return EncAPRepPart{}, fmt.Errorf("AP-REP: %w", err)
	}
	plain, err := kcrypto.Decrypt(m.EncPart, sessionKey, kcrypto.UsageAPRepEncPart)
	if err != nil {
		return EncAPRepPart{}, kerr.Errorf(kerr.KRB_AP_ERR_MUT_FAIL, "MUT_FAIL", "AP-REP does not decrypt with the session key")
	}
	var p EncAPRepPart
	if err := SafeUnmarshal(func() error {
		_, e := asn1.UnmarshalWithParams(plain, &p, fmt.Sprintf("application,explicit,tag:%d", tagEncAPRepPart))
		return e
	}); err != nil {
		return EncAPRepPart{}, fmt.Errorf("EncAPRepPart: %w", err)
	}
	return p, nil
}
