package dcerpc

import (
	"bytes"
	"encoding/binary"
)

// bind and alter_context (C706 §12.6.4.3, §12.6.4.1): the presentation
// contexts the client proposes, each an interface and the transfer
// syntaxes it can use.
type bindReq struct {
	maxXmit, maxRecv uint16
	assocGroup       uint32
	contexts         []proposedContext
}

type proposedContext struct {
	id       uint16
	abstract SyntaxID
	transfer []SyntaxID
}

// maxContexts bounds the presentation contexts in one bind.
const maxContexts = 64

func parseBind(body []byte) (*bindReq, error) {
	if len(body) < 12 {
		return nil, protoErr("bind body of %d bytes", len(body))
	}
	b := &bindReq{maxXmit: binary.LittleEndian.Uint16(body), maxRecv: binary.LittleEndian.Uint16(body[2:]),
		assocGroup: binary.LittleEndian.Uint32(body[4:])}
	n := int(body[8])
	if n > maxContexts {
		return nil, protoErr("%d presentation contexts (at most %d)", n, maxContexts)
	}
	off := 12
	for i := 0; i < n; i++ {
		if off+24 > len(body) {
			return nil, protoErr("presentation context %d is cut short", i)
		}
		c := proposedContext{id: binary.LittleEndian.Uint16(body[off:]), abstract: parseSyntax(body[off+4:])}
		nts := int(body[off+2])
		off += 24
		if nts == 0 || off+20*nts > len(body) {
			return nil, protoErr("presentation context %d has %d transfer syntaxes", c.id, nts)
		}
		for j := 0; j < nts; j++ {
			c.transfer = append(c.transfer, parseSyntax(body[off:]))
			off += 20
		}
		b.contexts = append(b.contexts, c)
	}
	return b, nil
}

// Context results (C706 §12.6.3.1 p_cont_def_result_t; MS-RPCE 2.2.2.4
// for negotiate_ack).
const (
	resultAcceptance    = 0
	resultProviderRejec = 2
	resultNegotiateAck  = 3

	reasonAbstractNotSupported = 1
	reasonTransferNotSupported = 2
)

type contextResult struct {
	result, reason uint16
	transfer       SyntaxID
}

// bindAck is bind_ack and alter_context_resp: the same body, the latter
// with an empty secondary address (C706 §12.6.4.4, §12.6.4.2).
type bindAck struct {
	maxXmit, maxRecv uint16
	assocGroup       uint32
	secAddr          string // the port the client reached, as a string
	results          []contextResult
}

func (a *bindAck) marshal() []byte {
	b := binary.LittleEndian.AppendUint16(nil, a.maxXmit)
	b = binary.LittleEndian.AppendUint16(b, a.maxRecv)
	b = binary.LittleEndian.AppendUint32(b, a.assocGroup)
	if a.secAddr == "" {
		b = binary.LittleEndian.AppendUint16(b, 0)
	} else {
		b = binary.LittleEndian.AppendUint16(b, uint16(len(a.secAddr)+1))
		b = append(append(b, a.secAddr...), 0)
	}
	for len(b)%4 != 0 { // the result list starts 4-aligned (from the PDU's start, which is 16 bytes before)
		b = append(b, 0)
	}
	b = append(b, byte(len(a.results)), 0, 0, 0)
	for _, r := range a.results {
		b = binary.LittleEndian.AppendUint16(b, r.result)
		b = binary.LittleEndian.AppendUint16(b, r.reason)
		b = r.transfer.append(b)
	}
	return b
}

// bind_nak reasons (C706 §12.6.3.1 p_reject_reason_t).
const (
	nakReasonNotSpecified       = 0
	nakTemporaryCongestion      = 1
	nakProtocolVersionNotSupp   = 4
	nakAuthenticationTypeNotRec = 8
	nakInvalidChecksum          = 9
)

// bindNak refuses a bind: the reason and the one protocol version this
// server speaks (5.0).
func bindNak(reason uint16) []byte {
	b := binary.LittleEndian.AppendUint16(nil, reason)
	return append(b, 1, 5, 0, 0)
}

// isBTFN reports a bind-time feature negotiation "transfer syntax" and
// returns the client's feature bits.
func isBTFN(s SyntaxID) (uint16, bool) {
	if !bytes.Equal(s.UUID[:8], btfnPrefix[:8]) {
		return 0, false
	}
	return binary.LittleEndian.Uint16(s.UUID[8:]), true
}
