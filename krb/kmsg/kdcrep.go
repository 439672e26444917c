// KDC-REP (RFC 4120 §5.4.2) as a client decodes it.
package kmsg

import (
	"fmt"

	"github.com/doublehop/doublehop/krb/kcrypto"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

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

// KDCRepPAData returns the clear-text padata of an AS-REP or TGS-REP.
func KDCRepPAData(b []byte) (types.PADataSequence, error) {
	var r messages.ASRep
	if err := SafeUnmarshal(func() error { return r.Unmarshal(b) }); err != nil {
		return nil, err
	}
	return r.PAData, nil
}
