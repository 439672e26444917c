package tds

import (
	"encoding/binary"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/doublehop/doublehop/dtyp"
)

// DecodeUCS2 decodes UTF-16LE (MS-TDS strings are UCS-2/UTF-16LE); an odd
// trailing byte is ignored and unpaired surrogates become U+FFFD.
func DecodeUCS2(b []byte) string { return dtyp.FromUTF16LE(b) }

// AppendUCS2 appends s as UTF-16LE.
func AppendUCS2(b []byte, s string) []byte {
	for _, r := range s {
		if r >= 0x10000 {
			r1, r2 := utf16.EncodeRune(r)
			b = append(b, byte(r1), byte(r1>>8), byte(r2), byte(r2>>8))
			continue
		}
		if r == utf8.RuneError {
			r = 0xFFFD
		}
		b = append(b, byte(r), byte(r>>8))
	}
	return b
}

// UCS2Len is the number of UTF-16 code units of s (the "characters" of
// US_VARCHAR and B_VARCHAR lengths).
func UCS2Len(s string) int {
	n := 0
	for _, r := range s {
		if r >= 0x10000 {
			n += 2
		} else {
			n++
		}
	}
	return n
}

// AppendBVarChar appends a B_VARCHAR: a byte count of characters, then
// UTF-16LE (MS-TDS 2.2.5.1.3). s is cut to 255 characters.
func AppendBVarChar(b []byte, s string) []byte {
	s = truncUCS2(s, 255)
	b = append(b, byte(UCS2Len(s)))
	return AppendUCS2(b, s)
}

// AppendUSVarChar appends a US_VARCHAR: a uint16 count of characters, then
// UTF-16LE. s is cut to 65535 characters.
func AppendUSVarChar(b []byte, s string) []byte {
	s = truncUCS2(s, 65535)
	n := UCS2Len(s)
	b = append(b, byte(n), byte(n>>8))
	return AppendUCS2(b, s)
}

func truncUCS2(s string, max int) string {
	if len(s) <= max {
		return s
	}
	n := 0
	for i, r := range s {
		w := 1
		if r >= 0x10000 {
			w = 2
		}
		if n+w > max {
			return s[:i]
		}
		n += w
	}
	return s
}

// rd is a bounds-checked little-endian cursor over a message. After the
// first failed read every later read fails too and returns zero values, so a
// decoder can read a whole structure and check err once.
type rd struct {
	b   []byte
	off int
	err error
}

func (r *rd) fail() {
	if r.err == nil {
		r.err = ErrShort
	}
}

func (r *rd) left() int { return len(r.b) - r.off }

func (r *rd) bytes(n int) []byte {
	if r.err != nil || n < 0 || n > r.left() {
		r.fail()
		return nil
	}
	v := r.b[r.off : r.off+n]
	r.off += n
	return v
}

func (r *rd) u8() uint8 {
	v := r.bytes(1)
	if v == nil {
		return 0
	}
	return v[0]
}

func (r *rd) u16() uint16 {
	v := r.bytes(2)
	if v == nil {
		return 0
	}
	return binary.LittleEndian.Uint16(v)
}

func (r *rd) u32() uint32 {
	v := r.bytes(4)
	if v == nil {
		return 0
	}
	return binary.LittleEndian.Uint32(v)
}

func (r *rd) u64() uint64 {
	v := r.bytes(8)
	if v == nil {
		return 0
	}
	return binary.LittleEndian.Uint64(v)
}

// bvarchar reads a B_VARCHAR.
func (r *rd) bvarchar() string {
	n := int(r.u8())
	return DecodeUCS2(r.bytes(2 * n))
}

// usvarchar reads a US_VARCHAR.
func (r *rd) usvarchar() string {
	n := int(r.u16())
	return DecodeUCS2(r.bytes(2 * n))
}

func appendU16(b []byte, v uint16) []byte { return append(b, byte(v), byte(v>>8)) }
func appendU32(b []byte, v uint32) []byte {
	return append(b, byte(v), byte(v>>8), byte(v>>16), byte(v>>24))
}
func appendU64(b []byte, v uint64) []byte {
	return append(b, byte(v), byte(v>>8), byte(v>>16), byte(v>>24), byte(v>>32), byte(v>>40), byte(v>>48), byte(v>>56))
}
