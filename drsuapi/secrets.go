package drsuapi

import (
	"crypto/des"
	"crypto/md5"
	"crypto/rand"
	"crypto/rc4"
	"encoding/binary"
	"errors"
	"hash/crc32"
)

// Secret attributes travel encrypted a second time, inside RPC privacy:
// MS-DRSR 4.1.10.5.11 EncryptValuesIfNecessary. Each value becomes an
// ENCRYPTED_PAYLOAD: a random 16-byte salt, then RC4 with the key
// MD5(session key || salt) over the CRC32 of the clear value followed by
// the value. The password hashes (unicodePwd, dBCSPwd, ntPwdHistory,
// lmPwdHistory) are first encrypted with DES keys made from the account's
// RID (MS-SAMR 2.2.11.1.3), as AD stores them.

// encryptValue wraps one clear value for the client's session key.
func encryptValue(sessionKey, clear []byte) ([]byte, error) {
	if len(sessionKey) == 0 {
		return nil, errors.New("drsuapi: no session key to encrypt secrets with")
	}
	var salt [16]byte
	if _, err := rand.Read(salt[:]); err != nil {
		return nil, err
	}
	return encryptValueSalt(sessionKey, clear, salt), nil
}

func encryptValueSalt(sessionKey, clear []byte, salt [16]byte) []byte {
	h := md5.New()
	h.Write(sessionKey)
	h.Write(salt[:])
	c, _ := rc4.NewCipher(h.Sum(nil))
	body := binary.LittleEndian.AppendUint32(nil, crc32.ChecksumIEEE(clear))
	body = append(body, clear...)
	c.XORKeyStream(body, body)
	return append(salt[:], body...)
}

// decryptValue undoes encryptValue (tests and the lab's own client).
func decryptValue(sessionKey, payload []byte) ([]byte, error) {
	if len(payload) < 20 {
		return nil, errors.New("drsuapi: encrypted payload too short")
	}
	h := md5.New()
	h.Write(sessionKey)
	h.Write(payload[:16])
	c, _ := rc4.NewCipher(h.Sum(nil))
	body := append([]byte(nil), payload[16:]...)
	c.XORKeyStream(body, body)
	if binary.LittleEndian.Uint32(body) != crc32.ChecksumIEEE(body[4:]) {
		return nil, errors.New("drsuapi: encrypted payload checksum mismatch (wrong session key)")
	}
	return body[4:], nil
}

// ridKeys are the two DES keys a RID makes (MS-SAMR 2.2.11.1.3): the RID's
// bytes repeated as K1 = R0 R1 R2 R3 R0 R1 R2, K2 = R3 R0 R1 R2 R3 R0 R1,
// each 7-byte string spread to 8 bytes (MS-SAMR 2.2.11.1.2).
func ridKeys(rid uint32) (k1, k2 [8]byte) {
	var r [4]byte
	binary.LittleEndian.PutUint32(r[:], rid)
	a := [7]byte{r[0], r[1], r[2], r[3], r[0], r[1], r[2]}
	b := [7]byte{r[3], r[0], r[1], r[2], r[3], r[0], r[1]}
	return desKey(a), desKey(b)
}

// desKey spreads 56 bits over 8 bytes, the low bit of each left for parity
// (MS-SAMR 2.2.11.1.2 "Encrypting a 64-Bit Block with a 7-Byte Key").
func desKey(s [7]byte) [8]byte {
	var k [8]byte
	k[0] = s[0] >> 1
	k[1] = (s[0]&0x01)<<6 | s[1]>>2
	k[2] = (s[1]&0x03)<<5 | s[2]>>3
	k[3] = (s[2]&0x07)<<4 | s[3]>>4
	k[4] = (s[3]&0x0f)<<3 | s[4]>>5
	k[5] = (s[4]&0x1f)<<2 | s[5]>>6
	k[6] = (s[5]&0x3f)<<1 | s[6]>>7
	k[7] = s[6] & 0x7f
	for i := range k {
		k[i] <<= 1
	}
	return k
}

// ridEncrypt encrypts each 16-byte hash in b with the RID's keys.
func ridEncrypt(rid uint32, b []byte, decrypt bool) []byte {
	k1, k2 := ridKeys(rid)
	c1, _ := des.NewCipher(k1[:])
	c2, _ := des.NewCipher(k2[:])
	out := make([]byte, len(b))
	for i := 0; i+16 <= len(b); i += 16 {
		if decrypt {
			c1.Decrypt(out[i:], b[i:])
			c2.Decrypt(out[i+8:], b[i+8:])
		} else {
			c1.Encrypt(out[i:], b[i:])
			c2.Encrypt(out[i+8:], b[i+8:])
		}
	}
	return out
}
