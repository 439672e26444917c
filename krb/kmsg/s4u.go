package kmsg

import (
	"bytes"
	"crypto/hmac"
	"encoding/binary"
	"fmt"

	"github.com/doublehop/doublehop/krb/kcrypto"
	"github.com/doublehop/doublehop/krb/kerr"
	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/crypto/rfc4757"
	"github.com/jcmturner/gokrb5/v8/types"
)

// ChecksumHMACMD5 is KERB_CHECKSUM_HMAC_MD5 (RFC 4757 §4, MS-SFU 2.2.1).
const ChecksumHMACMD5 int32 = -138

// ForUser is MS-SFU 2.2.1 PA-FOR-USER: the user a service asks a ticket for
// (S4U2Self, protocol transition).
type ForUser struct {
	UserName    types.PrincipalName `asn1:"explicit,tag:0"`
	UserRealm   string              `asn1:"generalstring,explicit,tag:1"`
	Cksum       types.Checksum      `asn1:"explicit,tag:2"`
	AuthPackage string              `asn1:"generalstring,explicit,tag:3"`
}

// s4uByteArray is the checksummed data: name-type (LE32) ‖ name strings ‖
// realm ‖ auth-package (MS-SFU 2.2.1).
func s4uByteArray(name types.PrincipalName, realm, pkg string) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, name.NameType)
	for _, s := range name.NameString {
		b.WriteString(s)
	}
	b.WriteString(realm)
	b.WriteString(pkg)
	return b.Bytes()
}

// NewPAForUser builds PA-FOR-USER signed with the requester's TGT session key
// (HMAC-MD5 whatever the key's etype, MS-SFU 2.2.1).
func NewPAForUser(user types.PrincipalName, realm string, tgtSessionKey types.EncryptionKey) (types.PAData, error) {
	sum, err := rfc4757.Checksum(tgtSessionKey.KeyValue, kcrypto.UsageForUserChecksum, s4uByteArray(user, realm, "Kerberos"))
	if err != nil {
		return types.PAData{}, err
	}
	b, err := asn1.Marshal(ForUser{UserName: user, UserRealm: realm, AuthPackage: "Kerberos",
		Cksum: types.Checksum{CksumType: ChecksumHMACMD5, Checksum: sum}})
	if err != nil {
		return types.PAData{}, err
	}
	return types.PAData{PADataType: PAForUser, PADataValue: b}, nil
}

// ParsePAForUser decodes and verifies PA-FOR-USER against the TGT session key.
func ParsePAForUser(b []byte, tgtSessionKey types.EncryptionKey) (ForUser, error) {
	var p ForUser
	if err := SafeUnmarshal(func() error { _, e := asn1.Unmarshal(b, &p); return e }); err != nil {
		return p, kerr.Errorf(kerr.KRB_ERR_GENERIC, "BAD_PA_FOR_USER", "PA-FOR-USER: %v", err)
	}
	data := s4uByteArray(p.UserName, p.UserRealm, p.AuthPackage)
	switch {
	case p.Cksum.CksumType == ChecksumHMACMD5:
		// MS-SFU 2.2.1: HMAC-MD5 whatever the key's enctype.
		want, err := rfc4757.Checksum(tgtSessionKey.KeyValue, kcrypto.UsageForUserChecksum, data)
		if err != nil || !hmac.Equal(want, p.Cksum.Checksum) {
			return p, kerr.Errorf(kerr.KRB_AP_ERR_MODIFIED, "BAD_CHECKSUM", "PA-FOR-USER checksum does not verify with the TGT session key")
		}
	default:
		// The session key's own keyed checksum: Windows takes it too (Samba's
		// s4u_tests, written against Windows: "happens to work everywhere").
		// An unkeyed one (CRC32, MD5, SHA1) proves nothing.
		if err := kcrypto.VerifyChecksum(tgtSessionKey, kcrypto.UsageForUserChecksum, data, p.Cksum); err != nil {
			if c, _ := kerr.CodeOf(err); c == kerr.KRB_AP_ERR_MODIFIED {
				return p, kerr.Errorf(kerr.KRB_AP_ERR_MODIFIED, "BAD_CHECKSUM", "PA-FOR-USER checksum does not verify with the TGT session key")
			}
			return p, kerr.Errorf(kerr.KRB_AP_ERR_INAPP_CKSUM, "INAPP_CKSUM", "PA-FOR-USER checksum type %d is not keyed with the TGT session key", p.Cksum.CksumType)
		}
	}
	if len(p.UserName.NameString) == 0 || len(p.UserName.NameString) > 8 {
		return p, kerr.Errorf(kerr.KDC_ERR_C_PRINCIPAL_UNKNOWN, "BAD_NAME", "PA-FOR-USER with %d name components", len(p.UserName.NameString))
	}
	return p, nil
}

// PAC options (MS-KILE 2.2.10).
const (
	PACOptionClaims      = 0
	PACOptionBranchAware = 1
	PACOptionForwardFull = 2
	PACOptionRBCD        = 3 // resource-based constrained delegation
)

type paPACOptions struct {
	Flags asn1.BitString `asn1:"explicit,tag:0"`
}

// NewPAPACOptions builds PA-PAC-OPTIONS with the given option bits.
func NewPAPACOptions(bits ...int) (types.PAData, error) {
	f := NewFlags(bits...)
	b, err := asn1.Marshal(paPACOptions{Flags: f})
	if err != nil {
		return types.PAData{}, err
	}
	return types.PAData{PADataType: PAPACOptions, PADataValue: b}, nil
}

// ParsePAPACOptions returns the option bits of PA-PAC-OPTIONS.
func ParsePAPACOptions(b []byte) (asn1.BitString, error) {
	var p paPACOptions
	if err := SafeUnmarshal(func() error { _, e := asn1.Unmarshal(b, &p); return e }); err != nil {
		return asn1.BitString{}, fmt.Errorf("PA-PAC-OPTIONS: %w", err)
	}
	return p.Flags, nil
}
