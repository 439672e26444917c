package ntlm

import (
	"encoding/binary"
	"fmt"
)

// Authenticate is the AUTHENTICATE_MESSAGE (MS-NLMP 2.2.1.3).
type Authenticate struct {
	Flags                     uint32
	LmChallengeResponse       []byte
	NtChallengeResponse       []byte
	Domain, User, Workstation string
	EncryptedRandomSessionKey []byte
	Version                   *Version
	MIC                       []byte // 16 bytes when present
	Raw                       []byte // the message as received (for the MIC)
	micAt                     int    // offset of the MIC in Raw, 0 when none
}

// Marshal encodes the message; with a 16-byte MIC it lays out the version
// and the MIC as Windows clients do (88-byte header).
func (m *Authenticate) Marshal() []byte {
	fixed := 64
	if m.Version != nil {
		fixed = 72
	}
	if m.MIC != nil {
		fixed = 88
	}
	w := newWriter(TypeAuthenticate, fixed)
	flags := m.Flags
	if m.Version != nil {
		flags |= FlagVersion
	}
	u := flags&FlagUnicode != 0
	w.field(12, m.LmChallengeResponse)
	w.field(20, m.NtChallengeResponse)
	w.field(28, oemOrUnicode(m.Domain, u))
	w.field(36, oemOrUnicode(m.User, u))
	w.field(44, oemOrUnicode(m.Workstation, u))
	w.field(52, m.EncryptedRandomSessionKey)
	binary.LittleEndian.PutUint32(w.b[60:], flags)
	if m.Version != nil {
		copy(w.b[64:], m.Version.append(nil))
	}
	if m.MIC != nil {
		copy(w.b[72:88], m.MIC)
		m.micAt = 72
	}
	m.Raw = w.bytes()
	return m.Raw
}

// ParseAuthenticate decodes an AUTHENTICATE_MESSAGE, bounding every field.
// The MIC is read when the header is long enough to hold one (the payload
// starts at 88 or later), as MS-NLMP 3.2.5.1.2 has servers do.
func ParseAuthenticate(b []byte) (*Authenticate, error) {
	r, err := newReader(b, TypeAuthenticate, 64)
	if err != nil {
		return nil, err
	}
	m := &Authenticate{Flags: binary.LittleEndian.Uint32(b[60:]), Raw: append([]byte(nil), b...)}
	var fs [6]field
	for i := range fs {
		if fs[i], err = r.field(12 + 8*i); err != nil {
			return nil, err
		}
	}
	u := m.Flags&FlagUnicode != 0
	m.LmChallengeResponse, m.NtChallengeResponse = r.bytes(fs[0]), r.bytes(fs[1])
	if m.Domain, err = r.str(fs[2], u); err != nil {
		return nil, err
	}
	if m.User, err = r.str(fs[3], u); err != nil {
		return nil, err
	}
	if m.Workstation, err = r.str(fs[4], u); err != nil {
		return nil, err
	}
	m.EncryptedRandomSessionKey = r.bytes(fs[5])
	if len(m.EncryptedRandomSessionKey) > 16 {
		return nil, fmt.Errorf("%w: a session key of %d bytes", ErrMalformed, len(m.EncryptedRandomSessionKey))
	}
	if m.Flags&FlagVersion != 0 && r.min >= 72 {
		v := parseVersion(b[64:72])
		m.Version = &v
	}
	if r.min >= 88 && len(b) >= 88 {
		m.MIC = append([]byte(nil), b[72:88]...)
		m.micAt = 72
	}
	return m, nil
}

// withoutMIC is Raw with the MIC field zeroed (MS-NLMP 3.1.5.1.2).
func (m *Authenticate) withoutMIC() []byte {
	b := append([]byte(nil), m.Raw...)
	if m.micAt > 0 {
		clear(b[m.micAt : m.micAt+16])
	}
	return b
}

// Anonymous reports an anonymous AUTHENTICATE (MS-NLMP 3.2.5.1.2): no user,
// no NT response, an LM response that is empty or one zero byte.
func (m *Authenticate) Anonymous() bool {
	return m.User == "" && len(m.NtChallengeResponse) == 0 && (len(m.LmChallengeResponse) == 0 || (len(m.LmChallengeResponse) == 1 && m.LmChallengeResponse[0] == 0))
}

// IsV2 reports an NTLMv2 response (longer than the 24 bytes of NTLMv1).
func (m *Authenticate) IsV2() bool { return len(m.NtChallengeResponse) > 24 }
