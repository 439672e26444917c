// Package ndr is the Network Data Representation, version 2.0 (C706 §14),
// little-endian, as connection-oriented DCE/RPC carries it (transfer syntax
// 8a885d04-1ceb-11c9-9fe8-08002b104860 v2) and as type serialization keeps
// it outside any call (MS-RPCE 2.2.6: the PAC's buffers). It gives the
// primitives and MS-DTYP's constructed types; each interface package writes
// its own messages with them, one function per structure, the way MIDL's
// and pidl's stubs do.
//
// Embedded pointers: a unique pointer is a referent ID in place and its
// referent comes after the structure that holds it (C706 §14.3.12.3), depth
// first — the referents of a referent come before the next sibling's. Writer
// and Reader keep that order with Defer; Flush ends a top-level parameter.
package ndr

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/doublehop/doublehop/dtyp"
)

// Error is malformed NDR: the stub is refused with nca_s_fault_ndr
// (RPC_X_BAD_STUB_DATA) and never half-applied.
type Error struct{ Reason string }

func (e *Error) Error() string  { return "ndr: " + e.Reason }
func (e *Error) String() string { return e.Error() }

// ErrShort is input that ends inside a value.
var ErrShort = &Error{Reason: "stub data ends inside a value"}

// MaxDepth bounds nested referents (a linked list of objects, say).
const MaxDepth = 256

// Writer builds an NDR stream.
type Writer struct {
	buf    []byte
	defer_ []func()
	ref    uint32
	err    error
}

// Err is the first value that could not be written (a string too long for
// its length field, say).
func (w *Writer) Err() error { return w.err }

func (w *Writer) fail(err error) {
	if w.err == nil {
		w.err = err
	}
}

// Bytes is what was written (call Flush first).
func (w *Writer) Bytes() []byte { return w.buf }

// Len is the length so far.
func (w *Writer) Len() int { return len(w.buf) }

// Align pads with zeros to a multiple of n (1, 2, 4 or 8).
func (w *Writer) Align(n int) {
	for len(w.buf)%n != 0 {
		w.buf = append(w.buf, 0)
	}
}

func (w *Writer) U8(v uint8) { w.buf = append(w.buf, v) }

func (w *Writer) U16(v uint16) {
	w.Align(2)
	w.buf = binary.LittleEndian.AppendUint16(w.buf, v)
}

func (w *Writer) U32(v uint32) {
	w.Align(4)
	w.buf = binary.LittleEndian.AppendUint32(w.buf, v)
}

func (w *Writer) U64(v uint64) {
	w.Align(8)
	w.buf = binary.LittleEndian.AppendUint64(w.buf, v)
}

// Raw appends bytes with no alignment (a byte array's elements).
func (w *Writer) Raw(b []byte) { w.buf = append(w.buf, b...) }

// GUID writes a UUID as DCE does (its first three fields little-endian:
// the 16 bytes as Windows keeps them in memory), aligned to 4.
func (w *Writer) GUID(g [16]byte) {
	w.Align(4)
	w.buf = append(w.buf, g[:]...)
}

// Ref writes a unique pointer's referent ID (0 for NULL; 0x00020000,
// 0x00020004, ... as Windows' stubs number them) and defers its referent
// when present.
func (w *Writer) Ref(present bool, referent func()) {
	if !present {
		w.U32(0)
		return
	}
	w.U32(0x00020000 + w.ref)
	w.ref += 4
	w.defer_ = append(w.defer_, referent)
}

// Defer queues a referent to be written after the current construct.
func (w *Writer) Defer(f func()) { w.defer_ = append(w.defer_, f) }

// Flush writes the deferred referents, depth first.
func (w *Writer) Flush() {
	q := w.defer_
	w.defer_ = nil
	for _, f := range q {
		f()
		w.Flush()
	}
}

// Conformant writes an array's maximum count (its size_is).
func (w *Writer) Conformant(n int) { w.U32(uint32(n)) }

// String writes a [string] wchar_t* referent: a conformant varying array
// of UTF-16 units with the terminating NUL (C706 §14.3.4.1).
func (w *Writer) String(s string) {
	b := append(dtyp.UTF16LE(s), 0, 0)
	n := uint32(len(b) / 2)
	w.U32(n)
	w.U32(0)
	w.U32(n)
	w.Raw(b)
}

// Reader parses an NDR stream; every count is checked against what is left.
type Reader struct {
	b      []byte
	off    int
	defer_ []func() error
	depth  int
	err    error
}

// NewReader reads b.
func NewReader(b []byte) *Reader { return &Reader{b: b} }

// Err is the first error met.
func (r *Reader) Err() error { return r.err }

// Offset is the position in the stream.
func (r *Reader) Offset() int { return r.off }

// Remaining is how many bytes are left.
func (r *Reader) Remaining() int { return len(r.b) - r.off }

func (r *Reader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

// Failf records a semantic error (a count out of range, say).
func (r *Reader) Failf(format string, args ...any) {
	r.fail(&Error{Reason: fmt.Sprintf(format, args...)})
}

func (r *Reader) need(n int) bool {
	if r.err != nil {
		return false
	}
	if n < 0 || r.off+n > len(r.b) {
		r.fail(ErrShort)
		return false
	}
	return true
}

// Align skips padding to a multiple of n.
func (r *Reader) Align(n int) {
	p := (n - r.off%n) % n
	if r.need(p) {
		r.off += p
	}
}

func (r *Reader) U8() uint8 {
	if !r.need(1) {
		return 0
	}
	r.off++
	return r.b[r.off-1]
}

func (r *Reader) U16() uint16 {
	r.Align(2)
	if !r.need(2) {
		return 0
	}
	r.off += 2
	return binary.LittleEndian.Uint16(r.b[r.off-2:])
}

func (r *Reader) U32() uint32 {
	r.Align(4)
	if !r.need(4) {
		return 0
	}
	r.off += 4
	return binary.LittleEndian.Uint32(r.b[r.off-4:])
}

func (r *Reader) U64() uint64 {
	r.Align(8)
	if !r.need(8) {
		return 0
	}
	r.off += 8
	return binary.LittleEndian.Uint64(r.b[r.off-8:])
}

// Raw takes n bytes (a copy).
func (r *Reader) Raw(n int) []byte {
	if !r.need(n) {
		return nil
	}
	out := append([]byte(nil), r.b[r.off:r.off+n]...)
	r.off += n
	return out
}

// GUID reads a UUID (16 bytes, aligned to 4).
func (r *Reader) GUID() (g [16]byte) {
	r.Align(4)
	if r.need(16) {
		copy(g[:], r.b[r.off:])
		r.off += 16
	}
	return g
}

// Count reads an array count and checks that count elements of at least
// elem bytes each can still follow, and that it is at most max.
func (r *Reader) Count(elem, limit int) int {
	n := int(r.U32())
	if r.err != nil {
		return 0
	}
	if n > limit || n*elem > r.Remaining() {
		r.Failf("an array of %d elements where at most %d fit", n, min(limit, r.Remaining()/max(elem, 1)))
		return 0
	}
	return n
}

// Ref reads a unique pointer's referent ID and defers reading its referent.
// It reports whether the pointer is non-NULL.
func (r *Reader) Ref(referent func() error) bool {
	id := r.U32()
	if r.err != nil || id == 0 {
		return false
	}
	r.defer_ = append(r.defer_, referent)
	return true
}

// Flush reads the deferred referents, depth first.
func (r *Reader) Flush() error {
	if r.depth > MaxDepth {
		r.Failf("referents nested more than %d deep", MaxDepth)
		return r.err
	}
	q := r.defer_
	r.defer_ = nil
	r.depth++
	defer func() { r.depth-- }()
	for _, f := range q {
		if r.err != nil {
			return r.err
		}
		if err := f(); err != nil {
			r.fail(err)
			return r.err
		}
		if err := r.Flush(); err != nil {
			return err
		}
	}
	return r.err
}

// String reads a [string] wchar_t* referent (conformant varying, NUL-ended).
func (r *Reader) String(maxUnits int) string {
	maxCount := r.Count(0, maxUnits+1)
	offset := r.U32()
	actual := r.Count(2, maxUnits+1)
	if r.err != nil {
		return ""
	}
	if offset != 0 || actual > maxCount {
		r.Failf("a string with offset %d and %d of %d units", offset, actual, maxCount)
		return ""
	}
	b := r.b[r.off : r.off+2*actual]
	r.off += len(b)
	if len(b) >= 2 && b[len(b)-2] == 0 && b[len(b)-1] == 0 {
		b = b[:len(b)-2]
	}
	return dtyp.FromUTF16LE(b)
}

// End ends the parameters: the first error met, if any. Bytes after the
// last parameter are ignored, as Windows' and Samba's servers ignore them
// (Samba's own client sends a DsBind stub with 60 stray bytes after it).
func (r *Reader) End() error { return r.err }

// Is reports whether err is malformed NDR.
func Is(err error) bool {
	var e *Error
	return errors.As(err, &e)
}

// Skip passes over n bytes of fields aligned to align that the caller does
// not use.
func (r *Reader) Skip(n, align int) {
	r.Align(align)
	if r.need(n) {
		r.off += n
	}
}
