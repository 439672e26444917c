package kmsg

import (
	"fmt"
	"time"

	"github.com/doublehop/doublehop/krb/der"
	"github.com/doublehop/doublehop/krb/kcrypto"
	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

// FAST (RFC 6113 §5.4): the armored request a client sends in PA-FX-FAST,
// and the armored response the KDC puts in the reply's padata or the
// error's e-data.

// PA-DATA types of FAST (RFC 6113 §7.1).
const (
	PAFXCookie           int32 = 133
	PAFXError            int32 = 137
	PAEncryptedChallenge int32 = 138
)

// ArmorAPRequest is the one armor type (RFC 6113 §5.4.1.1).
const ArmorAPRequest = 1

// FAST options (RFC 6113 §5.4.1): bit 1 hides the client's name in the
// outer reply; bits 0-15 are critical.
const FastHideClientNames = 1

// KrbFastArmor is the armor: an AP-REQ whose ticket is a TGT.
type KrbFastArmor struct {
	ArmorType  int32  `asn1:"explicit,tag:0"`
	ArmorValue []byte `asn1:"explicit,tag:1"`
}

// KrbFastArmoredReq is PA-FX-FAST-REQUEST's armored-data.
type KrbFastArmoredReq struct {
	Armor       KrbFastArmor        `asn1:"optional,explicit,tag:0"`
	ReqChecksum types.Checksum      `asn1:"explicit,tag:1"`
	EncFastReq  types.EncryptedData `asn1:"explicit,tag:2"`
}

// KrbFastReq is the request inside: options, padata and the real body.
type KrbFastReq struct {
	FastOptions asn1.BitString
	PAData      types.PADataSequence
	Body        messages.KDCReqBody
	RawBody     []byte
}

type rawFastReq struct {
	FastOptions asn1.BitString       `asn1:"explicit,tag:0"`
	PAData      types.PADataSequence `asn1:"explicit,tag:1"`
	ReqBody     asn1.RawValue        `asn1:"explicit,tag:2"`
}

// ParseFastArmoredReq decodes PA-FX-FAST's value (the CHOICE's
// armored-data [0]).
func ParseFastArmoredReq(v []byte) (*KrbFastArmoredReq, error) {
	var r KrbFastArmoredReq
	err := SafeUnmarshal(func() error {
		rest, err := asn1.UnmarshalWithParams(v, &r, "explicit,tag:0")
		if err == nil && len(rest) != 0 {
			err = fmt.Errorf("%d trailing bytes", len(rest))
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("PA-FX-FAST: %w", err)
	}
	return &r, nil
}

// OpenFastReq decrypts enc-fast-req with the armor key (usage 51) and
// decodes the KrbFastReq inside.
func OpenFastReq(ed types.EncryptedData, armorKey types.EncryptionKey) (*KrbFastReq, error) {
	plain, err := kcrypto.Decrypt(ed, armorKey, kcrypto.UsageFastEnc)
	if err != nil {
		return nil, err
	}
	var raw rawFastReq
	if err := SafeUnmarshal(func() error { _, err := asn1.Unmarshal(plain, &raw); return err }); err != nil {
		return nil, fmt.Errorf("KrbFastReq: %w", err)
	}
	r := &KrbFastReq{FastOptions: raw.FastOptions, PAData: raw.PAData, RawBody: raw.ReqBody.Bytes}
	if err := SafeUnmarshal(func() error { return r.Body.Unmarshal(raw.ReqBody.Bytes) }); err != nil {
		return nil, fmt.Errorf("KrbFastReq req-body: %w", err)
	}
	for i := range r.Body.AdditionalTickets {
		r.Body.AdditionalTickets[i] = CleanTicket(r.Body.AdditionalTickets[i])
	}
	return r, nil
}

// KrbFastFinished binds the reply's ticket to the armored exchange.
type KrbFastFinished struct {
	Timestamp      time.Time
	CRealm         string
	CName          types.PrincipalName
	TicketChecksum types.Checksum
}

// KrbFastResponse is what the armored reply carries (RFC 6113 §5.4.3).
type KrbFastResponse struct {
	PAData        types.PADataSequence
	StrengthenKey *types.EncryptionKey
	Finished      *KrbFastFinished
	Nonce         int
}

// MarshalFastReply encrypts r with the armor key (usage 52) as
// PA-FX-FAST-REPLY's armored-data.
func MarshalFastReply(r KrbFastResponse, armorKey types.EncryptionKey) ([]byte, error) {
	pa, err := asn1.Marshal(r.PAData)
	if err != nil {
		return nil, err
	}
	if len(r.PAData) == 0 {
		pa = der.Seq()
	}
	parts := [][]byte{der.Ctx(0, pa)}
	if r.StrengthenKey != nil {
		k, err := asn1.Marshal(*r.StrengthenKey)
		if err != nil {
			return nil, err
		}
		parts = append(parts, der.Ctx(1, k))
	}
	if f := r.Finished; f != nil {
		ts := der.Encode(0x18, []byte(f.Timestamp.UTC().Format("20060102150405Z"))) // KerberosTime: GeneralizedTime
		realm := der.Encode(0x1b, []byte(f.CRealm))                                 // Realm: GeneralString
		cname, err := asn1.Marshal(f.CName)
		if err != nil {
			return nil, err
		}
		ck, err := asn1.Marshal(f.TicketChecksum)
		if err != nil {
			return nil, err
		}
		parts = append(parts, der.Ctx(2, der.Seq(der.Ctx(0, ts), der.Ctx(1, der.Int(int64(f.Timestamp.Nanosecond()/1000))),
			der.Ctx(2, realm), der.Ctx(3, cname), der.Ctx(4, ck))))
	}
	parts = append(parts, der.Ctx(3, der.Int(int64(uint32(r.Nonce)))))
	ed, err := kcrypto.Encrypt(der.Seq(parts...), armorKey, kcrypto.UsageFastRep, 0)
	if err != nil {
		return nil, err
	}
	eb, err := asn1.Marshal(ed)
	if err != nil {
		return nil, err
	}
	return der.Ctx(0, der.Seq(der.Ctx(0, eb))), nil
}

type rawFastFinished struct {
	Timestamp      time.Time           `asn1:"generalized,explicit,tag:0"`
	Usec           int                 `asn1:"explicit,tag:1"`
	CRealm         string              `asn1:"generalstring,explicit,tag:2"`
	CName          types.PrincipalName `asn1:"explicit,tag:3"`
	TicketChecksum types.Checksum      `asn1:"explicit,tag:4"`
}

type rawFastResponse struct {
	PAData        types.PADataSequence `asn1:"explicit,tag:0"`
	StrengthenKey types.EncryptionKey  `asn1:"optional,explicit,tag:1"`
	Finished      rawFastFinished      `asn1:"optional,explicit,tag:2"`
	Nonce         int                  `asn1:"explicit,tag:3"`
}

// OpenFastReply decrypts PA-FX-FAST-REPLY's armored-data with the armor key
// (usage 52): the client's side of MarshalFastReply.
func OpenFastReply(v []byte, armorKey types.EncryptionKey) (*KrbFastResponse, error) {
	var rep struct {
		EncFastRep types.EncryptedData `asn1:"explicit,tag:0"`
	}
	if err := SafeUnmarshal(func() error { _, err := asn1.UnmarshalWithParams(v, &rep, "explicit,tag:0"); return err }); err != nil {
		return nil, fmt.Errorf("PA-FX-FAST-REPLY: %w", err)
	}
	plain, err := kcrypto.Decrypt(rep.EncFastRep, armorKey, kcrypto.UsageFastRep)
	if err != nil {
		return nil, err
	}
	var raw rawFastResponse
	if err := SafeUnmarshal(func() error { _, err := asn1.Unmarshal(plain, &raw); return err }); err != nil {
		return nil, fmt.Errorf("KrbFastResponse: %w", err)
	}
	r := &KrbFastResponse{PAData: raw.PAData, Nonce: raw.Nonce}
	if raw.StrengthenKey.KeyType != 0 {
		r.StrengthenKey = &raw.StrengthenKey
	}
	if f := raw.Finished; f.CRealm != "" {
		r.Finished = &KrbFastFinished{Timestamp: f.Timestamp.Add(time.Duration(f.Usec) * time.Microsecond), CRealm: f.CRealm, CName: f.CName, TicketChecksum: f.TicketChecksum}
	}
	return r, nil
}

// MarshalFastArmoredReq builds PA-FX-FAST's value as a client does (RFC
// 6113 §5.4.2): armor (an AP-REQ, or nil in a TGS request), the checksum of
// checked (the outer body in an AS request, the PA-TGS-REQ's AP-REQ in a
// TGS request) under the armor key, and the inner request sealed in it.
func MarshalFastArmoredReq(armorAPReq []byte, armorKey types.EncryptionKey, checked []byte, options asn1.BitString, padata types.PADataSequence, innerBody []byte) ([]byte, error) {
	pa, err := asn1.Marshal(padata)
	if err != nil {
		return nil, err
	}
	if len(padata) == 0 {
		pa = der.Seq()
	}
	inner := der.Seq(der.Ctx(0, marshalBitString(options)), der.Ctx(1, pa), der.Ctx(2, innerBody))
	ed, err := kcrypto.Encrypt(inner, armorKey, kcrypto.UsageFastEnc, 0)
	if err != nil {
		return nil, err
	}
	ck, err := kcrypto.Checksum(armorKey, kcrypto.UsageFastReqChecksum, checked)
	if err != nil {
		return nil, err
	}
	cb, err := asn1.Marshal(ck)
	if err != nil {
		return nil, err
	}
	var parts [][]byte
	if armorAPReq != nil {
		parts = append(parts, der.Ctx(0, der.Seq(der.Ctx(0, der.Int(ArmorAPRequest)), der.Ctx(1, der.Octets(armorAPReq)))))
	}
	parts = append(parts, der.Ctx(1, cb), der.Ctx(2, MarshalEncryptedData(ed)))
	return der.Ctx(0, der.Seq(parts...)), nil
}
