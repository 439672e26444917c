package kmsg

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/doublehop/doublehop/krb/der"
	"github.com/doublehop/doublehop/krb/kcrypto"
	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

// TGSRequest describes one TGS-REQ (RFC 4120 §3.3.1). Unlike gokrb5's
// NewTGSReq it is signed after every field is set, so S4U2Self (PA-FOR-USER),
// S4U2Proxy (additional ticket, cname-in-addl-tkt), RBCD (PA-PAC-OPTIONS) and
// forwarded-TGT requests all carry a checksum over the body actually sent.
type TGSRequest struct {
	Realm             string // realm of the TGT / KDC
	Client            types.PrincipalName
	ClientRealm       string
	TGT               messages.Ticket
	SessionKey        types.EncryptionKey // TGT session key
	Service           types.PrincipalName
	Options           []int   // KDC option bits (RFC 4120 §5.4.1; OptCNameInAddlTkt for S4U2Proxy)
	ETypes            []int32 // default aes256, aes128
	AdditionalTickets []messages.Ticket
	PAData            []types.PAData // extra padata (PA-FOR-USER, PA-PAC-OPTIONS)
	Till              time.Time      // default now+10h
	UseSubkey         bool           // MIT clients send an authenticator subkey; the reply then uses key usage 9
	Now               time.Time      // authenticator time; default time.Now (tests move clocks here)
}

// KDCReply is a decrypted AS-REP or TGS-REP.
type KDCReply struct {
	Ticket messages.Ticket
	Part   messages.EncKDCRepPart
	CName  types.PrincipalName
	CRealm string
	PAData types.PADataSequence
}

// Credential returns the reply as a usable credential.
func (r *KDCReply) Credential() Credential {
	p := r.Part
	return Credential{Ticket: CleanTicket(r.Ticket), Info: KrbCredInfo{Key: p.Key, PRealm: r.CRealm, PName: r.CName,
		Flags: CopyFlags(p.Flags), AuthTime: p.AuthTime, StartTime: p.StartTime, EndTime: p.EndTime, RenewTill: p.RenewTill,
		SRealm: p.SRealm, SName: p.SName}}
}

// Nonce returns a random 31-bit nonce.
func Nonce() int {
	var b [4]byte
	rand.Read(b[:])
	return int(binary.BigEndian.Uint32(b[:]) & 0x7fffffff)
}

// Marshal builds the TGS-REQ and returns it with the nonce and the key that
// will decrypt the reply.
func (r TGSRequest) Marshal() ([]byte, int, types.EncryptionKey, uint32, error) {
	now := r.Now
	if now.IsZero() {
		now = time.Now()
	}
	till := r.Till
	if till.IsZero() {
		till = now.Add(10 * time.Hour)
	}
	etypes := r.ETypes
	if len(etypes) == 0 {
		etypes = []int32{kcrypto.ETypeAES256SHA1, kcrypto.ETypeAES128SHA1}
	}
	nonce := Nonce()
	body := messages.KDCReqBody{KDCOptions: NewFlags(r.Options...), Realm: r.Realm, SName: r.Service,
		Till: KerberosTime(till), Nonce: nonce, EType: etypes}
	for _, t := range r.AdditionalTickets {
		body.AdditionalTickets = append(body.AdditionalTickets, CleanTicket(t))
	}
	bodyBytes, err := marshalKDCReqBody(body)
	if err != nil {
		return nil, 0, types.EncryptionKey{}, 0, fmt.Errorf("marshal KDC-REQ-BODY: %w", err)
	}
	apreq, subkey, err := r.paTGSReq(bodyBytes, now)
	if err != nil {
		return nil, 0, types.EncryptionKey{}, 0, err
	}
	pas := append(types.PADataSequence{{PADataType: PATGSReq, PADataValue: apreq}}, r.PAData...)
	pab := MarshalPAData(pas)
	msg := der.App(tagTGSReq, der.Seq(der.Ctx(1, der.Int(5)), der.Ctx(2, der.Int(MsgTGSReq)), der.Ctx(3, pab), der.Ctx(4, bodyBytes)))
	if subkey.KeyType != 0 {
		return msg, nonce, subkey, kcrypto.UsageTGSRepEncPartSub, nil
	}
	return msg, nonce, r.SessionKey, kcrypto.UsageTGSRepEncPart, nil
}

// paTGSReq signs the body (key usage 6) inside an AP-REQ under the TGT session
// key (authenticator key usage 7), RFC 4120 §5.5.1, §7.5.1.
func (r TGSRequest) paTGSReq(body []byte, now time.Time) ([]byte, types.EncryptionKey, error) {
	ck, err := kcrypto.Checksum(r.SessionKey, kcrypto.UsageTGSReqChecksum, body)
	if err != nil {
		return nil, types.EncryptionKey{}, err
	}
	auth := NewAuthenticator(r.Client, r.ClientRealm, now)
	auth.Cksum = ck
	var subkey types.EncryptionKey
	if r.UseSubkey {
		if subkey, err = kcrypto.NewSessionKey(r.SessionKey.KeyType); err != nil {
			return nil, subkey, err
		}
		auth.SubKey = subkey
	}
	b, err := MarshalAPReq(r.TGT, r.SessionKey, auth, kcrypto.UsageTGSReqAuthenticator, nil)
	return b, subkey, err
}

// NewAuthenticator makes an authenticator stamped with now (microseconds in cusec).
func NewAuthenticator(cname types.PrincipalName, crealm string, now time.Time) types.Authenticator {
	now = now.UTC()
	return types.Authenticator{AVNO: 5, CRealm: crealm, CName: cname, CTime: now.Truncate(time.Second),
		Cusec: now.Nanosecond() / 1000, SeqNumber: int64(Nonce())}
}

// MarshalAPReq encrypts auth under the ticket session key with the given key
// usage (7 in PA-TGS-REQ, 11 for application servers) and encodes the AP-REQ
// (RFC 4120 §5.5.1). apOptions are AP option bits (2 = mutual-required).
func MarshalAPReq(tkt messages.Ticket, sessionKey types.EncryptionKey, auth types.Authenticator, usage uint32, apOptions []int) ([]byte, error) {
	ab, err := marshalAuthenticator(auth)
	if err != nil {
		return nil, fmt.Errorf("marshal authenticator: %w", err)
	}
	ed, err := kcrypto.Encrypt(ab, sessionKey, usage, 0)
	if err != nil {
		return nil, err
	}
	edb := MarshalEncryptedData(ed)
	tb, err := MarshalTicket(tkt)
	if err != nil {
		return nil, err
	}
	opts := marshalBitString(NewFlags(apOptions...))
	return der.App(tagAPReq, der.Seq(der.Ctx(0, der.Int(5)), der.Ctx(1, der.Int(MsgAPReq)), der.Ctx(2, opts), der.Ctx(3, tb), der.Ctx(4, edb))), nil
}

// DecodeKDCRep decodes an AS-REP or TGS-REP, decrypts its enc-part with key
// and usage, and checks the nonce (RFC 4120 §3.1.5, §3.3.4). A KRB-ERROR comes
// back as an *Error.
func DecodeKDCRep(b []byte, key types.EncryptionKey, usage uint32, nonce int) (*KDCReply, error) {
	if e := AsKRBError(b); e != nil {
		return nil, e
	}
	var f messages.KDCRepFields
	var err error
	var ok bool
	switch {
	case len(b) > 0 && b[0] == 0x6b:
		if f, ok = fastKDCRep(b, tagASRep, MsgASRep); !ok { // canonical DER; anything else goes to gofork
			var r messages.ASRep
			err = SafeUnmarshal(func() error { return r.Unmarshal(b) })
			f = r.KDCRepFields
		}
	case len(b) > 0 && b[0] == 0x6d:
		if f, ok = fastKDCRep(b, tagTGSRep, MsgTGSRep); !ok {
			var r messages.TGSRep
			err = SafeUnmarshal(func() error { return r.Unmarshal(b) })
			f = r.KDCRepFields
		}
	default:
		return nil, fmt.Errorf("not a KDC reply")
	}
	if err != nil {
		return nil, fmt.Errorf("decode KDC reply: %w", err)
	}
	plain, err := kcrypto.Decrypt(f.EncPart, key, usage)
	if err != nil {
		return nil, fmt.Errorf("KDC reply does not decrypt with the expected key: %w", err)
	}
	part, ok := fastEncKDCRepPart(plain) // canonical DER; anything else goes to gofork
	if !ok {
		if err := SafeUnmarshal(func() error { return part.Unmarshal(plain) }); err != nil {
			return nil, fmt.Errorf("decode EncKDCRepPart: %w", err)
		}
	}
	if part.Nonce != nonce {
		return nil, fmt.Errorf("KDC reply nonce %d does not match request nonce %d", part.Nonce, nonce)
	}
	part.Flags = CopyFlags(part.Flags)
	return &KDCReply{Ticket: CleanTicket(f.Ticket), Part: part, CName: f.CName, CRealm: f.CRealm, PAData: f.PAData}, nil
}

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
	now = now.UTC()
	b, err := marshalPAEncTSEnc(types.PAEncTSEnc{PATimestamp: now.Truncate(time.Second), PAUSec: now.Nanosecond() / 1000})
	if err != nil {
		return types.PAData{}, err
	}
	ed, err := kcrypto.Encrypt(b, key, kcrypto.UsageASReqTimestamp, kvno)
	if err != nil {
		return types.PAData{}, err
	}
	return types.PAData{PADataType: PAEncTimestamp, PADataValue: MarshalEncryptedData(ed)}, nil
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

// KDCRepPAData returns the clear-text padata of an AS-REP or TGS-REP.
func KDCRepPAData(b []byte) (types.PADataSequence, error) {
	var r messages.ASRep
	if err := SafeUnmarshal(func() error { return r.Unmarshal(b) }); err != nil {
		return nil, err
	}
	return r.PAData, nil
}
