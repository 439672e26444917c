package kcrypto

import (
	"crypto/hmac"
	"crypto/rand"
	"fmt"

	"github.com/doublehop/doublehop/krb/kerr"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/types"
)

// Encryption types (RFC 3961 §8, RFC 3962, RFC 8009, RFC 4757).
const (
	ETypeAES128SHA1   int32 = 17
	ETypeAES256SHA1   int32 = 18
	ETypeAES128SHA256 int32 = 19
	ETypeAES256SHA384 int32 = 20
	ETypeRC4HMAC      int32 = 23
)

// Key usages (RFC 4120 §7.5.1, MS-PAC 2.8, MS-SFU 2.2.1).
const (
	UsageASReqTimestamp      uint32 = 1
	UsageTicket              uint32 = 2
	UsageASRepEncPart        uint32 = 3
	UsageTGSReqAuthData      uint32 = 4
	UsageTGSReqAuthDataSub   uint32 = 5
	UsageTGSReqChecksum      uint32 = 6
	UsageTGSReqAuthenticator uint32 = 7
	UsageTGSRepEncPart       uint32 = 8
	UsageTGSRepEncPartSub    uint32 = 9
	UsageAPReqChecksum       uint32 = 10
	UsageAPReqAuthenticator  uint32 = 11
	UsageAPRepEncPart        uint32 = 12
	UsageKRBCredEncPart      uint32 = 14
	UsagePACChecksum         uint32 = 17 // KERB_NON_KERB_CKSUM_SALT
	UsageForUserChecksum     uint32 = 17 // MS-SFU 2.2.1 PA-FOR-USER checksum
	UsageGSSInitiatorSeal    uint32 = 24
	UsageFastReqChecksum     uint32 = 50 // RFC 6113 §5.4: the armored request's checksum of the outer body
	UsageFastEnc             uint32 = 51 // KrbFastReq under the armor key
	UsageFastRep             uint32 = 52 // KrbFastResponse under the armor key
	UsageFastFinished        uint32 = 53 // KrbFastFinished's ticket checksum
	UsageEncChallengeClient  uint32 = 54 // PA-ENCRYPTED-CHALLENGE from the client
	UsageEncChallengeKDC     uint32 = 55 // PA-ENCRYPTED-CHALLENGE from the KDC
	UsageASReq               uint32 = 56 // KEY_USAGE_AS_REQ, PA-REQ-ENC-PA-REP (RFC 6806 §11)
)

// minCipher is the shortest ciphertext each etype can produce: confounder + HMAC
// (RFC 3961 §5.3). Shorter input would panic inside gokrb5 (notes: gokrb5 §5.1).
func minCipher(etype int32) int {
	switch etype {
	case ETypeAES128SHA1, ETypeAES256SHA1:
		return 16 + 12
	case ETypeAES128SHA256:
		return 16 + 16
	case ETypeAES256SHA384:
		return 16 + 24
	case ETypeRC4HMAC:
		return 16 + 8
	case 16: // des3-cbc-sha1-kd
		return 8 + 20
	}
	return 0
}

// Decrypt decrypts ed with key for the given key usage. It checks lengths before
// calling gokrb5 and turns any panic below into KRB_AP_ERR_BAD_INTEGRITY, so
// hostile ciphertext never crashes a server.
func Decrypt(ed types.EncryptedData, key types.EncryptionKey, usage uint32) (plain []byte, err error) {
	if ed.EType != key.KeyType {
		return nil, kerr.Errorf(kerr.KRB_AP_ERR_BADKEYVER, "ETYPE_MISMATCH", "ciphertext etype %d, key etype %d", ed.EType, key.KeyType)
	}
	m := minCipher(ed.EType)
	if m == 0 {
		return nil, kerr.Errorf(kerr.KDC_ERR_ETYPE_NOSUPP, "ETYPE_NOSUPP", "unsupported etype %d", ed.EType)
	}
	if len(ed.Cipher) < m {
		return nil, kerr.Errorf(kerr.KRB_AP_ERR_BAD_INTEGRITY, "SHORT_CIPHERTEXT", "ciphertext of %d bytes is shorter than %d", len(ed.Cipher), m)
	}
	defer func() {
		if r := recover(); r != nil {
			plain, err = nil, kerr.Errorf(kerr.KRB_AP_ERR_BAD_INTEGRITY, "DECRYPT_PANIC", "malformed ciphertext")
		}
	}()
	if fastAES(key.KeyValue, key.KeyType) {
		p, ok, err := aesDecrypt(key.KeyValue, key.KeyType, usage, ed.Cipher)
		if err != nil || !ok {
			return nil, kerr.Errorf(kerr.KRB_AP_ERR_BAD_INTEGRITY, "INTEGRITY", "decrypt: integrity check failed")
		}
		return p, nil
	}
	plain, err = crypto.DecryptEncPart(ed, key, usage)
	if err != nil {
		return nil, kerr.Errorf(kerr.KRB_AP_ERR_BAD_INTEGRITY, "INTEGRITY", "decrypt: integrity check failed")
	}
	return plain, nil
}

// Encrypt encrypts plain with key for usage, labelled with kvno (0 = omitted).
func Encrypt(plain []byte, key types.EncryptionKey, usage uint32, kvno int) (types.EncryptedData, error) {
	if usage != 0 && fastAES(key.KeyValue, key.KeyType) {
		c, err := aesEncrypt(key.KeyValue, key.KeyType, usage, plain)
		if err != nil {
			return types.EncryptedData{}, err
		}
		return types.EncryptedData{EType: key.KeyType, Cipher: c, KVNO: kvno}, nil
	}
	return crypto.GetEncryptedData(plain, key, usage, kvno)
}

// KeySize is the protocol key length of an etype. gokrb5 reports 24 for etype 20,
// which is wrong (RFC 8009 §6: 32), so session keys are generated here.
func KeySize(etype int32) int {
	switch etype {
	case ETypeAES128SHA1, ETypeAES128SHA256, ETypeRC4HMAC:
		return 16
	case ETypeAES256SHA1, ETypeAES256SHA384:
		return 32
	}
	return 0
}

// NewSessionKey makes a random key of the given etype.
func NewSessionKey(etype int32) (types.EncryptionKey, error) {
	n := KeySize(etype)
	if n == 0 {
		return types.EncryptionKey{}, kerr.Errorf(kerr.KDC_ERR_ETYPE_NOSUPP, "ETYPE_NOSUPP", "no session keys for etype %d", etype)
	}
	k := make([]byte, n)
	if _, err := rand.Read(k); err != nil {
		return types.EncryptionKey{}, err
	}
	return types.EncryptionKey{KeyType: etype, KeyValue: k}, nil
}

// Checksum computes the keyed checksum of key's etype (RFC 3961 get_mic) and
// returns it with its checksum type.
func Checksum(key types.EncryptionKey, usage uint32, data []byte) (types.Checksum, error) {
	if fastAES(key.KeyValue, key.KeyType) {
		sum, err := aesChecksum(key.KeyValue, key.KeyType, usage, data)
		if err != nil {
			return types.Checksum{}, err
		}
		return types.Checksum{CksumType: aesCksumType(key.KeyType), Checksum: sum}, nil
	}
	et, err := crypto.GetEtype(key.KeyType)
	if err != nil {
		return types.Checksum{}, kerr.Errorf(kerr.KDC_ERR_ETYPE_NOSUPP, "ETYPE_NOSUPP", "%v", err)
	}
	sum, err := et.GetChecksumHash(key.KeyValue, data, usage)
	if err != nil {
		return types.Checksum{}, err
	}
	return types.Checksum{CksumType: et.GetHashID(), Checksum: sum}, nil
}

// VerifyChecksum checks a keyed checksum; the checksum type must belong to the
// key's etype (RFC 4120 §7.2.2 forbids unkeyed or mismatched types here).
func VerifyChecksum(key types.EncryptionKey, usage uint32, data []byte, c types.Checksum) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = kerr.Errorf(kerr.KRB_AP_ERR_MODIFIED, "CHECKSUM_PANIC", "malformed checksum")
		}
	}()
	et, err := crypto.GetChksumEtype(c.CksumType)
	if err != nil {
		return kerr.Errorf(kerr.KDC_ERR_SUMTYPE_NOSUPP, "SUMTYPE_NOSUPP", "checksum type %d", c.CksumType)
	}
	if et.GetETypeID() != key.KeyType {
		return kerr.Errorf(kerr.KRB_AP_ERR_INAPP_CKSUM, "INAPP_CKSUM", "checksum type %d does not match key etype %d", c.CksumType, key.KeyType)
	}
	if (c.CksumType == CksumSHA1AES128 || c.CksumType == CksumSHA1AES256) && fastAES(key.KeyValue, key.KeyType) {
		sum, err := aesChecksum(key.KeyValue, key.KeyType, usage, data)
		if err != nil || !hmac.Equal(c.Checksum, sum) {
			return kerr.Errorf(kerr.KRB_AP_ERR_MODIFIED, "BAD_CHECKSUM", "checksum does not verify")
		}
		return nil
	}
	if !et.VerifyChecksum(key.KeyValue, data, c.Checksum, usage) {
		return kerr.Errorf(kerr.KRB_AP_ERR_MODIFIED, "BAD_CHECKSUM", "checksum does not verify")
	}
	return nil
}

// StringToKey derives a long-term key from a password and salt (RFC 3962 §4, RFC 4757 §3).
func StringToKey(password, salt string, etype int32) (types.EncryptionKey, error) {
	et, err := crypto.GetEtype(etype)
	if err != nil {
		return types.EncryptionKey{}, kerr.Errorf(kerr.KDC_ERR_ETYPE_NOSUPP, "ETYPE_NOSUPP", "%v", err)
	}
	k, err := et.StringToKey(password, salt, et.GetDefaultStringToKeyParams())
	if err != nil {
		return types.EncryptionKey{}, fmt.Errorf("string-to-key etype %d: %w", etype, err)
	}
	if n := KeySize(etype); n != 0 && len(k) != n {
		return types.EncryptionKey{}, fmt.Errorf("string-to-key etype %d: key of %d bytes", etype, len(k))
	}
	return types.EncryptionKey{KeyType: etype, KeyValue: k}, nil
}

func ETypeName(e int32) string {
	switch e {
	case ETypeAES256SHA1:
		return "aes256-cts"
	case ETypeAES128SHA1:
		return "aes128-cts"
	case ETypeRC4HMAC:
		return "rc4-hmac"
	}
	return fmt.Sprintf("etype %d", e)
}
