package ndr

import (
	"encoding/binary"
	"fmt"
)

// Type serialization version 1 (MS-RPCE 2.2.6): an NDR stream on its own,
// outside any call, as the PAC's KERB_VALIDATION_INFO and
// S4U_DELEGATION_INFO are kept — a common header, a private header with the
// object's length, the unique pointer to the top-level structure, the
// structure and its deferred referents, padded to 8.

const serialHeader = 16 // common header (8) + private header (8)

// Serialize writes one top-level structure with its headers.
func Serialize(body func(w *Writer)) ([]byte, error) {
	// The headers are reserved in front: 16 bytes, a multiple of 8, leave
	// every alignment of the stream as it is relative to its start.
	w := &Writer{buf: make([]byte, serialHeader, 512)}
	w.Ref(true, func() { body(w) })
	w.Flush()
	w.Align(8)
	if w.err != nil {
		return nil, w.err
	}
	copy(w.buf, []byte{1, 0x10, 8, 0, 0xcc, 0xcc, 0xcc, 0xcc}) // version 1, little-endian, header length 8, filler
	binary.LittleEndian.PutUint32(w.buf[8:], uint32(len(w.buf)-serialHeader))
	binary.LittleEndian.PutUint32(w.buf[12:], 0)
	return w.buf, nil
}

// Deserialize checks the headers of b and returns a reader positioned after
// the (non-NULL) top-level pointer; the caller reads the structure and its
// referents in order.
func Deserialize(b []byte) (*Reader, error) {
	if len(b) < serialHeader || b[0] != 1 || b[1] != 0x10 || binary.LittleEndian.Uint16(b[2:]) != 8 {
		return nil, &Error{Reason: "bad type serialization header"}
	}
	n := binary.LittleEndian.Uint32(b[8:])
	if uint64(n) > uint64(len(b)-serialHeader) {
		return nil, &Error{Reason: fmt.Sprintf("object length %d beyond the buffer", n)}
	}
	r := NewReader(b[serialHeader : serialHeader+int(n)])
	if r.U32() == 0 {
		return nil, &Error{Reason: "null top-level pointer"}
	}
	return r, r.err
}
