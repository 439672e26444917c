package ntlm

import "encoding/binary"

// Negotiate is the NEGOTIATE_MESSAGE (MS-NLMP 2.2.1.1).
type Negotiate struct {
	Flags       uint32
	Domain      string // OEM, when FlagOEMDomainSupplied
	Workstation string // OEM, when FlagOEMWorkstationSupplied
	Version     *Version
	Raw         []byte // the message as received (for the MIC)
}

// Marshal encodes the message.
func (m *Negotiate) Marshal() []byte {
	fixed := 32
	if m.Version != nil {
		fixed = 40
	}
	w := newWriter(TypeNegotiate, fixed)
	flags := m.Flags
	if m.Version != nil {
		flags |= FlagVersion
	}
	binary.LittleEndian.PutUint32(w.b[12:], flags)
	w.field(16, []byte(m.Domain))
	w.field(24, []byte(m.Workstation))
	if m.Version != nil {
		copy(w.b[32:], m.Version.append(nil))
	}
	return w.bytes()
}

// ParseNegotiate decodes a NEGOTIATE_MESSAGE, bounding every field.
func ParseNegotiate(b []byte) (*Negotiate, error) {
	r, err := newReader(b, TypeNegotiate, 16)
	if err != nil {
		return nil, err
	}
	m := &Negotiate{Flags: binary.LittleEndian.Uint32(b[12:]), Raw: append([]byte(nil), b...)}
	if len(b) >= 32 {
		d, err := r.field(16)
		if err != nil {
			return nil, err
		}
		ws, err := r.field(24)
		if err != nil {
			return nil, err
		}
		m.Domain, m.Workstation = string(r.bytes(d)), string(r.bytes(ws))
	}
	if m.Flags&FlagVersion != 0 && len(b) >= 40 && r.min >= 40 {
		v := parseVersion(b[32:40])
		m.Version = &v
	}
	return m, nil
}
