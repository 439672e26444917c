package der

import (
	"bytes"
	"errors"
)

// A minimal DER reader/writer for the framing layers gofork's asn1 handles
// poorly (GSS-API tokens, SPNEGO choices, SEQUENCE OF Ticket). Every length is
// checked against the input.

var ErrMalformed = errors.New("malformed DER")

type TLV struct {
	Class       int // 0 universal, 1 application, 2 context, 3 private
	Constructed bool
	Tag         int
	Content     []byte
	Full        []byte
}

// readTLV reads one element with a single-byte tag (tags ≤ 30) and a definite length.
func Read(b []byte) (TLV, []byte, error) {
	if len(b) < 2 {
		return TLV{}, nil, ErrMalformed
	}
	id := b[0]
	if id&0x1f == 0x1f {
		return TLV{}, nil, ErrMalformed
	}
	n, hl := 0, 2
	l := int(b[1])
	switch {
	case l < 0x80:
		n = l
	case l == 0x80 || l > 0x84:
		return TLV{}, nil, ErrMalformed
	default:
		k := l & 0x7f
		if len(b) < 2+k {
			return TLV{}, nil, ErrMalformed
		}
		for i := 0; i < k; i++ {
			n = n<<8 | int(b[2+i])
		}
		if n < 0 {
			return TLV{}, nil, ErrMalformed
		}
		hl = 2 + k
	}
	if n > len(b)-hl {
		return TLV{}, nil, ErrMalformed
	}
	t := TLV{Class: int(id >> 6), Constructed: id&0x20 != 0, Tag: int(id & 0x1f), Content: b[hl : hl+n], Full: b[:hl+n]}
	return t, b[hl+n:], nil
}

func derLen(n int) []byte {
	switch {
	case n < 0x80:
		return []byte{byte(n)}
	case n < 0x100:
		return []byte{0x81, byte(n)}
	case n < 0x10000:
		return []byte{0x82, byte(n >> 8), byte(n)}
	case n < 0x1000000:
		return []byte{0x83, byte(n >> 16), byte(n >> 8), byte(n)}
	}
	return []byte{0x84, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}
}

// derTLV encodes one element with identifier byte id.
func Encode(id byte, parts ...[]byte) []byte {
	var c bytes.Buffer
	for _, p := range parts {
		c.Write(p)
	}
	out := make([]byte, 0, c.Len()+6)
	out = append(out, id)
	out = append(out, derLen(c.Len())...)
	return append(out, c.Bytes()...)
}

func Seq(parts ...[]byte) []byte        { return Encode(0x30, parts...) }
func Ctx(n int, parts ...[]byte) []byte { return Encode(0xa0|byte(n), parts...) }
func App(n int, parts ...[]byte) []byte { return Encode(0x60|byte(n), parts...) }
func Octets(b []byte) []byte            { return Encode(0x04, b) }
func Int(v int64) []byte {
	var b []byte
	for {
		b = append([]byte{byte(v)}, b...)
		if v >= -128 && v < 128 {
			break
		}
		v >>= 8
	}
	return Encode(0x02, b)
}

// ExplicitSeq reads [tag] EXPLICIT SEQUENCE {...} (a CHOICE arm such as
// SPNEGO's NegTokenInit and NegTokenResp) and returns the sequence's content
// and what follows the element.
func ExplicitSeq(b []byte, tag int) (content, rest []byte, err error) {
	choice, rest, err := Read(b)
	if err != nil || choice.Class != 2 || choice.Tag != tag {
		return nil, nil, ErrMalformed
	}
	seq, _, err := Read(choice.Content)
	if err != nil || seq.Tag != 16 {
		return nil, nil, ErrMalformed
	}
	return seq.Content, rest, nil
}

// Fields walks the [n] EXPLICIT fields of a SEQUENCE's content, handing each
// field's tag and inner element to f.
func Fields(content []byte, f func(tag int, v TLV) error) error {
	for p := content; len(p) > 0; {
		fld, rest, err := Read(p)
		if err != nil || fld.Class != 2 {
			return ErrMalformed
		}
		inner, _, err := Read(fld.Content)
		if err != nil {
			return ErrMalformed
		}
		if err := f(fld.Tag, inner); err != nil {
			return err
		}
		p = rest
	}
	return nil
}

// MinimalIntegers rewrites every INTEGER in b to its minimal encoding
// (X.690 §8.3.2), the one DER demands and gofork's decoder insists on. BER
// senders such as pyasn1 (impacket) write -128 as FF 80; Windows KDCs accept
// that, so the lab decodes a canonical copy. changed reports a rewrite.
func MinimalIntegers(b []byte) (out []byte, changed bool, err error) {
	for len(b) > 0 {
		t, rest, err := Read(b)
		if err != nil {
			return nil, false, err
		}
		id := t.Full[0]
		switch {
		case t.Constructed:
			c, ch, err := MinimalIntegers(t.Content)
			if err != nil {
				return nil, false, err
			}
			if ch {
				out, changed = append(out, Encode(id, c)...), true
			} else {
				out = append(out, t.Full...)
			}
		case t.Class == 0 && t.Tag == 2:
			c := t.Content
			for len(c) > 1 && ((c[0] == 0x00 && c[1]&0x80 == 0) || (c[0] == 0xff && c[1]&0x80 != 0)) {
				c = c[1:]
			}
			if len(c) != len(t.Content) {
				out, changed = append(out, Encode(id, c)...), true
			} else {
				out = append(out, t.Full...)
			}
		default:
			out = append(out, t.Full...)
		}
		b = rest
	}
	return out, changed, nil
}
