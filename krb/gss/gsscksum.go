package gss

// The authenticator checksum of a krb5 GSS context token, type 0x8003
// (RFC 4121 §4.1.1): channel bindings, context flags and, with the DELEG
// flag, the forwarded TGT as a KRB-CRED. Built and read only here.

import (
	"encoding/binary"
	"fmt"

	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/doublehop/doublehop/krb/kerr"
	"github.com/doublehop/doublehop/krb/kmsg"
)

// GSS context flags carried in the checksum (RFC 4121 §4.1.1.1).
const (
	FlagDeleg    uint32 = 1
	FlagMutual   uint32 = 2
	FlagReplay   uint32 = 4
	FlagSequence uint32 = 8
	FlagConf     uint32 = 16
	FlagInteg    uint32 = 32
)

// ChecksumGSS is the authenticator checksum type of a GSS krb5 context token.
const ChecksumGSS int32 = 0x8003

// Checksum is the content of the 0x8003 authenticator checksum.
type Checksum struct {
	Bindings  [16]byte // MD5 of channel bindings, zero when none
	Flags     uint32
	Deleg     []byte           // KRB-CRED with the forwarded TGT, present when Flags&FlagDeleg
	Delegated *kmsg.Credential // Deleg decrypted and checked by the acceptor
}

// NewChecksum builds the checksum an initiator sends: the flags, plus the
// KRB-CRED deleg (which sets FlagDeleg) when there is one. The KRB-CRED must
// fit the 16-bit Dlgth field.
func NewChecksum(flags uint32, deleg []byte) (types.Checksum, error) {
	if len(deleg) > 0xffff {
		return types.Checksum{}, fmt.Errorf("delegated credential of %d bytes does not fit the GSS checksum (RFC 4121 §4.1.1 Dlgth)", len(deleg))
	}
	g := Checksum{Flags: flags}
	if len(deleg) > 0 {
		g.Flags |= FlagDeleg
		g.Deleg = deleg
	}
	return types.Checksum{CksumType: ChecksumGSS, Checksum: g.Marshal()}, nil
}

// Marshal encodes the checksum; Deleg is written only with the DELEG flag.
func (g Checksum) Marshal() []byte {
	b := make([]byte, 24, 28+len(g.Deleg))
	binary.LittleEndian.PutUint32(b[0:], 16)
	copy(b[4:20], g.Bindings[:])
	binary.LittleEndian.PutUint32(b[20:], g.Flags)
	if g.Flags&FlagDeleg != 0 && len(g.Deleg) > 0 {
		var opt [4]byte
		binary.LittleEndian.PutUint16(opt[0:], 1) // DlgOpt
		binary.LittleEndian.PutUint16(opt[2:], uint16(len(g.Deleg)))
		b = append(b, opt[:]...)
		b = append(b, g.Deleg...)
	}
	return b
}

// ParseChecksum decodes the checksum, bounding every length.
func ParseChecksum(b []byte) (Checksum, error) {
	var g Checksum
	if len(b) < 24 {
		return g, fmt.Errorf("GSS checksum of %d bytes, need 24", len(b))
	}
	if l := binary.LittleEndian.Uint32(b[0:]); l != 16 {
		return g, fmt.Errorf("GSS checksum Lgth %d, want 16", l)
	}
	copy(g.Bindings[:], b[4:20])
	g.Flags = binary.LittleEndian.Uint32(b[20:])
	if g.Flags&FlagDeleg != 0 && len(b) >= 28 {
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

// readChecksum is the acceptor's side: it parses the authenticator's 0x8003
// checksum (present false for other checksum types, e.g. a bare AP-REQ) and
// opens the forwarded TGT with the subkey, then the ticket session key, as
// MIT's krb5_rd_cred does. The forwarded credential must be the client's own
// TGT (RFC 4121 §4.1.1).
func readChecksum(auth types.Authenticator, etp messages.EncTicketPart) (Checksum, bool, *kerr.Error) {
	if auth.Cksum.CksumType != ChecksumGSS {
		return Checksum{}, false, nil
	}
	g, err := ParseChecksum(auth.Cksum.Checksum)
	if err != nil {
		return g, true, kerr.Errorf(kerr.KRB_AP_ERR_INAPP_CKSUM, "GSS_CHECKSUM", "%v", err)
	}
	if len(g.Deleg) == 0 {
		return g, true, nil
	}
	creds, err := kmsg.ParseKRBCred(g.Deleg, auth.SubKey, etp.Key)
	if err != nil || len(creds) == 0 {
		return g, true, kerr.Errorf(kerr.KRB_AP_ERR_BAD_INTEGRITY, "KRB_CRED", "delegated credential unusable: %v", err)
	}
	d := creds[0]
	if !kmsg.SameName(d.Info.PName, etp.CName) || !equalFold(d.Info.PRealm, etp.CRealm) ||
		len(d.Info.SName.NameString) != 2 || !equalFold(d.Info.SName.NameString[0], "krbtgt") {
		return g, true, kerr.Errorf(kerr.KRB_AP_ERR_BADMATCH, "KRB_CRED_CLIENT", "the delegated credential is %s, not %s's TGT", d, kmsg.PrincipalString(etp.CName, etp.CRealm))
	}
	g.Delegated = &d
	return g, true, nil
}

// FlagNames names the flags for pages and events.
func FlagNames(f uint32) []string {
	var out []string
	for _, x := range []struct {
		f uint32
		n string
	}{{FlagDeleg, "deleg"}, {FlagMutual, "mutual"}, {FlagReplay, "replay"}, {FlagSequence, "sequence"}, {FlagConf, "conf"}, {FlagInteg, "integ"}} {
		if f&x.f != 0 {
			out = append(out, x.n)
		}
	}
	return out
}
