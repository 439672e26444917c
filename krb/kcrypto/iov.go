package kcrypto

import (
	"crypto/rand"
	"crypto/subtle"
	"errors"

	"github.com/jcmturner/gokrb5/v8/types"
)

// The simplified profile over scattered buffers, as GSS_Wrap_iov uses it
// (RFC 4121 §4.2.4; MS-KILE 3.4.5.4.1 for DCE/RPC, which seals a PDU's
// stub in place and signs its headers): the confounder and the encrypted
// buffers, in order, go through AES-CTS as one stream; the HMAC covers the
// confounder and every buffer, the sign-only ones included, in order.

// IOV is one buffer of a scattered message.
type IOV struct {
	Data     []byte
	SignOnly bool // covered by the HMAC, never encrypted
}

// ErrIOVEType is a key whose enctype has no scattered form here (RC4 uses
// RFC 4757's token format instead).
var ErrIOVEType = errors.New("kcrypto: scattered encryption needs an AES key (RFC 3962)")

// EncryptIOV encrypts the buffers that are not sign-only in place and
// returns the encrypted confounder and the HMAC.
func EncryptIOV(key types.EncryptionKey, usage uint32, bufs []IOV) (confounder, mac []byte, err error) {
	if !fastAES(key.KeyValue, key.KeyType) {
		return nil, nil, ErrIOVEType
	}
	k, err := usageKeys(key.KeyValue, key.KeyType, usage)
	if err != nil {
		return nil, nil, err
	}
	conf := make([]byte, aesConfounder)
	if _, err := rand.Read(conf); err != nil {
		return nil, nil, err
	}
	macIn := append([]byte(nil), conf...)
	stream := append([]byte(nil), conf...)
	for _, b := range bufs {
		macIn = append(macIn, b.Data...)
		if !b.SignOnly {
			stream = append(stream, b.Data...)
		}
	}
	mac = k.ki.sum96(make([]byte, 0, aesMAC), macIn)
	n := len(stream)
	stream = append(stream, make([]byte, aesBlock)...)[:n] // room for the CTS padding
	ctsEncrypt(k.ke, stream)
	off := copy(conf, stream)
	for _, b := range bufs {
		if !b.SignOnly {
			off += copy(b.Data, stream[off:])
		}
	}
	return conf, mac, nil
}

// DecryptIOV reverses EncryptIOV: the buffers that are not sign-only are
// decrypted in place, then the HMAC is checked over all of them. On a
// mismatch the buffers hold garbage and an error is returned.
func DecryptIOV(key types.EncryptionKey, usage uint32, confounder []byte, bufs []IOV, mac []byte) error {
	if !fastAES(key.KeyValue, key.KeyType) {
		return ErrIOVEType
	}
	if len(confounder) != aesConfounder || len(mac) != aesMAC {
		return errors.New("kcrypto: scattered message with a bad confounder or checksum length")
	}
	k, err := usageKeys(key.KeyValue, key.KeyType, usage)
	if err != nil {
		return err
	}
	stream := append([]byte(nil), confounder...)
	for _, b := range bufs {
		if !b.SignOnly {
			stream = append(stream, b.Data...)
		}
	}
	plain := make([]byte, len(stream))
	ctsDecrypt(k.ke, plain, stream)
	macIn := append([]byte(nil), plain[:aesConfounder]...)
	off := aesConfounder
	for _, b := range bufs {
		if !b.SignOnly {
			off += copy(b.Data, plain[off:])
		}
		macIn = append(macIn, b.Data...)
	}
	want := k.ki.sum96(make([]byte, 0, aesMAC), macIn)
	if subtle.ConstantTimeCompare(want, mac) != 1 {
		return errors.New("kcrypto: scattered message fails its integrity check")
	}
	return nil
}
