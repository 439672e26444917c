package ldap

import (
	"bufio"
	"errors"
	"fmt"
	"io"

	ber "github.com/go-asn1-ber/asn1-ber"
)

// RFC 4511 §4.2–4.14: the protocol operations, by application tag.
const (
	opBindRequest      = 0
	opBindResponse     = 1
	opUnbindRequest    = 2
	opSearchRequest    = 3
	opSearchEntry      = 4
	opSearchDone       = 5
	opModifyRequest    = 6
	opModifyResponse   = 7
	opAddRequest       = 8
	opAddResponse      = 9
	opDelRequest       = 10
	opDelResponse      = 11
	opModDNRequest     = 12
	opModDNResponse    = 13
	opCompareRequest   = 14
	opCompareResponse  = 15
	opAbandonRequest   = 16
	opSearchReference  = 19
	opExtendedRequest  = 23
	opExtendedResponse = 24
)

// MaxMessage bounds one LDAPMessage, as AD's MaxReceiveBuffer does (10 MiB).
const MaxMessage = 10 << 20

// Message is one decoded LDAPMessage (RFC 4511 §4.1.1).
type Message struct {
	ID       int64
	Op       *ber.Packet // the protocolOp, an application-tagged element
	Controls []Control
}

// Control is a request or response control (RFC 4511 §4.1.11).
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

// readFrame reads one BER element with a definite length of at most max
// bytes (RFC 4511 §5.1: definite lengths only).
func readFrame(r *bufio.Reader, max int) ([]byte, error) {
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
	id, ok := intOf(p.Children[0])
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
		return Control{}, protoErr("empty control")
	}
	c := Control{OID: str(p.Children[0])}
	for _, x := range p.Children[1:] {
		switch x.Tag {
		case ber.TagBoolean:
			c.Critical = len(val(x)) == 1 && val(x)[0] != 0
		case ber.TagOctetString:
			c.Value = val(x)
		}
	}
	return c, nil
}

// intOf reads an INTEGER or ENUMERATED element.
func intOf(p *ber.Packet) (int64, bool) {
	if p == nil || len(p.ByteValue) == 0 || len(p.ByteValue) > 8 {
		return 0, false
	}
	v, err := ber.ParseInt64(p.ByteValue)
	return v, err == nil
}

func str(p *ber.Packet) string { return string(val(p)) }

// val is a primitive element's content: asn1-ber keeps it in ByteValue for
// universal tags and only in Data for context and application tags.
func val(p *ber.Packet) []byte {
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

var errShort = errors.New("ldap: request is missing fields")

// child returns p's i-th child or nil.
func child(p *ber.Packet, i int) *ber.Packet {
	if p == nil || i >= len(p.Children) {
		return nil
	}
	return p.Children[i]
}

// envelope wraps a protocolOp and response controls into an LDAPMessage.
func envelope(id int64, op *ber.Packet, controls ...*ber.Packet) []byte {
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

// result builds an LDAPResult-shaped response (RFC 4511 §4.1.9).
func result(op int, code ResultCode, matched, diag string) *ber.Packet {
	p := ber.Encode(ber.ClassApplication, ber.TypeConstructed, ber.Tag(op), nil, "response")
	p.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, int64(code), "resultCode"))
	p.AppendChild(octets(matched))
	p.AppendChild(octets(diag))
	return p
}

func octets(s string) *ber.Packet {
	return ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, s, "")
}

func control(oid string, critical bool, value []byte) *ber.Packet {
	p := ber.NewSequence("Control")
	p.AppendChild(octets(oid))
	if critical {
		p.AppendChild(ber.NewBoolean(ber.ClassUniversal, ber.TypePrimitive, ber.TagBoolean, true, ""))
	}
	if value != nil {
		p.AppendChild(octets(string(value)))
	}
	return p
}
