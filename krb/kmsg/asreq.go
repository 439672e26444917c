// AS-REQ (RFC 4120 §5.4.1) as a client builds it, with PA-ENC-TIMESTAMP and ETYPE-INFO2.
package kmsg

import (
	"time"

	"github.com/doublehop/doublehop/krb/der"
	"github.com/doublehop/doublehop/krb/kcrypto"
	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

// ASRequest describes an AS-REQ (RFC 4120 §3.1.1).
type ASRequest struct {
	Realm   string
	Client  types.PrincipalName
	Service types.PrincipalName // default krbtgt/REALM
	Options []int               // default forwardable, renewable-ok? (none: caller decides)
	ETypes  []int32
	Till    time.Time
	RTime   time.Time
	PAData  []types.PAData
}

// Marshal builds the AS-REQ and returns it with its nonce.
func (r ASRequest) Marshal() ([]byte, int, error) {
	sname := r.Service
	if len(sname.NameString) == 0 {
		sname = types.PrincipalName{NameType: NTSrvInst, NameString: []string{"krbtgt", r.Realm}}
	}
	etypes := r.ETypes
	if len(etypes) == 0 {
		etypes = []int32{kcrypto.ETypeAES256SHA1, kcrypto.ETypeAES128SHA1}
	}
	till := r.Till
	if till.IsZero() {
		till = time.Now().Add(10 * time.Hour)
	}
	nonce := Nonce()
	body := messages.KDCReqBody{KDCOptions: NewFlags(r.Options...), CName: r.Client, Realm: r.Realm, SName: sname,
		Till: KerberosTime(till), Nonce: nonce, EType: etypes}
	if !r.RTime.IsZero() {
		body.RTime = KerberosTime(r.RTime)
	}
	bb, err := marshalKDCReqBody(body)
	if err != nil {
		return nil, 0, err
	}
	parts := [][]byte{der.Ctx(1, der.Int(5)), der.Ctx(2, der.Int(MsgASReq))}
	if len(r.PAData) > 0 {
		pab := MarshalPAData(r.PAData)
		parts = append(parts, der.Ctx(3, pab))
	}
	parts = append(parts, der.Ctx(4, bb))
	return der.App(tagASReq, der.Seq(parts...)), nonce, nil
}

// NewPAEncTimestamp builds PA-ENC-TIMESTAMP under the client's long-term key
// (RFC 4120 §5.2.7.2, key usage 1).
func NewPAEncTimestamp(key types.EncryptionKey, kvno int, now time.Time) (types.PAData, error) {
	b, err := MarshalPAEncTSEnc(now)
	if err != nil {
		return types.PAData{}, err
	}
	ed, err := kcrypto.Encrypt(b, key, kcrypto.UsageASReqTimestamp, kvno)
	if err != nil {
		return types.PAData{}, err
	}
	return types.PAData{PADataType: PAEncTimestamp, PADataValue: MarshalEncryptedData(ed)}, nil
}

// MarshalPAEncTSEnc encodes PA-ENC-TS-ENC for now (RFC 4120 §5.2.7.2): a
// timestamp and its microseconds.
func MarshalPAEncTSEnc(now time.Time) ([]byte, error) {
	now = now.UTC()
	return marshalPAEncTSEnc(types.PAEncTSEnc{PATimestamp: now.Truncate(time.Second), PAUSec: now.Nanosecond() / 1000})
}

// ETypeInfo2 extracts PA-ETYPE-INFO2 from a KRB-ERROR's METHOD-DATA e-data (RFC 4120 §5.2.7.5).
func ETypeInfo2(edata []byte) (types.ETypeInfo2, bool) {
	var md types.PADataSequence
	if err := SafeUnmarshal(func() error { _, e := asn1.Unmarshal(edata, &md); return e }); err != nil {
		return nil, false
	}
	for _, pa := range md {
		if pa.PADataType == PAETypeInfo2 {
			return ETypeInfo2FromPA(pa.PADataValue)
		}
	}
	return nil, false
}

// ETypeInfo2FromPA decodes a PA-ETYPE-INFO2 value.
func ETypeInfo2FromPA(v []byte) (types.ETypeInfo2, bool) {
	var info types.ETypeInfo2
	if err := SafeUnmarshal(func() error { _, e := asn1.Unmarshal(v, &info); return e }); err != nil || len(info) == 0 {
		return nil, false
	}
	return info, true
}
