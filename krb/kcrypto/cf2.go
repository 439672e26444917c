package kcrypto

import (
	"crypto/aes"
	"crypto/hmac"
	"crypto/sha1"
	"fmt"

	"github.com/jcmturner/gokrb5/v8/types"
)

// PRF is the enctype's pseudo-random function (RFC 3961 §3): for AES
// (RFC 3962 §4) the first block of SHA-1(data) encrypted with DK(key,
// "prf"); for RC4 (RFC 4757 §3) HMAC-SHA1 of data under the key.
func PRF(key types.EncryptionKey, data []byte) ([]byte, error) {
	switch key.KeyType {
	case ETypeAES128SHA1, ETypeAES256SHA1:
		if len(key.KeyValue) != aesKeySize(key.KeyType) {
			return nil, fmt.Errorf("PRF: %d-byte key for %s", len(key.KeyValue), ETypeName(key.KeyType))
		}
		b, err := aes.NewCipher(key.KeyValue)
		if err != nil {
			return nil, err
		}
		var c [aesBlock]byte
		copy(c[:], nfold([]byte("prf"), aesBlock))
		kb, err := aes.NewCipher(dk(b, len(key.KeyValue), c, nil))
		if err != nil {
			return nil, err
		}
		h := sha1.Sum(data)
		out := make([]byte, aesBlock)
		kb.Encrypt(out, h[:aesBlock])
		return out, nil
	case ETypeRC4HMAC:
		m := hmac.New(sha1.New, key.KeyValue)
		m.Write(data)
		return m.Sum(nil), nil
	}
	return nil, fmt.Errorf("PRF: enctype %d not supported", key.KeyType)
}

// prfPlus is PRF+ (RFC 6113 §5.1): PRF(key, 1|pepper) | PRF(key, 2|pepper)
// | ..., n bytes of it.
func prfPlus(key types.EncryptionKey, pepper string, n int) ([]byte, error) {
	var out []byte
	for i := byte(1); len(out) < n; i++ {
		p, err := PRF(key, append([]byte{i}, pepper...))
		if err != nil {
			return nil, err
		}
		out = append(out, p...)
	}
	return out[:n], nil
}

// CF2 is KRB-FX-CF2 (RFC 6113 §5.1): the key of k1's enctype made from
// PRF+(k1, pepper1) XOR PRF+(k2, pepper2) (random-to-key is the identity
// for AES and RC4). FAST's armor, challenge and strengthened reply keys.
func CF2(k1, k2 types.EncryptionKey, pepper1, pepper2 string) (types.EncryptionKey, error) {
	n := KeySize(k1.KeyType)
	if n == 0 {
		return types.EncryptionKey{}, fmt.Errorf("KRB-FX-CF2: enctype %d not supported", k1.KeyType)
	}
	a, err := prfPlus(k1, pepper1, n)
	if err != nil {
		return types.EncryptionKey{}, err
	}
	b, err := prfPlus(k2, pepper2, n)
	if err != nil {
		return types.EncryptionKey{}, err
	}
	for i := range a {
		a[i] ^= b[i]
	}
	return types.EncryptionKey{KeyType: k1.KeyType, KeyValue: a}, nil
}
