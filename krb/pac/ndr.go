package pac

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf16"

	"github.com/doublehop/doublehop/dtyp"
)

// A small NDR (DCE 1.1 RPC chapter 14, MS-RPCE 2.2.5) codec for the PAC buffers
// that are type-serialized: little-endian, unique pointers with referent IDs,
// deferred referents written depth-first after the structure that holds the
// pointer, conformant(-varying) arrays with their counts, RPC_UNICODE_STRING and
// RPC_SID. Just what KERB_VALIDATION_INFO and S4U_DELEGATION_INFO need.

var errNDR = errors.New("malformed NDR")

// ndrWriter builds an NDR stream; alignment is relative to the start of the
// stream, which follows the 16-byte type-serialization headers (a multiple of 8).
type ndrWriter struct {
	b     []byte
	ref   uint32   // next referent ID
	queue []func() // referents deferred at the current level
	err   error
}

func (w *ndrWriter) align(n int) {
	for len(w.b)%n != 0 {
		w.b = append(w.b, 0)
	}
}

func (w *ndrWriter) u16(v uint16) { w.align(2); w.b = binary.LittleEndian.AppendUint16(w.b, v) }
func (w *ndrWriter) u32(v uint32) { w.align(4); w.b = binary.LittleEndian.AppendUint32(w.b, v) }

// filetime writes a FILETIME (MS-DTYP 2.3.3): two ULONGs, low part first.
func (w *ndrWriter) filetime(v uint64) { w.u32(uint32(v)); w.u32(uint32(v >> 32)) }

// ptr writes a unique pointer: 0 when referent is nil, else a fresh referent ID,
// and defers the referent (DCE 1.1 14.3.12.3 embedded pointers).
func (w *ndrWriter) ptr(referent func()) {
	if referent == nil {
		w.u32(0)
		return
	}
	w.u32(w.ref)
	w.ref += 4
	w.queue = append(w.queue, referent)
}

// flush writes the deferred referents in order, each followed by its own.
func (w *ndrWriter) flush() {
	q := w.queue
	w.queue = nil
	for _, f := range q {
		f()
		w.flush()
	}
}

// ustr writes an RPC_UNICODE_STRING (MS-DTYP 2.3.10): Length, MaximumLength
// (bytes, no terminator) and a pointer to a conformant varying WCHAR array.
func (w *ndrWriter) ustr(s string) {
	var u []uint16
	if isASCII(s) {
		u = make([]uint16, len(s))
		for i := 0; i < len(s); i++ {
			u[i] = uint16(s[i])
		}
	} else {
		u = utf16.Encode([]rune(s))
	}
	if len(u) > 0x7fff {
		w.err = fmt.Errorf("string of %d UTF-16 units is too long for RPC_UNICODE_STRING", len(u))
		return
	}
	w.u16(uint16(2 * len(u)))
	w.u16(uint16(2 * len(u)))
	if len(u) == 0 {
		w.ptr(nil)
		return
	}
	w.ptr(func() {
		w.u32(uint32(len(u))) // maximum count
		w.u32(0)              // offset
		w.u32(uint32(len(u))) // actual count
		for _, c := range u {
			w.u16(c)
		}
	})
}

// sid writes an RPC_SID (MS-DTYP 2.4.2.3): the conformant count comes first.
func (w *ndrWriter) sid(s dtyp.SID) {
	w.u32(uint32(len(s.Subs)))
	w.b = append(w.b, s.Binary()...)
}

// ndrSerialize wraps a top-level structure in MS-RPCE 2.2.6 type serialization
// version 1: common header, private header, the unique pointer to the
// structure, the structure and its deferred data, padded to 8.
func ndrSerialize(body func(w *ndrWriter)) ([]byte, error) {
	// The 16 header bytes are reserved in front; being a multiple of 8 they
	// leave every alignment of the stream unchanged.
	w := &ndrWriter{ref: 0x00020000, b: make([]byte, 16, 512)}
	w.ptr(func() { body(w) })
	w.flush()
	w.align(8)
	if w.err != nil {
		return nil, w.err
	}
	copy(w.b, []byte{1, 0x10, 8, 0, 0xcc, 0xcc, 0xcc, 0xcc}) // version 1, little-endian, header length 8, filler
	binary.LittleEndian.PutUint32(w.b[8:], uint32(len(w.b)-16))
	binary.LittleEndian.PutUint32(w.b[12:], 0)
	return w.b, nil
}

// ndrReader reads an NDR stream with bounds checks. Errors are sticky: after
// the first one every read returns zero values.
type ndrReader struct {
	b   []byte
	off int
	err error
}

// ndrDeserialize checks the type-serialization headers of b and returns a
// reader positioned after the non-null top-level pointer.
func ndrDeserialize(b []byte) (*ndrReader, error) {
	if len(b) < 16 || b[0] != 1 || b[1] != 0x10 || binary.LittleEndian.Uint16(b[2:]) != 8 {
		return nil, fmt.Errorf("%w: bad type serialization header", errNDR)
	}
	n := binary.LittleEndian.Uint32(b[8:])
	if uint64(n) > uint64(len(b)-16) {
		return nil, fmt.Errorf("%w: object length %d beyond buffer", errNDR, n)
	}
	r := &ndrReader{b: b[16 : 16+int(n)]}
	if r.u32() == 0 {
		return nil, fmt.Errorf("%w: null top-level pointer", errNDR)
	}
	return r, r.err
}

func (r *ndrReader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: "+format, append([]any{errNDR}, args...)...)
	}
}

func (r *ndrReader) take(n, align int) []byte {
	if r.err != nil {
		return nil
	}
	if p := r.off % align; p != 0 {
		r.off += align - p
	}
	if n < 0 || r.off > len(r.b) || n > len(r.b)-r.off {
		r.fail("truncated at offset %d", r.off)
		return nil
	}
	r.off += n
	return r.b[r.off-n : r.off]
}

func (r *ndrReader) skip(n int) { r.take(n, 4) }

func (r *ndrReader) u16() uint16 {
	if b := r.take(2, 2); b != nil {
		return binary.LittleEndian.Uint16(b)
	}
	return 0
}

func (r *ndrReader) u32() uint32 {
	if b := r.take(4, 4); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}

// count bounds an array count read from the input by the bytes left, so no
// allocation exceeds the input.
func (r *ndrReader) count(n uint32, elemSize int) int {
	if r.err == nil && uint64(n)*uint64(elemSize) > uint64(len(r.b)-r.off) {
		r.fail("count %d exceeds the data", n)
	}
	if r.err != nil {
		return 0
	}
	return int(n)
}

// ustrHdr is the fixed part of an RPC_UNICODE_STRING; its characters follow later.
type ustrHdr struct{ ptr uint32 }

func (r *ndrReader) ustrHdr() ustrHdr {
	r.u16() // Length
	r.u16() // MaximumLength
	return ustrHdr{ptr: r.u32()}
}

// ustr reads the deferred characters of h (conformant varying array).
func (r *ndrReader) ustr(h ustrHdr) string {
	if h.ptr == 0 {
		return ""
	}
	maxCount, off, n := r.u32(), r.u32(), r.u32()
	if r.err == nil && (off != 0 || n > maxCount) {
		r.fail("bad string bounds (max %d offset %d count %d)", maxCount, off, n)
	}
	m := r.count(n, 2)
	if r.err == nil && m > 0 && r.off%2 == 0 { // the units in one read, ASCII without a detour
		if s, ok := dtyp.ASCIIFromUTF16LE(r.b[r.off : r.off+2*m]); ok {
			r.off += 2 * m
			return s
		}
	}
	u := make([]uint16, m)
	for i := range u {
		u[i] = r.u16()
	}
	return string(utf16.Decode(u))
}

// sid reads an RPC_SID.
func (r *ndrReader) sid() dtyp.SID {
	n := r.u32()
	start := r.off
	b := r.take(8, 1)
	if r.err == nil && uint32(b[1]) != n {
		r.fail("SID count %d differs from conformance %d", b[1], n)
	}
	r.take(4*r.count(n, 4), 1)
	if r.err != nil {
		return dtyp.SID{}
	}
	s, _, err := dtyp.ParseBinarySID(r.b[start:r.off])
	if err != nil {
		r.fail("%v", err)
	}
	return s
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// fromUTF16LE decodes UTF-16LE; an odd length is an error.
func fromUTF16LE(b []byte) (string, error) {
	if len(b)%2 != 0 {
		return "", errors.New("odd UTF-16 length")
	}
	return dtyp.FromUTF16LE(b), nil
}
