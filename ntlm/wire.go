package ntlm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/doublehop/doublehop/dtyp"
)

// Signature starts every NTLMSSP message (MS-NLMP 2.2.1).
var Signature = []byte("NTLMSSP\x00")

// Message types.
const (
	TypeNegotiate    uint32 = 1
	TypeChallenge    uint32 = 2
	TypeAuthenticate uint32 = 3
)

// MaxMessage bounds one message (IIS and SQL Server take far less).
const MaxMessage = 16 << 10

// ErrMalformed is a message that does not parse.
var ErrMalformed = errors.New("ntlm: malformed message")

// Is reports whether b is an NTLMSSP message.
func Is(b []byte) bool { return bytes.HasPrefix(b, Signature) }

// TypeOf returns the message type of an NTLMSSP message, or 0.
func TypeOf(b []byte) uint32 {
	if len(b) < 12 || !Is(b) {
		return 0
	}
	return binary.LittleEndian.Uint32(b[8:])
}

// Version is the 8-byte VERSION structure (MS-NLMP 2.2.2.10).
type Version struct {
	Major, Minor uint8
	Build        uint16
	Revision     uint8 // NTLMSSP_REVISION_W2K3 = 15
}

// DefaultVersion is Windows Server 2022's (10.0.20348), NTLM revision 15.
var DefaultVersion = Version{Major: 10, Minor: 0, Build: 20348, Revision: 15}

func (v Version) append(b []byte) []byte {
	b = append(b, v.Major, v.Minor)
	b = binary.LittleEndian.AppendUint16(b, v.Build)
	return append(b, 0, 0, 0, v.Revision)
}

func parseVersion(b []byte) Version {
	return Version{Major: b[0], Minor: b[1], Build: binary.LittleEndian.Uint16(b[2:]), Revision: b[7]}
}

// field is a (len, maxlen, offset) descriptor.
type field struct{ len, off int }

// reader checks a message header and reads payload fields, bounded by the message.
type reader struct {
	b   []byte
	min int // the lowest payload offset seen (where the fixed header must end)
}

func newReader(b []byte, typ uint32, fixed int) (*reader, error) {
	if len(b) > MaxMessage {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrMalformed, len(b), MaxMessage)
	}
	if len(b) < fixed || !Is(b) || binary.LittleEndian.Uint32(b[8:]) != typ {
		return nil, fmt.Errorf("%w: not an NTLMSSP type %d message", ErrMalformed, typ)
	}
	return &reader{b: b, min: len(b)}, nil
}

func (r *reader) field(at int) (field, error) {
	l := int(binary.LittleEndian.Uint16(r.b[at:]))
	off := int(binary.LittleEndian.Uint32(r.b[at+4:]))
	if l == 0 {
		return field{}, nil
	}
	if off < 0 || off > len(r.b) || l > len(r.b)-off {
		return field{}, fmt.Errorf("%w: field at %d (offset %d, %d bytes) outside the %d-byte message", ErrMalformed, at, off, l, len(r.b))
	}
	if off < r.min {
		r.min = off
	}
	return field{len: l, off: off}, nil
}

func (r *reader) bytes(f field) []byte {
	if f.len == 0 {
		return nil
	}
	return append([]byte(nil), r.b[f.off:f.off+f.len]...)
}

func (r *reader) str(f field, unicode bool) (string, error) {
	b := r.bytes(f)
	if !unicode {
		return string(b), nil
	}
	if len(b)%2 != 0 {
		return "", fmt.Errorf("%w: a UTF-16 string of odd length", ErrMalformed)
	}
	return dtyp.FromUTF16LE(b), nil
}

// writer lays out a message: the fixed header, then the payload in order.
type writer struct {
	b       []byte
	payload []byte
	fixed   int
}

func newWriter(typ uint32, fixed int) *writer {
	w := &writer{b: make([]byte, fixed), fixed: fixed}
	copy(w.b, Signature)
	binary.LittleEndian.PutUint32(w.b[8:], typ)
	return w
}

func (w *writer) field(at int, data []byte) {
	binary.LittleEndian.PutUint16(w.b[at:], uint16(len(data)))
	binary.LittleEndian.PutUint16(w.b[at+2:], uint16(len(data)))
	binary.LittleEndian.PutUint32(w.b[at+4:], uint32(w.fixed+len(w.payload)))
	w.payload = append(w.payload, data...)
}

func (w *writer) bytes() []byte { return append(w.b, w.payload...) }

// oemOrUnicode encodes s as the negotiated character set.
func oemOrUnicode(s string, unicode bool) []byte {
	if unicode {
		return dtyp.UTF16LE(s)
	}
	return []byte(s)
}
