package kmsg

import (
	"fmt"
	"time"

	"github.com/doublehop/doublehop/krb/der"
	"github.com/doublehop/doublehop/krb/kcrypto"
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
