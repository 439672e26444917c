package ldap

import (
	"bufio"
	"fmt"
	"io"

	ber "github.com/go-asn1-ber/asn1-ber"
)

// RFC 4511 §4.2–4.14: the protocol operations, by application tag.
const (
	OpBindRequest      = 0
	OpBindResponse     = 1
	OpUnbindRequest    = 2
	OpSearchRequest    = 3
	OpSearchEntry      = 4
	OpSearchDone       = 5
	OpModifyRequest    = 6
	OpModifyResponse   = 7
	OpAddRequest       = 8
	OpAddResponse      = 9
	OpDelRequest       = 10
	OpDelResponse      = 11
	OpModDNRequest     = 12
	OpModDNResponse    = 13
	OpCompareRequest   = 14
	OpCompareResponse  = 15
	OpAbandonRequest   = 16
	OpSearchReference  = 19
	OpExtendedRequest  = 23
	OpExtendedResponse = 24
)

// MaxMessage bounds one LDAPMessage, as AD's MaxReceiveBuffer does (10 MiB).
const MaxMessage = 10 << 20

// Message is one decoded LDAPMessage (RFC 4511 §4.1.1).
type Message struct {
	ID       int64
	Op       *ber.Packet // the protocolOp, an application-tagged element
	Controls []Control
}

// Control is a request or response NewControl (RFC 4511 §4.1.11).
type Control struct {
	OID      string
	Critical bool
	Value    []byte
}

// ProtocolError is a message that is not LDAP: the connection is answered with
// a Notice of Disconnection (RFC 4511 §4.4.1) and closed.
type ProtocolError struct{ Reason string }

func (e *ProtocolError) Error() string  { return "ldap: protocol error: " + e.Reason }
func (e *ProtocolError) String() string { return e.Error() }

func protoErr(format string, args ...any) error {
	return &ProtocolError{Reason: fmt.Sprintf(format, args...)}
}

// ReadFrame reads one BER element with a definite length of at most max
// bytes (RFC 4511 §5.1: definite lengths only).
func ReadFrame(r *bufio.Reader, max int) ([]byte, error) {
	tag, err := r.ReadByte()
	if err != nil {
		return nil, err
	}
	if tag != 0x30 {
		return nil, protoErr("message starts with tag 0x%02x, not a SEQUENCE", tag)
	}
	l0, err := r.ReadByte()
	if err != nil {
		return nil, io.ErrUnexpectedEOF
	}
	hdr := []byte{tag, l0}
	n := int(l0)
	if l0&0x80 != 0 {
		k := int(l0 & 0x7f)
		if k == 0 {
			return nil, protoErr("indefinite length")
		}
		if k > 4 {
			return nil, protoErr("length of %d bytes", k)
		}
		n = 0
		for i := 0; i < k; i++ {
			b, err := r.ReadByte()
			if err != nil {
				return nil, io.ErrUnexpectedEOF
			}
			hdr = append(hdr, b)
			n = n<<8 | int(b)
		}
	}
	if n > max {
		return nil, protoErr("message of %d bytes exceeds the %d-byte limit", n, max)
	}
	buf := make([]byte, len(hdr)+n)
	copy(buf, hdr)
	if _, err := io.ReadFull(r, buf[len(hdr):]); err != nil {
		return nil, io.ErrUnexpectedEOF
	}
	return buf, nil
}

// maxDepth bounds the nesting of one message (filters are the deep part).
const maxDepth = 64

// DecodeMessage parses an LDAPMessage; malformed input is a *ProtocolError.
func DecodeMessage(b []byte) (m *Message, err error) {
	if len(b) > MaxMessage+6 {
		return nil, protoErr("message of %d bytes", len(b))
	}
	if d := nesting(b, 0); d < 0 || d > maxDepth {
		return nil, protoErr("message nested deeper than %d", maxDepth)
	}
	defer func() {
		if r := recover(); r != nil {
			m, err = nil, protoErr("malformed BER: %v", r)
		}
	}()
	p, err := ber.DecodePacketErr(b)
	if err != nil {
		return nil, protoErr("%v", err)
	}
	if p.ClassType != ber.ClassUniversal || p.Tag != ber.TagSequence || len(p.Children) < 2 {
		return nil, protoErr("not an LDAPMessage")
	}
	id, ok := Int(p.Children[0])
	if !ok || id < 0 || id > 1<<31-1 {
		return nil, protoErr("bad messageID")
	}
	op := p.Children[1]
	if op.ClassType != ber.ClassApplication {
		return nil, protoErr("protocolOp is not application-tagged")
	}
	m = &Message{ID: id, Op: op}
	if len(p.Children) > 2 {
		c := p.Children[2]
		if c.ClassType != ber.ClassContext || c.Tag != 0 {
			return nil, protoErr("unexpected element after protocolOp")
		}
		for _, cp := range c.Children {
			ctl, err := decodeControl(cp)
			if err != nil {
				return nil, err
			}
			m.Controls = append(m.Controls, ctl)
		}
	}
	return m, nil
}

// nesting returns the constructed-depth of the BER in b (-1 when it is not
// well-formed), so a hostile filter cannot recurse the decoder deep.
func nesting(b []byte, depth int) int {
	if depth > maxDepth {
		return depth
	}
	max := depth
	for len(b) > 0 {
		if len(b) < 2 {
			return -1
		}
		tag := b[0]
		if tag&0x1f == 0x1f {
			return -1 // LDAP uses no high tags
		}
		n, hl := int(b[1]), 2
		if b[1]&0x80 != 0 {
			k := int(b[1] & 0x7f)
			if k == 0 || k > 4 || len(b) < 2+k {
				return -1
			}
			n = 0
			for _, c := range b[2 : 2+k] {
				n = n<<8 | int(c)
			}
			hl = 2 + k
		}
		if n < 0 || hl+n > len(b) {
			return -1
		}
		if tag&0x20 != 0 {
			d := nesting(b[hl:hl+n], depth+1)
			if d < 0 {
				return -1
			}
			if d > max {
				max = d
			}
		}
		b = b[hl+n:]
	}
	return max
}

func decodeControl(p *ber.Packet) (Control, error) {
	if len(p.Children) == 0 {
		return Control{}, protoErr("empty NewControl")
	}
	c := Control{OID: Str(p.Children[0])}
	for _, x := range p.Children[1:] {
		switch x.Tag {
		case ber.TagBoolean:
			c.Critical = len(Val(x)) == 1 && Val(x)[0] != 0
		case ber.TagOctetString:
			c.Value = Val(x)
		}
	}
	return c, nil
}

// Int reads an INTEGER or ENUMERATED element.
func Int(p *ber.Packet) (int64, bool) {
	if p == nil || len(p.ByteValue) == 0 || len(p.ByteValue) > 8 {
		return 0, false
	}
	v, err := ber.ParseInt64(p.ByteValue)
	return v, err == nil
}

func Str(p *ber.Packet) string { return string(Val(p)) }

// Val is a primitive element's content: asn1-ber keeps it in ByteValue for
// universal tags and only in Data for context and application tags.
func Val(p *ber.Packet) []byte {
	switch {
	case p == nil:
		return nil
	case p.ByteValue != nil:
		return p.ByteValue
	case p.Data != nil:
		return p.Data.Bytes()
	}
	return nil
}

// Child returns p's i-th Child or nil.
func Child(p *ber.Packet, i int) *ber.Packet {
	if p == nil || i >= len(p.Children) {
		return nil
	}
	return p.Children[i]
}

// Envelope wraps a protocolOp and response controls into an LDAPMessage.
func Envelope(id int64, op *ber.Packet, controls ...*ber.Packet) []byte {
	m := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "LDAPMessage")
	m.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, id, "messageID"))
	m.AppendChild(op)
	if len(controls) > 0 {
		c := ber.Encode(ber.ClassContext, ber.TypeConstructed, 0, nil, "controls")
		for _, x := range controls {
			c.AppendChild(x)
		}
		m.AppendChild(c)
	}
	return m.Bytes()
}

// Result builds an LDAPResult-shaped response (RFC 4511 §4.1.9).
func Result(op int, code ResultCode, matched, diag string) *ber.Packet {
	p := ber.Encode(ber.ClassApplication, ber.TypeConstructed, ber.Tag(op), nil, "response")
	p.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, int64(code), "resultCode"))
	p.AppendChild(Octets(matched))
	p.AppendChild(Octets(diag))
	return p
}

func Octets(s string) *ber.Packet {
	return ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, s, "")
}

func NewControl(oid string, critical bool, value []byte) *ber.Packet {
	p := ber.NewSequence("Control")
	p.AppendChild(Octets(oid))
	if critical {
		p.AppendChild(ber.NewBoolean(ber.ClassUniversal, ber.TypePrimitive, ber.TagBoolean, true, ""))
	}
	if value != nil {
		p.AppendChild(Octets(string(value)))
	}
	return p
}

// NoticeOfDisconnection is the unsolicited notification of RFC 4511 §4.4.1.
func NoticeOfDisconnection(code ResultCode, diag string) *ber.Packet {
	p := Result(OpExtendedResponse, code, "", diag)
	p.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 10, "1.3.6.1.4.1.1466.20036", "responseName"))
	return p
}
