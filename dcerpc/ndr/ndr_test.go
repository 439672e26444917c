package ndr

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/doublehop/doublehop/dtyp"
)

// An RPC_UNICODE_STRING and an RPC_SID behind unique pointers, type
// serialized, read back in pointer order; referents numbered as Windows'
// stubs number them.
func TestSerializeRoundTrip(t *testing.T) {
	sid, err := dtyp.ParseSID("S-1-5-21-1-2-3-1103")
	if err != nil {
		t.Fatal(err)
	}
	b, err := Serialize(func(w *Writer) {
		w.UnicodeString("bob")
		w.UnicodeString("Bøb Ümlaut 🙂")
		w.UnicodeString("")
		w.Ref(true, func() { w.SID(sid) })
	})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b[:4], []byte{1, 0x10, 8, 0}) || len(b)%8 != 0 || int(binary.LittleEndian.Uint32(b[8:])) != len(b)-16 {
		t.Fatalf("headers % x, length %d", b[:16], len(b))
	}
	if id := binary.LittleEndian.Uint32(b[16:]); id != 0x00020000 {
		t.Fatalf("top-level referent %#x, want 0x00020000", id)
	}
	r, err := Deserialize(b)
	if err != nil {
		t.Fatal(err)
	}
	h1, h2, h3 := r.UnicodeStringHeader(), r.UnicodeStringHeader(), r.UnicodeStringHeader()
	sidPtr := r.U32()
	if h1.Length != 6 || h3.Ptr != 0 || sidPtr == 0 {
		t.Fatalf("headers %+v %+v, sid pointer %#x", h1, h3, sidPtr)
	}
	s1, s2, s3 := r.UnicodeString(h1), r.UnicodeString(h2), r.UnicodeString(h3)
	got := r.SID()
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	if s1 != "bob" || s2 != "Bøb Ümlaut 🙂" || s3 != "" || got.String() != sid.String() {
		t.Fatalf("read back %q %q %q %s", s1, s2, s3, got)
	}
}

// Every truncation of a serialized object is refused, never a panic: in
// the headers, and anywhere in the stream the object's length still claims.
func TestDeserializeTruncated(t *testing.T) {
	b, err := Serialize(func(w *Writer) { w.UnicodeString("svc_iispool"); w.U32(7) })
	if err != nil {
		t.Fatal(err)
	}
	read := func(r *Reader) error {
		h := r.UnicodeStringHeader()
		r.U32()
		r.UnicodeString(h)
		return r.Err()
	}
	full := NewReader(b[16:])
	full.U32()
	if err := read(full); err != nil {
		t.Fatal(err)
	}
	for n := 0; n < 16+full.Offset(); n++ {
		c := append([]byte(nil), b[:n]...)
		if n >= 16 {
			binary.LittleEndian.PutUint32(c[8:], uint32(n-16)) // the header agrees with the cut
		}
		r, err := Deserialize(c)
		if err == nil {
			err = read(r)
		}
		if err == nil || !Is(err) {
			t.Fatalf("%d of %d bytes: %v", n, len(b), err)
		}
	}
}

func TestUnicodeStringBounds(t *testing.T) {
	var w Writer
	w.UnicodeString(strings.Repeat("a", 0x8000))
	if w.Err() == nil {
		t.Fatal("a string of 32768 units fit a 16-bit byte length")
	}
	// A count beyond the data is refused before any allocation.
	r := NewReader([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f})
	if s := r.UnicodeString(UnicodeStringHeader{Ptr: 1}); s != "" || !Is(r.Err()) {
		t.Fatalf("%q, %v", s, r.Err())
	}
}
