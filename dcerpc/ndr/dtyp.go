package ndr

import (
	"fmt"

	"github.com/doublehop/doublehop/dtyp"
)

// MS-DTYP's constructed types as NDR carries them (the PAC's
// KERB_VALIDATION_INFO, Netlogon's and SAMR's structures).

// UnicodeStringHeader is the fixed part of an RPC_UNICODE_STRING (MS-DTYP
// 2.3.10): Length and MaximumLength in bytes, and the Buffer pointer whose
// characters come with the deferred referents.
type UnicodeStringHeader struct {
	Length, MaximumLength uint16
	Ptr                   uint32
}

// UnicodeString writes an RPC_UNICODE_STRING: its header in place, its
// characters (a conformant varying WCHAR array, no terminator) deferred.
func (w *Writer) UnicodeString(s string) {
	b := dtyp.UTF16LE(s)
	if len(b) > 0xfffe {
		w.fail(fmt.Errorf("ndr: a string of %d UTF-16 units is too long for RPC_UNICODE_STRING", len(b)/2))
		return
	}
	w.U16(uint16(len(b)))
	w.U16(uint16(len(b)))
	if len(b) == 0 {
		w.Ref(false, nil) // no closure to allocate for an empty string
		return
	}
	w.Ref(true, func() {
		n := uint32(len(b) / 2)
		w.U32(n) // maximum count
		w.U32(0) // offset
		w.U32(n) // actual count
		w.Raw(b)
	})
}

// UnicodeStringHeader reads the fixed part of an RPC_UNICODE_STRING.
func (r *Reader) UnicodeStringHeader() UnicodeStringHeader {
	return UnicodeStringHeader{Length: r.U16(), MaximumLength: r.U16(), Ptr: r.U32()}
}

// UnicodeString reads the deferred characters of h ("" for a NULL Buffer).
func (r *Reader) UnicodeString(h UnicodeStringHeader) string {
	if h.Ptr == 0 {
		return ""
	}
	maxCount, off, n := r.U32(), r.U32(), r.U32()
	if r.err == nil && (off != 0 || n > maxCount) {
		r.Failf("a string with offset %d and %d of %d units", off, n, maxCount)
	}
	if r.err != nil || !r.need(2*int(n)) {
		return ""
	}
	b := r.b[r.off : r.off+2*int(n)]
	r.off += len(b)
	return dtyp.FromUTF16LE(b)
}

// SID writes an RPC_SID (MS-DTYP 2.4.2.3): its conformant count first.
func (w *Writer) SID(s dtyp.SID) {
	w.U32(uint32(len(s.Subs)))
	w.Raw(s.Binary())
}

// SID reads an RPC_SID.
func (r *Reader) SID() dtyp.SID {
	n := r.U32()
	if !r.need(8) {
		return dtyp.SID{}
	}
	if uint32(r.b[r.off+1]) != n {
		r.Failf("a SID of %d sub-authorities with conformance %d", r.b[r.off+1], n)
		return dtyp.SID{}
	}
	if !r.need(8 + 4*int(n)) {
		return dtyp.SID{}
	}
	s, used, err := dtyp.ParseBinarySID(r.b[r.off : r.off+8+4*int(n)])
	if err != nil {
		r.Failf("%v", err)
		return dtyp.SID{}
	}
	r.off += used
	return s
}
