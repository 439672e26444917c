package ntlm

import (
	"encoding/binary"
	"fmt"
)

// Challenge is the CHALLENGE_MESSAGE (MS-NLMP 2.2.1.2).
type Challenge struct {
	Flags           uint32
	TargetName      string
	ServerChallenge [8]byte
	TargetInfo      AvPairs
	Version         *Version
	Raw             []byte // the message as sent or received (for the MIC)
}

// Marshal encodes the message and keeps the bytes in Raw.
func (m *Challenge) Marshal() []byte {
	w := newWriter(TypeChallenge, 56)
	flags := m.Flags
	if m.Version != nil {
		flags |= FlagVersion
	}
	if len(m.TargetInfo) > 0 {
		flags |= FlagTargetInfo
	}
	w.field(12, oemOrUnicode(m.TargetName, flags&FlagUnicode != 0))
	binary.LittleEndian.PutUint32(w.b[20:], flags)
	copy(w.b[24:32], m.ServerChallenge[:])
	if len(m.TargetInfo) > 0 {
		w.field(40, m.TargetInfo.Marshal())
	}
	if m.Version != nil {
		copy(w.b[48:], m.Version.append(nil))
	}
	m.Raw = w.bytes()
	return m.Raw
}

// ParseChallenge decodes a CHALLENGE_MESSAGE.
func ParseChallenge(b []byte) (*Challenge, error) {
	r, err := newReader(b, TypeChallenge, 32)
	if err != nil {
		return nil, err
	}
	m := &Challenge{Flags: binary.LittleEndian.Uint32(b[20:]), Raw: append([]byte(nil), b...)}
	copy(m.ServerChallenge[:], b[24:32])
	tn, err := r.field(12)
	if err != nil {
		return nil, err
	}
	if m.TargetName, err = r.str(tn, m.Flags&FlagUnicode != 0); err != nil {
		return nil, err
	}
	if len(b) >= 48 {
		ti, err := r.field(40)
		if err != nil {
			return nil, err
		}
		if ti.len > 0 {
			if m.TargetInfo, err = ParseAvPairs(r.bytes(ti)); err != nil {
				return nil, fmt.Errorf("target info: %w", err)
			}
		}
	}
	if m.Flags&FlagVersion != 0 && len(b) >= 56 && r.min >= 56 {
		v := parseVersion(b[48:56])
		m.Version = &v
	}
	return m, nil
}
