package gss

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/doublehop/doublehop/krb/der"
)

// Mech is the GSS mechanism a token was sent with.
type Mech int

// Mechanisms and token shapes the acceptor understands.
const (
	MechUnknown  Mech = iota
	MechKRB5          // 1.2.840.113554.1.2.2 (RFC 1964/4121)
	MechMSKRB5        // 1.2.840.48018.1.2.2 (what Windows clients name in SPNEGO)
	MechNTLM          // 1.3.6.1.4.1.311.2.2.10
	MechRawAPReq      // a bare AP-REQ with no GSS framing
)

func (m Mech) String() string {
	switch m {
	case MechKRB5:
		return "krb5"
	case MechMSKRB5:
		return "ms-krb5"
	case MechNTLM:
		return "ntlm"
	case MechRawAPReq:
		return "ap-req"
	}
	return "unknown"
}

// DER-encoded OIDs (tag, length, value).
var (
	oidKRB5   = []byte{0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02}
	oidMSKRB5 = []byte{0x06, 0x09, 0x2a, 0x86, 0x48, 0x82, 0xf7, 0x12, 0x01, 0x02, 0x02}
	oidSPNEGO = []byte{0x06, 0x06, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x02}
	oidNTLM   = []byte{0x06, 0x0a, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x02, 0x0a}
)

func mechOf(oid []byte) Mech {
	switch {
	case bytes.Equal(oid, oidKRB5):
		return MechKRB5
	case bytes.Equal(oid, oidMSKRB5):
		return MechMSKRB5
	case bytes.Equal(oid, oidNTLM):
		return MechNTLM
	}
	return MechUnknown
}

func (m Mech) oid() []byte {
	switch m {
	case MechMSKRB5:
		return oidMSKRB5
	case MechNTLM:
		return oidNTLM
	}
	return oidKRB5
}

// krb5 GSS token IDs (RFC 4121 §4.1).
var (
	tokAPReq = []byte{0x01, 0x00}
	tokAPRep = []byte{0x02, 0x00}
	tokError = []byte{0x03, 0x00}
)

// ErrNotKerberos is returned for tokens that carry no Kerberos at all: NTLMSSP,
// an empty blob, or SPNEGO offering only other mechanisms.
var ErrNotKerberos = errors.New("no Kerberos token (NTLM or no credential)")

// WrapKRB5 frames a krb5 message as a GSS InitialContextToken (RFC 2743 §3.1,
// RFC 4121 §4.1): [APPLICATION 0] { OID, TOK_ID, message }.
func WrapKRB5(m Mech, tokID []byte, msg []byte) []byte {
	return der.App(0, m.oid(), tokID, msg)
}

// unwrapKRB5 strips the GSS framing of a krb5 token and returns the mech, the
// token ID and the inner message.
func unwrapKRB5(b []byte) (Mech, []byte, []byte, error) {
	t, rest, err := der.Read(b)
	if err != nil || len(rest) != 0 || t.Class != 1 || t.Tag != 0 {
		return MechUnknown, nil, nil, der.ErrMalformed
	}
	o, inner, err := der.Read(t.Content)
	if err != nil || o.Tag != 6 {
		return MechUnknown, nil, nil, der.ErrMalformed
	}
	m := mechOf(o.Full)
	if m != MechKRB5 && m != MechMSKRB5 {
		return m, nil, nil, fmt.Errorf("GSS token for mechanism %x", o.Full)
	}
	if len(inner) < 2 {
		return m, nil, nil, der.ErrMalformed
	}
	return m, inner[:2], inner[2:], nil
}

// NegTokenInit is SPNEGO's first token (RFC 4178 §4.2.1).
type NegTokenInit struct {
	MechTypes    [][]byte // DER OIDs as sent
	MechTypesDER []byte   // the MechTypeList as sent: what mechListMIC signs (RFC 4178 §5)
	ReqFlags     []byte
	MechToken    []byte
	MIC          []byte
}

// FirstMech is the initiator's preferred mechanism (its optimistic token's).
func (n *NegTokenInit) FirstMech() Mech { return mechOf(n.MechTypes[0]) }

// Offers reports whether the initiator lists m.
func (n *NegTokenInit) Offers(m Mech) bool {
	for _, o := range n.MechTypes {
		if mechOf(o) == m {
			return true
		}
	}
	return false
}

// ParseNegTokenInit decodes SPNEGO's first token (RFC 4178 §4.2.1).
func ParseNegTokenInit(b []byte) (*NegTokenInit, error) { return parseSPNEGO(b) }

// parseSPNEGO decodes an initial SPNEGO token: either [APPLICATION 0]{SPNEGO
// OID, [0] NegTokenInit} or a bare [0] NegTokenInit (some clients, e.g.
// Teleport, send the latter inside TDS).
func parseSPNEGO(b []byte) (*NegTokenInit, error) {
	t, rest, err := der.Read(b)
	if err != nil || len(rest) != 0 {
		return nil, der.ErrMalformed
	}
	body := t.Full
	if t.Class == 1 && t.Tag == 0 {
		o, in, err := der.Read(t.Content)
		if err != nil || !bytes.Equal(o.Full, oidSPNEGO) {
			return nil, der.ErrMalformed
		}
		body = in
	}
	seq, rest, err := der.ExplicitSeq(body, 0)
	if err != nil || len(rest) != 0 {
		return nil, der.ErrMalformed
	}
	n := &NegTokenInit{}
	err = der.Fields(seq, func(tag int, inner der.TLV) error {
		switch tag {
		case 0:
			n.MechTypesDER = inner.Full
			for q := inner.Content; len(q) > 0; {
				o, more, err := der.Read(q)
				if err != nil || o.Tag != 6 {
					return der.ErrMalformed
				}
				q = more
				if len(n.MechTypes) < 16 {
					n.MechTypes = append(n.MechTypes, o.Full)
				}
			}
		case 1:
			n.ReqFlags = inner.Content
		case 2:
			n.MechToken = inner.Content
		case 3:
			n.MIC = inner.Content
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(n.MechTypes) == 0 {
		return nil, fmt.Errorf("SPNEGO NegTokenInit without mechTypes")
	}
	return n, nil
}

// NegState values (RFC 4178 §4.2.2).
const (
	NegAcceptCompleted  = 0
	NegAcceptIncomplete = 1
	NegReject           = 2
)

// MarshalNegTokenResp builds the acceptor's SPNEGO reply: [1] NegTokenResp
// (RFC 4178 §4.2.2). supportedMech is included whenever mech is Kerberos.
func MarshalNegTokenResp(state int, mech Mech, responseToken []byte) []byte {
	return MarshalNegTokenRespMIC(state, mech, responseToken, nil)
}

// MarshalNegTokenRespMIC is MarshalNegTokenResp with a mechListMIC [3]
// (RFC 4178 §4.2.2, §5). A state below 0 leaves negState out (the
// initiator's continuation tokens); MechUnknown leaves supportedMech out.
func MarshalNegTokenRespMIC(state int, mech Mech, responseToken, mechListMIC []byte) []byte {
	var parts [][]byte
	if state >= 0 {
		parts = append(parts, der.Ctx(0, der.Encode(0x0a, []byte{byte(state)})))
	}
	if mech == MechKRB5 || mech == MechMSKRB5 || mech == MechNTLM {
		parts = append(parts, der.Ctx(1, mech.oid()))
	}
	if len(responseToken) > 0 {
		parts = append(parts, der.Ctx(2, der.Octets(responseToken)))
	}
	if len(mechListMIC) > 0 {
		parts = append(parts, der.Ctx(3, der.Octets(mechListMIC)))
	}
	return der.Ctx(1, der.Seq(parts...))
}

// NegTokenResp is the acceptor's reply as a client sees it.
type NegTokenResp struct {
	State         int // -1 when absent
	Mech          Mech
	ResponseToken []byte
	MechListMIC   []byte
}

// ParseNegTokenResp decodes [1] NegTokenResp.
func ParseNegTokenResp(b []byte) (*NegTokenResp, error) {
	seq, _, err := der.ExplicitSeq(b, 1)
	if err != nil {
		return nil, err
	}
	r := &NegTokenResp{State: -1}
	err = der.Fields(seq, func(tag int, inner der.TLV) error {
		switch tag {
		case 0:
			if len(inner.Content) == 1 {
				r.State = int(inner.Content[0])
			}
		case 1:
			r.Mech = mechOf(inner.Full)
		case 2:
			r.ResponseToken = inner.Content
		case 3:
			r.MechListMIC = inner.Content
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// MarshalNegTokenInitMechs builds a NegTokenInit offering mechs in order,
// with token as the optimistic token of the first, and returns the
// MechTypeList it signed up to (for a later mechListMIC).
func MarshalNegTokenInitMechs(mechs []Mech, token []byte) (tok, mechTypes []byte) {
	var oids [][]byte
	for _, m := range mechs {
		oids = append(oids, m.oid())
	}
	mechTypes = der.Seq(oids...)
	init := der.Seq(der.Ctx(0, mechTypes), der.Ctx(2, der.Octets(token)))
	return der.App(0, oidSPNEGO, der.Ctx(0, init)), mechTypes
}

// MarshalNegTokenInit builds the initiator's first SPNEGO token offering krb5
// (and MS-krb5 first, as Windows does, when ms is true).
func MarshalNegTokenInit(krb5Token []byte, ms bool) []byte {
	mechs := [][]byte{oidKRB5}
	if ms {
		mechs = [][]byte{oidMSKRB5, oidKRB5}
	}
	init := der.Seq(der.Ctx(0, der.Seq(mechs...)), der.Ctx(2, der.Octets(krb5Token)))
	return der.App(0, oidSPNEGO, der.Ctx(0, init))
}

// IsNTLM reports an NTLMSSP message (raw or first bytes of one).
func IsNTLM(b []byte) bool { return bytes.HasPrefix(b, []byte("NTLMSSP\x00")) }
