package gss

import (
	"bytes"
	"crypto/hmac"
	"encoding/binary"
	"fmt"

	"github.com/doublehop/doublehop/krb/kcrypto"
	"github.com/jcmturner/gokrb5/v8/types"
)

// RFC 4121 §4.2.6.2 Wrap tokens: the per-message protection a context gives
// after the handshake (the SASL GSSAPI security layers of RFC 4752, LDAP
// signing and sealing). AES enctypes only (RFC 4121 tokens; RC4 uses RFC 4757's
// older format, which the lab does not offer for layers).

// Key usages (RFC 4121 §2): Wrap tokens use the SEAL usages whether or not
// they are encrypted; the SIGN usages are for MIC tokens.
const (
	usageAcceptorSeal  = 22
	usageInitiatorSeal = 24
)

// Wrap token flags (RFC 4121 §4.2.2).
const (
	wrapSentByAcceptor = 0x01
	wrapSealed         = 0x02
	wrapAcceptorSubkey = 0x04
)

const wrapHeaderLen = 16

// wrapHeader is a Wrap token's header (RFC 4121 §4.2.6.2) with RRC 0.
func wrapHeader(flags byte, ec uint16, seq uint64) []byte {
	h := make([]byte, wrapHeaderLen)
	h[0], h[1], h[2], h[3] = 0x05, 0x04, flags, 0xff
	binary.BigEndian.PutUint16(h[4:], ec)
	binary.BigEndian.PutUint64(h[8:], seq)
	return h
}

// isWrapToken reports a Wrap token's header (TOK_ID 05 04, filler FF).
func isWrapToken(tok []byte) bool {
	return len(tok) >= wrapHeaderLen && tok[0] == 0x05 && tok[1] == 0x04 && tok[3] == 0xff
}

// WrapError is a refused Wrap token (GSS_S_BAD_SIG, GSS_S_DEFECTIVE_TOKEN).
type WrapError struct{ Reason string }

func (e *WrapError) Error() string  { return "gss wrap token: " + e.Reason }
func (e *WrapError) String() string { return e.Error() }

// wrapKey is the key the context protects messages with: the initiator's
// subkey when it sent one (our AP-REP asserts no acceptor subkey), else the
// ticket session key (RFC 4121 §2).
func (c *SecContext) wrapKey() (types.EncryptionKey, error) {
	k := c.subkey
	if len(k.KeyValue) == 0 {
		k = c.sessionKey
	}
	switch k.KeyType {
	case kcrypto.ETypeAES128SHA1, kcrypto.ETypeAES256SHA1:
		return k, nil
	}
	return k, &WrapError{Reason: fmt.Sprintf("no RFC 4121 wrap tokens for enctype %d", k.KeyType)}
}

// CanWrap reports whether the context can sign and seal (an AES key).
func (c *SecContext) CanWrap() bool { _, err := c.wrapKey(); return err == nil }

// Wrap protects msg from the acceptor to the initiator: sealed (encrypted) when
// conf is set, else signed.
func (c *SecContext) Wrap(msg []byte, conf bool) ([]byte, error) {
	key, err := c.wrapKey()
	if err != nil {
		return nil, err
	}
	hdr := wrapHeader(wrapSentByAcceptor, 0, c.sendSeq)
	c.sendSeq++
	if conf {
		hdr[2] |= wrapSealed
		// EC = 0: AES needs no filler. The encrypted copy of the header has RRC 0.
		plain := append(append([]byte(nil), msg...), hdr...)
		ed, err := kcrypto.Encrypt(plain, key, usageAcceptorSeal, 0)
		if err != nil {
			return nil, err
		}
		return append(hdr, ed.Cipher...), nil
	}
	ck, err := kcrypto.Checksum(key, usageAcceptorSeal, append(append([]byte(nil), msg...), hdr...))
	if err != nil {
		return nil, err
	}
	binary.BigEndian.PutUint16(hdr[4:], uint16(len(ck.Checksum))) // EC: the checksum's length
	out := append(hdr, msg...)
	return append(out, ck.Checksum...), nil
}

// Unwrap checks a Wrap token from the initiator and returns its message and
// whether it was sealed. Any rotation (RRC) the sender chose is undone.
func (c *SecContext) Unwrap(tok []byte) (msg []byte, sealed bool, err error) {
	key, err := c.wrapKey()
	if err != nil {
		return nil, false, err
	}
	if !isWrapToken(tok) {
		return nil, false, &WrapError{Reason: "not a Wrap token (RFC 4121 §4.2.6.2)"}
	}
	flags := tok[2]
	if flags&wrapSentByAcceptor != 0 {
		return nil, false, &WrapError{Reason: "token sent by the acceptor (reflected)"}
	}
	if flags&wrapAcceptorSubkey != 0 {
		return nil, false, &WrapError{Reason: "token names an acceptor subkey this acceptor never sent"}
	}
	ec := int(binary.BigEndian.Uint16(tok[4:]))
	rrc := int(binary.BigEndian.Uint16(tok[6:]))
	body := append([]byte(nil), tok[wrapHeaderLen:]...)
	if len(body) > 0 {
		r := rrc % len(body) // RFC 4121 §4.2.5: rotate right by RRC; undo it
		body = append(body[r:], body[:r]...)
	}
	hdr := append([]byte(nil), tok[:wrapHeaderLen]...)
	if flags&wrapSealed != 0 {
		plain, err := kcrypto.Decrypt(types.EncryptedData{EType: key.KeyType, Cipher: body}, key, usageInitiatorSeal)
		if err != nil {
			return nil, true, &WrapError{Reason: "sealed message does not decrypt (GSS_S_BAD_SIG)"}
		}
		if len(plain) < ec+wrapHeaderLen {
			return nil, true, &WrapError{Reason: "sealed message too short"}
		}
		inner := plain[len(plain)-wrapHeaderLen:]
		hdr[6], hdr[7] = 0, 0 // the encrypted copy carries RRC 0
		if !bytes.Equal(inner, hdr) {
			return nil, true, &WrapError{Reason: "sealed header does not match (GSS_S_BAD_SIG)"}
		}
		return plain[:len(plain)-wrapHeaderLen-ec], true, nil
	}
	if ec > len(body) || ec == 0 {
		return nil, false, &WrapError{Reason: "signed message shorter than its checksum"}
	}
	msg, sum := body[:len(body)-ec], body[len(body)-ec:]
	hdr[4], hdr[5], hdr[6], hdr[7] = 0, 0, 0, 0 // EC and RRC are zero in the checksummed header
	ck, err := kcrypto.Checksum(key, usageInitiatorSeal, append(append([]byte(nil), msg...), hdr...))
	if err != nil {
		return nil, false, err
	}
	if !hmac.Equal(ck.Checksum, sum) {
		return nil, false, &WrapError{Reason: "checksum does not verify (GSS_S_BAD_SIG)"}
	}
	return msg, false, nil
}
