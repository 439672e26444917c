package ntlm

import (
	"encoding/binary"
	"fmt"
	"github.com/doublehop/doublehop/dtyp"
	"time"
)

// AV pair IDs (MS-NLMP 2.2.2.1).
const (
	AvEOL             uint16 = 0
	AvNbComputerName  uint16 = 1
	AvNbDomainName    uint16 = 2
	AvDNSComputerName uint16 = 3
	AvDNSDomainName   uint16 = 4
	AvDNSTreeName     uint16 = 5
	AvFlags           uint16 = 6
	AvTimestamp       uint16 = 7
	AvSingleHost      uint16 = 8
	AvTargetName      uint16 = 9
	AvChannelBindings uint16 = 10
)

// AvFlags bits.
const (
	AvFlagConstrained  uint32 = 0x1 // the account authentication is constrained
	AvFlagMIC          uint32 = 0x2 // the AUTHENTICATE message carries a MIC
	AvFlagUntrustedSPN uint32 = 0x4
)

// AvPair is one attribute-value pair.
type AvPair struct {
	ID    uint16
	Value []byte
}

// AvPairs is a TargetInfo list, ending (on the wire) with MsvAvEOL.
type AvPairs []AvPair

// ParseAvPairs decodes a list; it must end with MsvAvEOL.
func ParseAvPairs(b []byte) (AvPairs, error) {
	var out AvPairs
	for len(b) >= 4 {
		id := binary.LittleEndian.Uint16(b)
		n := int(binary.LittleEndian.Uint16(b[2:]))
		if n > len(b)-4 {
			return nil, fmt.Errorf("%w: AV pair %d of %d bytes exceeds the list", ErrMalformed, id, n)
		}
		if id == AvEOL {
			return out, nil
		}
		if len(out) >= 64 {
			return nil, fmt.Errorf("%w: more than 64 AV pairs", ErrMalformed)
		}
		out = append(out, AvPair{ID: id, Value: append([]byte(nil), b[4:4+n]...)})
		b = b[4+n:]
	}
	return nil, fmt.Errorf("%w: AV pairs without MsvAvEOL", ErrMalformed)
}

// Marshal encodes the list with its terminating MsvAvEOL.
func (l AvPairs) Marshal() []byte {
	var b []byte
	for _, p := range l {
		b = binary.LittleEndian.AppendUint16(b, p.ID)
		b = binary.LittleEndian.AppendUint16(b, uint16(len(p.Value)))
		b = append(b, p.Value...)
	}
	return append(b, 0, 0, 0, 0)
}

// Get returns the first value with id.
func (l AvPairs) Get(id uint16) ([]byte, bool) {
	for _, p := range l {
		if p.ID == id {
			return p.Value, true
		}
	}
	return nil, false
}

// String returns a UTF-16 valued pair as a string.
func (l AvPairs) String(id uint16) string {
	v, _ := l.Get(id)
	return dtyp.FromUTF16LE(v)
}

// Flags returns MsvAvFlags (0 when absent).
func (l AvPairs) Flags() uint32 {
	if v, ok := l.Get(AvFlags); ok && len(v) == 4 {
		return binary.LittleEndian.Uint32(v)
	}
	return 0
}

// Timestamp returns MsvAvTimestamp.
func (l AvPairs) Timestamp() (time.Time, bool) {
	v, ok := l.Get(AvTimestamp)
	if !ok || len(v) != 8 {
		return time.Time{}, false
	}
	return FromFiletime(binary.LittleEndian.Uint64(v)), true
}

// Set replaces or appends a pair.
func (l AvPairs) Set(id uint16, v []byte) AvPairs {
	for i := range l {
		if l[i].ID == id {
			l[i].Value = v
			return l
		}
	}
	return append(l, AvPair{ID: id, Value: v})
}

// Str makes a UTF-16 value.
func Str(s string) []byte { return dtyp.UTF16LE(s) }

// FILETIME: 100 ns intervals since 1601-01-01 UTC.
const filetimeEpoch = 116444736000000000

// Filetime converts a time to FILETIME.
func Filetime(t time.Time) uint64 { return uint64(t.UnixNano()/100) + filetimeEpoch }

// FromFiletime converts FILETIME to a time.
func FromFiletime(v uint64) time.Time {
	return time.Unix(0, int64(v-filetimeEpoch)*100).UTC()
}
