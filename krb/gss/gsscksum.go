package gss

import (
	"encoding/binary"
	"fmt"
)

// GSS context flags carried in the 0x8003 checksum (RFC 4121 §4.1.1.1).
const (
	GSSDeleg    uint32 = 1
	GSSMutual   uint32 = 2
	GSSReplay   uint32 = 4
	GSSSequence uint32 = 8
	GSSConf     uint32 = 16
	GSSInteg    uint32 = 32
)

// ChecksumGSS is the authenticator checksum type of a GSS krb5 context token.
const ChecksumGSS int32 = 0x8003

// GSSChecksum is the content of the 0x8003 authenticator checksum (RFC 4121 §4.1.1).
type GSSChecksum struct {
	Bindings [16]byte // MD5 of channel bindings, zero when none
	Flags    uint32
	Deleg    []byte // KRB-CRED with the forwarded TGT, present when Flags&GSSDeleg
}

// Marshal encodes the checksum; Deleg is written only with the DELEG flag and
// must fit the 16-bit Dlgth (InitiatorToken refuses larger ones).
func (g GSSChecksum) Marshal() []byte {
	b := make([]byte, 24, 28+len(g.Deleg))
	binary.LittleEndian.PutUint32(b[0:], 16)
	copy(b[4:20], g.Bindings[:])
	binary.LittleEndian.PutUint32(b[20:], g.Flags)
	if g.Flags&GSSDeleg != 0 && len(g.Deleg) > 0 {
		var opt [4]byte
		binary.LittleEndian.PutUint16(opt[0:], 1) // DlgOpt
		binary.LittleEndian.PutUint16(opt[2:], uint16(len(g.Deleg)))
		b = append(b, opt[:]...)
		b = append(b, g.Deleg...)
	}
	return b
}

// ParseGSSChecksum decodes the 0x8003 checksum, bounding every length.
func ParseGSSChecksum(b []byte) (GSSChecksum, error) {
	var g GSSChecksum
	if len(b) < 24 {
		return g, fmt.Errorf("GSS checksum of %d bytes, need 24", len(b))
	}
	if l := binary.LittleEndian.Uint32(b[0:]); l != 16 {
		return g, fmt.Errorf("GSS checksum Lgth %d, want 16", l)
	}
	copy(g.Bindings[:], b[4:20])
	g.Flags = binary.LittleEndian.Uint32(b[20:])
	if g.Flags&GSSDeleg != 0 && len(b) >= 28 {
		opt := binary.LittleEndian.Uint16(b[24:])
		n := int(binary.LittleEndian.Uint16(b[26:]))
		if opt != 1 {
			return g, fmt.Errorf("GSS checksum DlgOpt %d, want 1", opt)
		}
		if n > len(b)-28 {
			return g, fmt.Errorf("GSS checksum Dlgth %d exceeds %d remaining bytes", n, len(b)-28)
		}
		g.Deleg = b[28 : 28+n]
	}
	return g, nil
}

// GSSFlagNames names the flags for pages and events.
func GSSFlagNames(f uint32) []string {
	var out []string
	for _, x := range []struct {
		f uint32
		n string
	}{{GSSDeleg, "deleg"}, {GSSMutual, "mutual"}, {GSSReplay, "replay"}, {GSSSequence, "sequence"}, {GSSConf, "conf"}, {GSSInteg, "integ"}} {
		if f&x.f != 0 {
			out = append(out, x.n)
		}
	}
	return out
}
