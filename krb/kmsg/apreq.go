// AP-REQ (RFC 4120 §5.5.1) and its authenticator.
package kmsg

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/doublehop/doublehop/krb/der"
	"github.com/doublehop/doublehop/krb/kcrypto"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

// Nonce returns a random 31-bit nonce.
func Nonce() int {
	var b [4]byte
	rand.Read(b[:])
	return int(binary.BigEndian.Uint32(b[:]) & 0x7fffffff)
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
