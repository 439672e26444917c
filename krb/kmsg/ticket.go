package kmsg

import (
	"fmt"

	"github.com/doublehop/doublehop/krb/kcrypto"
	"github.com/doublehop/doublehop/krb/kerr"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

// ASN.1 application tags (RFC 4120 §5.10).
const (
	tagTicket         = 1
	tagAuthenticator  = 2
	tagEncTicketPart  = 3
	tagASReq          = 10
	tagASRep          = 11
	tagTGSReq         = 12
	tagTGSRep         = 13
	tagAPReq          = 14
	tagAPRep          = 15
	tagKRBCred        = 22
	tagEncASRepPart   = 25
	tagEncTGSRepPart  = 26
	tagEncAPRepPart   = 27
	tagEncKrbCredPart = 29
	tagKRBError       = 30
)

// MarshalEncTicketPart encodes an EncTicketPart ([APPLICATION 3], RFC 4120 §5.3);
// gokrb5 has no such method.
func MarshalEncTicketPart(etp messages.EncTicketPart) ([]byte, error) {
	b, err := encodeEncTicketPart(&etp)
	if err != nil {
		return nil, fmt.Errorf("marshal EncTicketPart: %w", err)
	}
	return b, nil
}

// SealTicket encrypts etp with the service key (key usage 2) into a Ticket.
func SealTicket(sname types.PrincipalName, srealm string, etp messages.EncTicketPart, key types.EncryptionKey, kvno int) (messages.Ticket, error) {
	b, err := MarshalEncTicketPart(etp)
	if err != nil {
		return messages.Ticket{}, err
	}
	ed, err := kcrypto.Encrypt(b, key, kcrypto.UsageTicket, kvno)
	if err != nil {
		return messages.Ticket{}, err
	}
	return messages.Ticket{TktVNO: 5, Realm: srealm, SName: sname, EncPart: ed}, nil
}

// OpenTicket decrypts a ticket with key. A wrong key is KRB_AP_ERR_MODIFIED, as
// Windows and MIT report it (RFC 4120 §3.2.3: "the ticket was not encrypted in
// the server's key").
func OpenTicket(t messages.Ticket, key types.EncryptionKey) (messages.EncTicketPart, error) {
	plain, err := kcrypto.Decrypt(t.EncPart, key, kcrypto.UsageTicket)
	if err != nil {
		if c, _ := kerr.CodeOf(err); c == kerr.KRB_AP_ERR_BAD_INTEGRITY {
			return messages.EncTicketPart{}, kerr.Errorf(kerr.KRB_AP_ERR_MODIFIED, "TICKET_WRONG_KEY", "ticket for %s did not decrypt with the service key (kvno %d, %s)",
				PrincipalString(t.SName, t.Realm), t.EncPart.KVNO, kcrypto.ETypeName(t.EncPart.EType)).WithStatus(kerr.StatusWrongPassword)
		}
		return messages.EncTicketPart{}, err
	}
	etp, ok := fastEncTicketPart(plain) // canonical DER; anything else goes to gofork
	if !ok {
		if err := SafeUnmarshal(func() error { return etp.Unmarshal(plain) }); err != nil {
			return messages.EncTicketPart{}, kerr.Errorf(kerr.KRB_AP_ERR_BAD_INTEGRITY, "BAD_ENCODING", "ticket EncTicketPart: %v", err)
		}
	}
	etp.Flags = CopyFlags(etp.Flags)
	return etp, nil
}

// CleanTicket drops gokrb5's DecryptedEncPart so the plaintext (session key
// included) can never be marshalled onto the wire (notes: gokrb5 §1.2).
func CleanTicket(t messages.Ticket) messages.Ticket {
	t.DecryptedEncPart = messages.EncTicketPart{}
	return t
}

// MarshalTicket encodes a ticket after cleaning it.
func MarshalTicket(t messages.Ticket) ([]byte, error) {
	e := derEnc{b: make([]byte, 0, 128+len(t.EncPart.Cipher))}
	e.ticket(&t) // DecryptedEncPart is never written: the same bytes as CleanTicket(t).Marshal()
	return e.result()
}

// UnmarshalTicket decodes a Ticket, never panicking.
func UnmarshalTicket(b []byte) (messages.Ticket, error) {
	var t messages.Ticket
	err := SafeUnmarshal(func() error { return t.Unmarshal(b) })
	if err != nil {
		return messages.Ticket{}, err
	}
	return CleanTicket(t), nil
}

// MarshalEncKDCRepPart encodes the reply's encrypted part with the right tag:
// EncASRepPart [APPLICATION 25] or EncTGSRepPart [APPLICATION 26] (RFC 4120
// §5.4.2; gokrb5 always writes 25).
func MarshalEncKDCRepPart(p messages.EncKDCRepPart, tgs bool) ([]byte, error) {
	tag := tagEncASRepPart
	if tgs {
		tag = tagEncTGSRepPart
	}
	e := derEnc{b: make([]byte, 0, 256)}
	e.encKDCRepPart(&p, tag)
	b, err := e.result()
	if err != nil {
		return nil, fmt.Errorf("marshal EncKDCRepPart: %w", err)
	}
	return b, nil
}

// SafeUnmarshal runs a gokrb5/gofork decoder and turns its panics into
// errors (gokrb5 §5.1: several decoders panic on hostile input).
func SafeUnmarshal(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("malformed ASN.1: %v", r)
		}
	}()
	return f()
}
