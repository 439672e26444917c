// Package dtyp holds the MS-DTYP data types more than one protocol of the lab
// carries: security identifiers (2.4.2) and self-relative security
// descriptors (2.4.6), as the PAC, LDAP and the directory use them.
package dtyp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// SID is a security identifier (MS-DTYP 2.4.2).
type SID struct {
	Auth uint64 // 48-bit IdentifierAuthority
	Subs []uint32
}

// ParseSID reads the string form "S-1-5-21-1-2-3" (MS-DTYP 2.4.2.1).
func ParseSID(s string) (SID, error) {
	parts := strings.Split(s, "-")
	if len(parts) < 3 || len(parts) > 18 || parts[0] != "S" || parts[1] != "1" {
		return SID{}, fmt.Errorf("bad SID %q", s)
	}
	out := SID{Subs: make([]uint32, 0, len(parts)-3)}
	var err error
	if h, ok := strings.CutPrefix(parts[2], "0x"); ok {
		out.Auth, err = strconv.ParseUint(h, 16, 48)
	} else {
		out.Auth, err = strconv.ParseUint(parts[2], 10, 48)
	}
	if err != nil {
		return SID{}, fmt.Errorf("bad SID %q: %v", s, err)
	}
	for _, p := range parts[3:] {
		v, err := strconv.ParseUint(p, 10, 32)
		if err != nil {
			return SID{}, fmt.Errorf("bad SID %q: %v", s, err)
		}
		out.Subs = append(out.Subs, uint32(v))
	}
	return out, nil
}

func (s SID) String() string {
	b := make([]byte, 0, 8+11*len(s.Subs)+16)
	b = append(b, "S-1-"...)
	if s.Auth < 1<<32 {
		b = strconv.AppendUint(b, s.Auth, 10)
	} else { // "0x%012X"
		h := strconv.AppendUint(nil, s.Auth, 16)
		b = append(b, "0x"...)
		for i := len(h); i < 12; i++ {
			b = append(b, '0')
		}
		b = append(b, bytes.ToUpper(h)...)
	}
	for _, v := range s.Subs {
		b = append(b, '-')
		b = strconv.AppendUint(b, uint64(v), 10)
	}
	return string(b)
}

// Binary is the SID structure of MS-DTYP 2.4.2.2: revision, count, the 48-bit
// authority big-endian, then little-endian sub-authorities.
func (s SID) Binary() []byte {
	a := s.Auth
	b := []byte{1, byte(len(s.Subs)), byte(a >> 40), byte(a >> 32), byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)}
	for _, v := range s.Subs {
		b = binary.LittleEndian.AppendUint32(b, v)
	}
	return b
}

// ParseBinarySID reads an MS-DTYP 2.4.2.2 SID from the start of b and returns
// the number of bytes used.
func ParseBinarySID(b []byte) (SID, int, error) {
	if len(b) < 8 || b[0] != 1 || b[1] > 15 || len(b) < 8+4*int(b[1]) {
		return SID{}, 0, errors.New("malformed SID")
	}
	auth := uint64(b[2])<<40 | uint64(b[3])<<32 | uint64(binary.BigEndian.Uint32(b[4:8]))
	s := SID{Auth: auth, Subs: make([]uint32, b[1])}
	for i := range s.Subs {
		s.Subs[i] = binary.LittleEndian.Uint32(b[8+4*i:])
	}
	return s, 8 + 4*len(s.Subs), nil
}

// BinarySIDString renders a whole buffer holding one binary SID.
func BinarySIDString(b []byte) (string, error) {
	s, n, err := ParseBinarySID(b)
	if err != nil || n != len(b) {
		return "", errors.New("malformed SID")
	}
	return s.String(), nil
}
