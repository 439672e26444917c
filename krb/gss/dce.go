package gss

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"encoding/binary"
	"fmt"

	"github.com/doublehop/doublehop/krb/kcrypto"
	"github.com/doublehop/doublehop/krb/kmsg"
	"github.com/jcmturner/gokrb5/v8/types"
)

// DCE-style contexts (GSS_C_DCE_STYLE; MS-KILE 3.4.5.1, 3.4.5.4): what
// DCE/RPC's Kerberos and SPNEGO providers run. Three legs instead of two —
// the AP-REQ (in the bind), the acceptor's AP-REP carrying a subkey and a
// sequence number of its own (bind_ack), the initiator's AP-REP echoing
// them (alter_context or auth3) — and no GSS framing on the tokens. Each
// PDU is then a Wrap token over scattered buffers: the stub sealed in
// place, the PDU's headers signed around it, the token's trailer rotated
// into the token as Windows rotates it (EC + RRC bytes).

// FlagDCEStyle is GSS_C_DCE_STYLE in the authenticator checksum (RFC 4121
// §4.1.1.1 leaves the bit to Microsoft: MS-KILE 3.4.5.1).
const FlagDCEStyle = 0x1000

// Key usages of RFC 4121 §2 that the MIC tokens use.
const (
	usageAcceptorSign  = 23
	usageInitiatorSign = 25
)

// Token flags beyond wrap.go's.
const (
	micHeaderLen = 16
	dceEC        = 16 // the filler Windows adds to a sealed token with AES
	dceRRC       = 28 // the rotation it announces (it rotates by EC + RRC)
)

// DCEContext is an acceptor-side DCE-style context.
type DCEContext struct {
	*SecContext
	key       types.EncryptionKey // the acceptor subkey: every token's key
	acceptSeq uint64              // our initial sequence number, echoed in the third leg
	sendSeq   uint64
	recvSeq   uint64
	mechTypes []byte // the MechTypeList the client's mechListMIC signs
	complete  bool
}

// Complete reports whether the third leg arrived.
func (c *DCEContext) Complete() bool { return c.complete }

// SessionKey is the key the context's application uses (DRSUAPI's secret
// encryption; MS-KILE 3.1.1.2: the acceptor subkey when there is one).
func (c *DCEContext) SessionKey() []byte { return c.key.KeyValue }

// AcceptDCE verifies the AP-REQ of a DCE-style context (bare, or the
// mechToken of a SPNEGO NegTokenInit) and returns the context and the
// token to send back: a bare AP-REP with the acceptor's subkey and
// sequence number, in SPNEGO accept-incomplete when the client used SPNEGO.
func (a *Acceptor) AcceptDCE(token []byte) (*DCEContext, []byte, error) {
	var mechTypes []byte
	if len(token) > 0 && (token[0] == 0x60 || token[0] == 0xa0) {
		if n, err := parseSPNEGO(token); err == nil {
			mechTypes = bytes.Clone(n.MechTypesDER)
		}
	}
	sec, err := a.Accept(token)
	if err != nil {
		return nil, nil, err
	}
	if sec.GSSFlags&FlagDCEStyle == 0 {
		return nil, nil, &AcceptError{Code: 0, Reason: "NOT_DCE_STYLE", Text: "a DCE/RPC context without GSS_C_DCE_STYLE"}
	}
	base := sec.subkey
	if len(base.KeyValue) == 0 {
		base = sec.sessionKey
	}
	if base.KeyType != kcrypto.ETypeAES128SHA1 && base.KeyType != kcrypto.ETypeAES256SHA1 {
		return nil, nil, &AcceptError{Reason: "ETYPE", Text: fmt.Sprintf("no DCE/RPC message protection with enctype %s (AES only)", kcrypto.ETypeName(base.KeyType))}
	}
	sub, err := kcrypto.NewSessionKey(base.KeyType)
	if err != nil {
		return nil, nil, err
	}
	var sb [4]byte
	rand.Read(sb[:])
	seq := uint64(binary.BigEndian.Uint32(sb[:]) & 0x3fffffff)
	c := &DCEContext{SecContext: sec, key: sub, acceptSeq: seq,
		sendSeq: seq, recvSeq: sec.initSeq, mechTypes: mechTypes}
	rep, err := kmsg.MarshalAPRepPart(kmsg.EncAPRepPart{CTime: kmsg.KerberosTime(sec.authCTime), Cusec: sec.authCusec, Subkey: sub, SeqNumber: int64(seq)}, sec.sessionKey)
	if err != nil {
		return nil, nil, err
	}
	out := rep
	if sec.SPNEGO {
		out = MarshalNegTokenResp(NegAcceptIncomplete, sec.Mech, rep)
	}
	return c, out, nil
}

// Finish takes the third leg: the initiator's AP-REP (under the ticket
// session key, echoing the authenticator's time and our sequence number)
// and, in SPNEGO, its mechListMIC. It returns the last token (SPNEGO
// accept-completed with our mechListMIC; nil without SPNEGO).
func (c *DCEContext) Finish(token []byte) ([]byte, error) {
	rep, mic := token, []byte(nil)
	if c.SPNEGO {
		r, err := ParseNegTokenResp(token)
		if err != nil {
			return nil, &WrapError{Reason: "third leg: not a SPNEGO NegTokenResp"}
		}
		rep, mic = r.ResponseToken, r.MechListMIC
	}
	p, err := kmsg.OpenAPRep(rep, c.sessionKey)
	if err != nil {
		return nil, err
	}
	// The client's AP-REP is made "exactly as the server would" (MS-KILE
	// 3.4.5.1), but Windows holds it only to the sequence number: impacket
	// stamps it with its own clock, as MIT's krb5_rd_rep_dce allows.
	if uint64(uint32(p.SeqNumber)) != c.acceptSeq {
		return nil, &WrapError{Reason: "third leg: the AP-REP does not echo the acceptor's sequence number (MS-KILE 3.4.5.1)"}
	}
	c.complete = true
	if !c.SPNEGO {
		return nil, nil
	}
	var out []byte
	if len(mic) > 0 {
		if err := c.VerifyDCE(c.mechTypes, mic); err != nil {
			return nil, err
		}
		out = c.SignDCE(c.mechTypes)
	}
	return MarshalNegTokenRespMIC(NegAcceptCompleted, MechUnknown, nil, out), nil
}

// micHeader is a MIC token's header (RFC 4121 §4.2.6.1).
func micHeader(flags byte, seq uint64) []byte {
	h := []byte{0x04, 0x04, flags, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0}
	binary.BigEndian.PutUint64(h[8:], seq)
	return h
}

// SignDCE signs msg as the acceptor (integrity-only protection of a PDU,
// and SPNEGO's mechListMIC): a MIC token with the next sequence number.
func (c *DCEContext) SignDCE(msg []byte) []byte {
	h := micHeader(wrapSentByAcceptor|wrapAcceptorSubkey, c.sendSeq)
	c.sendSeq++
	ck, _ := kcrypto.Checksum(c.key, usageAcceptorSign, append(append([]byte(nil), msg...), h...))
	return append(h, ck.Checksum...)
}

// VerifyDCE checks the initiator's MIC token over msg and its sequence.
func (c *DCEContext) VerifyDCE(msg, tok []byte) error {
	if len(tok) < micHeaderLen || tok[0] != 0x04 || tok[1] != 0x04 || !bytes.Equal(tok[3:8], []byte{0xff, 0xff, 0xff, 0xff, 0xff}) {
		return &WrapError{Reason: "not a MIC token (RFC 4121 §4.2.6.1)"}
	}
	if tok[2]&wrapSentByAcceptor != 0 {
		return &WrapError{Reason: "MIC token sent by the acceptor (reflected)"}
	}
	if seq := binary.BigEndian.Uint64(tok[8:16]); seq != c.recvSeq {
		return &WrapError{Reason: fmt.Sprintf("MIC token out of sequence (%d, expected %d)", seq, c.recvSeq)}
	}
	ck, err := kcrypto.Checksum(c.key, usageInitiatorSign, append(append([]byte(nil), msg...), tok[:micHeaderLen]...))
	if err != nil || !hmac.Equal(ck.Checksum, tok[micHeaderLen:]) {
		return &WrapError{Reason: "MIC does not verify (GSS_S_BAD_SIG)"}
	}
	c.recvSeq++
	return nil
}

// SealedTokenLen is the auth_value length of a sealed PDU.
const SealedTokenLen = wrapHeaderLen + dceEC + wrapHeaderLen + 12 + 16

// SealDCE seals a PDU from the acceptor: data (the stub and its padding)
// is encrypted in place; pre and post (the PDU's headers and sec_trailer)
// are signed with it. It returns the auth_value: the token header, then
// the trailer (E(filler), E(header), the checksum) rotated in front of the
// encrypted confounder.
func (c *DCEContext) SealDCE(pre, data, post []byte) ([]byte, error) {
	hdr := wrapHeader(wrapSentByAcceptor|wrapSealed|wrapAcceptorSubkey, dceEC, c.sendSeq)
	// The encrypted header copy carries RRC 0; the token says 28.
	trailer := append(make([]byte, dceEC), hdr...)
	conf, mac, err := kcrypto.EncryptIOV(c.key, usageAcceptorSeal, []kcrypto.IOV{
		{Data: pre, SignOnly: true}, {Data: data}, {Data: post, SignOnly: true}, {Data: trailer}})
	if err != nil {
		return nil, err
	}
	c.sendSeq++
	binary.BigEndian.PutUint16(hdr[6:], dceRRC)
	tok := append(hdr, trailer...)
	tok = append(tok, mac...)
	return append(tok, conf...), nil
}

// UnsealDCE checks and decrypts (in place) a PDU sealed by the initiator.
func (c *DCEContext) UnsealDCE(pre, data, post, tok []byte) error {
	if !isWrapToken(tok) {
		return &WrapError{Reason: "not a Wrap token (RFC 4121 §4.2.6.2)"}
	}
	flags := tok[2]
	if flags&wrapSentByAcceptor != 0 || flags&wrapSealed == 0 {
		return &WrapError{Reason: "a PDU not sealed by the initiator"}
	}
	ec := int(binary.BigEndian.Uint16(tok[4:]))
	rrc := int(binary.BigEndian.Uint16(tok[6:]))
	if ec > 64 || len(tok) != wrapHeaderLen+ec+wrapHeaderLen+12+16 || rrc != dceRRC {
		return &WrapError{Reason: fmt.Sprintf("Wrap token of %d bytes with EC %d and RRC %d (DCE style: RRC %d)", len(tok), ec, rrc, dceRRC)}
	}
	if seq := binary.BigEndian.Uint64(tok[8:16]); seq != c.recvSeq {
		return &WrapError{Reason: fmt.Sprintf("Wrap token out of sequence (%d, expected %d)", seq, c.recvSeq)}
	}
	body := tok[wrapHeaderLen:]
	trailer := append([]byte(nil), body[:ec+wrapHeaderLen]...)
	mac := body[ec+wrapHeaderLen : ec+wrapHeaderLen+12]
	conf := body[ec+wrapHeaderLen+12:]
	if err := kcrypto.DecryptIOV(c.key, usageInitiatorSeal, conf, []kcrypto.IOV{
		{Data: pre, SignOnly: true}, {Data: data}, {Data: post, SignOnly: true}, {Data: trailer}}, mac); err != nil {
		return &WrapError{Reason: "sealed PDU does not decrypt (GSS_S_BAD_SIG)"}
	}
	want := append([]byte(nil), tok[:wrapHeaderLen]...)
	want[6], want[7] = 0, 0
	if !bytes.Equal(trailer[ec:], want) {
		return &WrapError{Reason: "sealed header does not match (GSS_S_BAD_SIG)"}
	}
	c.recvSeq++
	return nil
}
