package drsuapi

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"github.com/doublehop/doublehop/dtyp"
	"strings"
)

// supplementalCredentials as AD keeps it (MS-SAMR 2.2.10.1 USER_PROPERTIES):
// packages of credentials, each named ("Primary:Kerberos-Newer-Keys") with
// its value hex-encoded. The lab writes the package Kerberos clients need:
// the AES keys with their salt (KERB_STORED_CREDENTIAL_NEW, 2.2.10.6); RC4
// is the NT hash, which travels as unicodePwd.

// KerberosKey is one key of KERB_STORED_CREDENTIAL_NEW.
type KerberosKey struct {
	EType      int32
	Value      []byte
	Iterations uint32
}

// userPropertiesSignature is PropertySignature (0x50, 'P').
const userPropertiesSignature = 0x50

// newerKeys builds KERB_STORED_CREDENTIAL_NEW (revision 4): the header,
// the key descriptors, the default salt, then the key values; offsets
// count from the structure's start.
func newerKeys(salt string, keys []KerberosKey) []byte {
	const hdr, desc = 24, 24
	s := dtyp.UTF16LE(salt)
	saltOff := hdr + desc*len(keys)
	b := make([]byte, saltOff, saltOff+len(s)+64*len(keys))
	binary.LittleEndian.PutUint16(b[0:], 4) // Revision
	binary.LittleEndian.PutUint16(b[4:], uint16(len(keys)))
	binary.LittleEndian.PutUint16(b[12:], uint16(len(s)))
	binary.LittleEndian.PutUint16(b[14:], uint16(len(s)))
	binary.LittleEndian.PutUint32(b[16:], uint32(saltOff))
	binary.LittleEndian.PutUint32(b[20:], 4096) // DefaultIterationCount
	b = append(b, s...)
	for i, k := range keys {
		d := b[hdr+desc*i:]
		it := k.Iterations
		if it == 0 {
			it = 4096
		}
		binary.LittleEndian.PutUint32(d[8:], it)
		binary.LittleEndian.PutUint32(d[12:], uint32(k.EType))
		binary.LittleEndian.PutUint32(d[16:], uint32(len(k.Value)))
		binary.LittleEndian.PutUint32(d[20:], uint32(len(b)))
		b = append(b, k.Value...)
	}
	return b
}

// userProperties wraps packages (name → raw value) as USER_PROPERTIES.
func userProperties(names []string, values [][]byte) []byte {
	var props []byte
	for i, n := range names {
		name := dtyp.UTF16LE(n)
		val := []byte(strings.ToUpper(hex.EncodeToString(values[i])))
		props = binary.LittleEndian.AppendUint16(props, uint16(len(name)))
		props = binary.LittleEndian.AppendUint16(props, uint16(len(val)))
		props = binary.LittleEndian.AppendUint16(props, 1) // Reserved
		props = append(props, name...)
		props = append(props, val...)
	}
	b := make([]byte, 12, 12+100+len(props)+1)
	// Reserved4: 96 bytes, which Windows fills with UTF-16 spaces.
	for i := 0; i < 48; i++ {
		b = append(b, ' ', 0)
	}
	b = binary.LittleEndian.AppendUint16(b, userPropertiesSignature)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(names)))
	b = append(b, props...)
	binary.LittleEndian.PutUint32(b[4:], uint32(len(b)-12)) // Length: from Reserved4 on
	return append(b, 0)                                     // Reserved5
}

// SupplementalCredentials is the attribute value for an account's keys.
func SupplementalCredentials(salt string, keys []KerberosKey) []byte {
	pkg := newerKeys(salt, keys)
	packages := dtyp.UTF16LE("Kerberos-Newer-Keys")
	return userProperties([]string{"Primary:Kerberos-Newer-Keys", "Packages"}, [][]byte{pkg, packages})
}

// ParseSupplementalCredentials reads the packages of a USER_PROPERTIES
// value (for the lab's own tests and tools).
func ParseSupplementalCredentials(b []byte) (map[string][]byte, error) {
	if len(b) < 112 || binary.LittleEndian.Uint16(b[108:]) != userPropertiesSignature {
		return nil, errors.New("supplementalCredentials: no USER_PROPERTIES signature")
	}
	n := int(binary.LittleEndian.Uint16(b[110:]))
	out := map[string][]byte{}
	off := 112
	for i := 0; i < n; i++ {
		if off+6 > len(b) {
			return nil, errors.New("supplementalCredentials: property cut short")
		}
		nl, vl := int(binary.LittleEndian.Uint16(b[off:])), int(binary.LittleEndian.Uint16(b[off+2:]))
		off += 6
		if off+nl+vl > len(b) {
			return nil, errors.New("supplementalCredentials: property cut short")
		}
		v, err := hex.DecodeString(string(b[off+nl : off+nl+vl]))
		if err != nil {
			return nil, err
		}
		out[dtyp.FromUTF16LE(b[off:off+nl])] = v
		off += nl + vl
	}
	return out, nil
}

// ParseNewerKeys reads KERB_STORED_CREDENTIAL_NEW's current keys and salt.
func ParseNewerKeys(b []byte) (salt string, keys []KerberosKey, err error) {
	if len(b) < 24 || binary.LittleEndian.Uint16(b) != 4 {
		return "", nil, errors.New("Kerberos-Newer-Keys: not revision 4")
	}
	n := int(binary.LittleEndian.Uint16(b[4:]))
	sl, so := int(binary.LittleEndian.Uint16(b[12:])), int(binary.LittleEndian.Uint32(b[16:]))
	if so+sl > len(b) || 24+24*n > len(b) {
		return "", nil, errors.New("Kerberos-Newer-Keys: out of bounds")
	}
	salt = dtyp.FromUTF16LE(b[so : so+sl])
	for i := 0; i < n; i++ {
		d := b[24+24*i:]
		l, o := int(binary.LittleEndian.Uint32(d[16:])), int(binary.LittleEndian.Uint32(d[20:]))
		if o+l > len(b) {
			return "", nil, errors.New("Kerberos-Newer-Keys: key out of bounds")
		}
		keys = append(keys, KerberosKey{EType: int32(binary.LittleEndian.Uint32(d[12:])), Value: b[o : o+l],
			Iterations: binary.LittleEndian.Uint32(d[8:])})
	}
	return salt, keys, nil
}
