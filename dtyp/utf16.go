package dtyp

import (
	"encoding/binary"
	"unicode/utf16"
)

// Windows' strings on the wire are UTF-16LE (MS-DTYP 2.2.60 WCHAR): NTLM's
// fields, NDR's conformant strings, the PAC's names, AD's unicodePwd.

// UTF16LE encodes s as UTF-16LE with no terminator.
func UTF16LE(s string) []byte {
	if b, ok := asciiToUTF16LE(s); ok {
		return b
	}
	u := utf16.Encode([]rune(s))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		binary.LittleEndian.PutUint16(b[2*i:], c)
	}
	return b
}

// FromUTF16LE decodes UTF-16LE (an odd last byte is dropped; unpaired
// surrogates become U+FFFD).
func FromUTF16LE(b []byte) string {
	if s, ok := ASCIIFromUTF16LE(b); ok {
		return s
	}
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	return string(utf16.Decode(u))
}

// ASCIIFromUTF16LE decodes UTF-16LE that is pure ASCII (every unit below
// 0x80) with one allocation; ok is false otherwise.
func ASCIIFromUTF16LE(b []byte) (string, bool) {
	for i := 0; i+1 < len(b); i += 2 {
		if b[i] >= 0x80 || b[i+1] != 0 {
			return "", false
		}
	}
	out := make([]byte, len(b)/2)
	for i := range out {
		out[i] = b[2*i]
	}
	return string(out), true
}

func asciiToUTF16LE(s string) ([]byte, bool) {
	b := make([]byte, 2*len(s))
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return nil, false
		}
		b[2*i] = s[i]
	}
	return b, true
}
