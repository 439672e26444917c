package dtyp

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// A self-relative SECURITY_DESCRIPTOR (MS-DTYP 2.4.6) reduced to what
// msDS-AllowedToActOnBehalfOfOtherIdentity holds (MS-ADA2 2.167): an owner
// and a DACL of ACCESS_ALLOWED ACEs, one per account that may delegate.

// Control bits (MS-DTYP 2.4.6).
const (
	SEDACLPresent  = 0x0004
	SESelfRelative = 0x8000
)

// ACE types and the access mask RBCD entries carry.
const (
	AccessAllowedACEType = 0x00
	// RBCDAccessMask is what AD writes for "allowed to act on behalf of"
	// (and impacket's rbcd.py does): 0x000F01FF, every standard and specific right.
	RBCDAccessMask = 0x000F01FF
)

// BuiltinAdministrators is S-1-5-32-544, the owner AD writes on these descriptors.
var BuiltinAdministrators = SID{Auth: 5, Subs: []uint32{32, 544}}

// ACE is one access-allowed entry.
type ACE struct {
	Type  byte
	Flags byte
	Mask  uint32
	SID   SID
}

// SecurityDescriptor is a parsed self-relative descriptor.
type SecurityDescriptor struct {
	Control uint16
	Owner   *SID
	Group   *SID
	DACL    []ACE
}

// AllowedSIDs are the SIDs of the DACL's access-allowed ACEs.
func (sd *SecurityDescriptor) AllowedSIDs() []SID {
	var out []SID
	for _, a := range sd.DACL {
		if a.Type == AccessAllowedACEType {
			out = append(out, a.SID)
		}
	}
	return out
}

// RBCDDescriptor builds the descriptor AD stores for RBCD: owner
// BUILTIN\Administrators, one ACCESS_ALLOWED ACE per SID.
func RBCDDescriptor(sids []SID) []byte {
	own := BuiltinAdministrators
	sd := SecurityDescriptor{Control: SESelfRelative | SEDACLPresent, Owner: &own}
	for _, s := range sids {
		sd.DACL = append(sd.DACL, ACE{Type: AccessAllowedACEType, Mask: RBCDAccessMask, SID: s})
	}
	return sd.Marshal()
}

// Marshal writes the self-relative form: header, owner, group, DACL.
func (sd *SecurityDescriptor) Marshal() []byte {
	b := make([]byte, 20)
	b[0] = 1 // revision
	binary.LittleEndian.PutUint16(b[2:], sd.Control|SESelfRelative)
	if sd.Owner != nil {
		binary.LittleEndian.PutUint32(b[4:], uint32(len(b)))
		b = append(b, sd.Owner.Binary()...)
	}
	if sd.Group != nil {
		binary.LittleEndian.PutUint32(b[8:], uint32(len(b)))
		b = append(b, sd.Group.Binary()...)
	}
	if sd.Control&SEDACLPresent != 0 {
		binary.LittleEndian.PutUint32(b[16:], uint32(len(b)))
		var aces []byte
		for _, a := range sd.DACL {
			s := a.SID.Binary()
			ace := []byte{a.Type, a.Flags, 0, 0}
			binary.LittleEndian.PutUint16(ace[2:], uint16(8+len(s)))
			ace = binary.LittleEndian.AppendUint32(ace, a.Mask)
			aces = append(aces, append(ace, s...)...)
		}
		acl := []byte{4, 0, 0, 0, 0, 0, 0, 0} // ACL_REVISION_DS
		binary.LittleEndian.PutUint16(acl[2:], uint16(8+len(aces)))
		binary.LittleEndian.PutUint16(acl[4:], uint16(len(sd.DACL)))
		b = append(b, append(acl, aces...)...)
	}
	return b
}

// MaxDescriptor bounds a descriptor read from the wire (AD's own limit on
// nTSecurityDescriptor is 64 KiB of ACL).
const MaxDescriptor = 1 << 16

// ParseSecurityDescriptor reads a self-relative descriptor; every offset and
// count is checked against the buffer.
func ParseSecurityDescriptor(b []byte) (*SecurityDescriptor, error) {
	if len(b) < 20 || len(b) > MaxDescriptor {
		return nil, fmt.Errorf("security descriptor of %d bytes", len(b))
	}
	if b[0] != 1 {
		return nil, fmt.Errorf("security descriptor revision %d", b[0])
	}
	sd := &SecurityDescriptor{Control: binary.LittleEndian.Uint16(b[2:])}
	if sd.Control&SESelfRelative == 0 {
		return nil, errors.New("security descriptor is not self-relative")
	}
	sidAt := func(off uint32) (*SID, error) {
		if off == 0 {
			return nil, nil
		}
		if int(off) >= len(b) {
			return nil, fmt.Errorf("SID offset %d beyond the descriptor", off)
		}
		s, _, err := ParseBinarySID(b[off:])
		if err != nil {
			return nil, err
		}
		return &s, nil
	}
	var err error
	if sd.Owner, err = sidAt(binary.LittleEndian.Uint32(b[4:])); err != nil {
		return nil, err
	}
	if sd.Group, err = sidAt(binary.LittleEndian.Uint32(b[8:])); err != nil {
		return nil, err
	}
	off := binary.LittleEndian.Uint32(b[16:])
	if sd.Control&SEDACLPresent == 0 || off == 0 {
		return sd, nil
	}
	if int(off)+8 > len(b) {
		return nil, fmt.Errorf("DACL offset %d beyond the descriptor", off)
	}
	acl := b[off:]
	size := int(binary.LittleEndian.Uint16(acl[2:]))
	count := int(binary.LittleEndian.Uint16(acl[4:]))
	if size < 8 || size > len(acl) {
		return nil, fmt.Errorf("DACL of %d bytes in %d", size, len(acl))
	}
	p := acl[8:size]
	for i := 0; i < count; i++ {
		if len(p) < 4 {
			return nil, fmt.Errorf("ACE %d: truncated", i)
		}
		n := int(binary.LittleEndian.Uint16(p[2:]))
		if n < 8 || n > len(p) {
			return nil, fmt.Errorf("ACE %d: size %d", i, n)
		}
		a := ACE{Type: p[0], Flags: p[1], Mask: binary.LittleEndian.Uint32(p[4:])}
		if a.Type == AccessAllowedACEType {
			s, _, err := ParseBinarySID(p[8:n])
			if err != nil {
				return nil, fmt.Errorf("ACE %d: %v", i, err)
			}
			a.SID = s
		}
		sd.DACL = append(sd.DACL, a)
		p = p[n:]
	}
	return sd, nil
}

// SDDL renders the descriptor in the Security Descriptor Definition Language
// (MS-DTYP 2.5.1), as AD tools show msDS-AllowedToActOnBehalfOfOtherIdentity.
func (sd *SecurityDescriptor) SDDL() string {
	alias := func(s SID) string {
		if s.String() == BuiltinAdministrators.String() {
			return "BA"
		}
		return s.String()
	}
	var b []byte
	if sd.Owner != nil {
		b = append(b, "O:"+alias(*sd.Owner)...)
	}
	if sd.Group != nil {
		b = append(b, "G:"+alias(*sd.Group)...)
	}
	if sd.Control&SEDACLPresent != 0 {
		b = append(b, "D:"...)
		for _, a := range sd.DACL {
			t := "A"
			if a.Type != AccessAllowedACEType {
				t = fmt.Sprintf("0x%x", a.Type)
			}
			rights := fmt.Sprintf("0x%x", a.Mask)
			if a.Mask == RBCDAccessMask {
				rights = "CCDCLCSWRPWPDTLOCRSDRCWDWO"
			}
			b = append(b, "("+t+";;"+rights+";;;"+alias(a.SID)+")"...)
		}
	}
	return string(b)
}
