package kmsg

import (
	"fmt"
	"time"

	"github.com/doublehop/doublehop/krb/der"
	"github.com/doublehop/doublehop/krb/kcrypto"
	"github.com/doublehop/doublehop/krb/kerr"
	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

// KrbCredInfo describes one forwarded ticket (RFC 4120 §5.8.1). Realms are
// GeneralString here; gokrb5's type tags srealm IA5String (notes §1.2).
type KrbCredInfo struct {
	Key       types.EncryptionKey `asn1:"explicit,tag:0"`
	PRealm    string              `asn1:"generalstring,optional,explicit,tag:1"`
	PName     types.PrincipalName `asn1:"optional,explicit,tag:2"`
	Flags     asn1.BitString      `asn1:"optional,explicit,tag:3"`
	AuthTime  time.Time           `asn1:"generalized,optional,explicit,tag:4"`
	StartTime time.Time           `asn1:"generalized,optional,explicit,tag:5"`
	EndTime   time.Time           `asn1:"generalized,optional,explicit,tag:6"`
	RenewTill time.Time           `asn1:"generalized,optional,explicit,tag:7"`
	SRealm    string              `asn1:"generalstring,optional,explicit,tag:8"`
	SName     types.PrincipalName `asn1:"optional,explicit,tag:9"`
	CAddr     types.HostAddresses `asn1:"optional,explicit,tag:10"`
}

type encKrbCredPart struct {
	TicketInfo []KrbCredInfo `asn1:"explicit,tag:0"`
	Nonce      int           `asn1:"optional,explicit,tag:1"`
	Timestamp  time.Time     `asn1:"generalized,optional,explicit,tag:2"`
	Usec       int           `asn1:"optional,explicit,tag:3"`
}

// Credential is a ticket together with what is needed to use it. Its session
// key never appears in String or in logs.
type Credential struct {
	Ticket messages.Ticket
	Info   KrbCredInfo
}

// Client is the credential's client principal string.
func (c Credential) Client() string { return PrincipalString(c.Info.PName, c.Info.PRealm) }

// Server is the credential's service principal string.
func (c Credential) Server() string { return PrincipalString(c.Info.SName, c.Info.SRealm) }

// String describes the credential without any key material.
func (c Credential) String() string {
	return fmt.Sprintf("%s for %s [%s] until %s", c.Client(), c.Server(), FlagLetters(c.Info.Flags), c.Info.EndTime.UTC().Format(time.RFC3339))
}

// MarshalKRBCred builds a KRB-CRED carrying creds, encrypted under key with key
// usage 14 (RFC 4120 §5.8; RFC 4121 §4.1.1 puts it in the 0x8003 checksum).
func MarshalKRBCred(creds []Credential, key types.EncryptionKey) ([]byte, error) {
	part := encKrbCredPart{}
	var tkts [][]byte
	for _, c := range creds {
		tb, err := MarshalTicket(c.Ticket)
		if err != nil {
			return nil, err
		}
		tkts = append(tkts, tb)
		part.TicketInfo = append(part.TicketInfo, c.Info)
	}
	now := time.Now().UTC()
	part.Timestamp, part.Usec = now.Truncate(time.Second), now.Nanosecond()/1000
	enc, err := asn1.Marshal(part)
	if err != nil {
		return nil, fmt.Errorf("marshal EncKrbCredPart: %w", err)
	}
	ed, err := kcrypto.Encrypt(der.App(tagEncKrbCredPart, enc), key, kcrypto.UsageKRBCredEncPart, 0)
	if err != nil {
		return nil, err
	}
	edb, err := ed.Marshal()
	if err != nil {
		return nil, err
	}
	return der.App(tagKRBCred, der.Seq(der.Ctx(0, der.Int(5)), der.Ctx(1, der.Int(MsgKRBCred)), der.Ctx(2, der.Seq(tkts...)), der.Ctx(3, edb))), nil
}

// ParseKRBCred decodes a KRB-CRED and decrypts its credentials, trying each key
// in order (the authenticator subkey first, then the ticket session key, as MIT's
// krb5_rd_cred does); an etype-0 enc-part is taken as plaintext.
func ParseKRBCred(b []byte, keys ...types.EncryptionKey) ([]Credential, error) {
	app, _, err := der.Read(b)
	if err != nil || app.Class != 1 || app.Tag != tagKRBCred {
		return nil, fmt.Errorf("not a KRB-CRED")
	}
	seq, _, err := der.Read(app.Content)
	if err != nil || seq.Tag != 16 {
		return nil, der.ErrMalformed
	}
	var tickets []messages.Ticket
	var ed types.EncryptedData
	for p := seq.Content; len(p) > 0; {
		var f der.TLV
		if f, p, err = der.Read(p); err != nil || f.Class != 2 {
			return nil, der.ErrMalformed
		}
		switch f.Tag {
		case 2:
			s, _, err := der.Read(f.Content)
			if err != nil {
				return nil, der.ErrMalformed
			}
			for q := s.Content; len(q) > 0 && len(tickets) < 16; {
				var t der.TLV
				if t, q, err = der.Read(q); err != nil {
					return nil, der.ErrMalformed
				}
				tk, err := UnmarshalTicket(t.Full)
				if err != nil {
					return nil, fmt.Errorf("KRB-CRED ticket: %w", err)
				}
				tickets = append(tickets, tk)
			}
		case 3:
			if err := SafeUnmarshal(func() error { return ed.Unmarshal(f.Content) }); err != nil {
				return nil, fmt.Errorf("KRB-CRED enc-part: %w", err)
			}
		}
	}
	var plain []byte
	if ed.EType == 0 {
		plain = ed.Cipher
	} else {
		for _, k := range keys {
			if k.KeyType == 0 {
				continue
			}
			if plain, err = kcrypto.Decrypt(ed, k, kcrypto.UsageKRBCredEncPart); err == nil {
				break
			}
		}
		if plain == nil {
			return nil, kerr.Errorf(kerr.KRB_AP_ERR_BAD_INTEGRITY, "KRB_CRED_KEY", "KRB-CRED does not decrypt with the subkey or the session key")
		}
	}
	var part encKrbCredPart
	if err := SafeUnmarshal(func() error {
		_, e := asn1.UnmarshalWithParams(plain, &part, fmt.Sprintf("application,explicit,tag:%d", tagEncKrbCredPart))
		return e
	}); err != nil {
		return nil, fmt.Errorf("EncKrbCredPart: %w", err)
	}
	if len(part.TicketInfo) != len(tickets) {
		return nil, fmt.Errorf("KRB-CRED has %d tickets and %d ticket-info entries", len(tickets), len(part.TicketInfo))
	}
	out := make([]Credential, len(tickets))
	for i := range tickets {
		part.TicketInfo[i].Flags = CopyFlags(part.TicketInfo[i].Flags)
		out[i] = Credential{Ticket: tickets[i], Info: part.TicketInfo[i]}
	}
	return out, nil
}
