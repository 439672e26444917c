package kcrypto

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/binary"
	"hash"
	"sync"
)

// Fast RFC 3961 simplified profile for aes128-cts-hmac-sha1-96 (17) and
// aes256-cts-hmac-sha1-96 (18), RFC 3962. gokrb5 re-derives Ke/Ki/Kc (and
// recomputes the n-fold of the usage constant bit by bit) on every operation;
// here the derived keys are computed once per (key, usage) and kept in a
// bounded cache, ready to use: the AES key schedule of Ke and the HMAC-SHA1
// inner/outer states of Ki and Kc. Derivation is a pure function of the key
// bytes and the usage, so the cache never changes a result. Byte-equivalence
// with gokrb5 is tested in aes_test.go.

const (
	aesBlock              = 16
	aesConfounder         = 16 // RFC 3962 §6: confounder of one cipher block
	aesMAC                = 12 // HMAC-SHA1-96
	CksumSHA1AES128 int32 = 15 // hmac-sha1-96-aes128 (RFC 3962 §7)
	CksumSHA1AES256 int32 = 16 // hmac-sha1-96-aes256
)

// aesKeySize returns the key length of a simplified-profile AES etype, 0 otherwise.
func aesKeySize(etype int32) int {
	switch etype {
	case ETypeAES128SHA1:
		return 16
	case ETypeAES256SHA1:
		return 32
	}
	return 0
}

// fastAES reports whether key is handled by the fast path: etype 17/18 with a
// key of the right length (anything else goes to gokrb5, unchanged).
func fastAES(key []byte, etype int32) bool {
	n := aesKeySize(etype)
	return n != 0 && len(key) == n
}

// aesCksumType is the checksum type of a simplified-profile AES etype.
func aesCksumType(etype int32) int32 {
	if etype == ETypeAES128SHA1 {
		return CksumSHA1AES128
	}
	return CksumSHA1AES256
}

// hmacState is HMAC-SHA1 with the key already absorbed: the SHA-1 states after
// the ipad and the opad blocks (RFC 2104), cloned for each message. key serves
// the plain crypto/hmac path when the hash cannot be cloned.
type hmacState struct {
	inner, outer hash.Cloner
	key          []byte
}

func newHMACState(key []byte) hmacState {
	st := hmacState{key: append([]byte(nil), key...)}
	var ipad, opad [sha1.BlockSize]byte
	copy(ipad[:], key) // derived keys are 16 or 32 bytes, shorter than a block
	copy(opad[:], key)
	for i := range ipad {
		ipad[i] ^= 0x36
		opad[i] ^= 0x5c
	}
	in, out := sha1.New(), sha1.New()
	in.Write(ipad[:])
	out.Write(opad[:])
	ic, ok1 := in.(hash.Cloner)
	oc, ok2 := out.(hash.Cloner)
	if ok1 && ok2 {
		st.inner, st.outer = ic, oc
	}
	return st
}

// sum96 appends HMAC-SHA1(key, data) truncated to 96 bits to dst.
func (s *hmacState) sum96(dst, data []byte) []byte {
	var full [sha1.Size]byte
	if s.inner != nil {
		ic, err1 := s.inner.Clone()
		oc, err2 := s.outer.Clone()
		if err1 == nil && err2 == nil {
			h := ic.(hash.Hash)
			h.Write(data)
			h.Sum(full[:0])
			o := oc.(hash.Hash)
			o.Write(full[:])
			o.Sum(full[:0])
			return append(dst, full[:aesMAC]...)
		}
	}
	m := hmac.New(sha1.New, s.key)
	m.Write(data)
	m.Sum(full[:0])
	return append(dst, full[:aesMAC]...)
}

// aesUsageKeys are the derived keys of one (key, usage) (RFC 3961 §5.3):
// Ke = DK(key, usage|0xAA), Ki = DK(key, usage|0x55), Kc = DK(key, usage|0x99).
type aesUsageKeys struct {
	ke     cipher.Block
	ki, kc hmacState
}

type dkCacheKey struct {
	etype int32
	usage uint32
	key   [32]byte
}

// dkCacheMax bounds the derived-key cache. A KDC touches a handful of
// long-term keys plus one session key per TGT in use; past the bound a random
// entry is evicted.
const dkCacheMax = 4096

var dkCache = struct {
	sync.RWMutex
	m map[dkCacheKey]*aesUsageKeys
}{m: make(map[dkCacheKey]*aesUsageKeys)}

// usageKeys returns the derived keys of (key, usage), from the cache or derived now.
func usageKeys(key []byte, etype int32, usage uint32) (*aesUsageKeys, error) {
	ck := dkCacheKey{etype: etype, usage: usage}
	copy(ck.key[:], key)
	dkCache.RLock()
	k := dkCache.m[ck]
	dkCache.RUnlock()
	if k != nil {
		return k, nil
	}
	k, err := deriveUsageKeys(key, usage)
	if err != nil {
		return nil, err
	}
	dkCache.Lock()
	if old := dkCache.m[ck]; old != nil {
		k = old
	} else {
		if len(dkCache.m) >= dkCacheMax {
			for victim := range dkCache.m { // map iteration starts at a random entry
				delete(dkCache.m, victim)
				break
			}
		}
		dkCache.m[ck] = k
	}
	dkCache.Unlock()
	return k, nil
}

func deriveUsageKeys(key []byte, usage uint32) (*aesUsageKeys, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	var buf [32]byte
	ke := dk(b, len(key), usageConstant(usage, 0xAA), buf[:0])
	keb, err := aes.NewCipher(ke)
	if err != nil {
		return nil, err
	}
	k := &aesUsageKeys{ke: keb}
	k.ki = newHMACState(dk(b, len(key), usageConstant(usage, 0x55), buf[:0]))
	k.kc = newHMACState(dk(b, len(key), usageConstant(usage, 0x99), buf[:0]))
	clear(buf[:])
	return k, nil
}

// dk is DK(key, constant) = random-to-key(DR(key, constant)) for AES (RFC 3961
// §5.1, RFC 3962 §4: random-to-key is the identity): the cipher block chain,
// starting from n-fold(constant, 128), until keyLen bytes are produced.
func dk(b cipher.Block, keyLen int, constant [aesBlock]byte, dst []byte) []byte {
	in := constant
	var out [aesBlock]byte
	for len(dst) < keyLen {
		b.Encrypt(out[:], in[:])
		dst = append(dst, out[:min(aesBlock, keyLen-len(dst))]...)
		in = out
	}
	return dst
}

// usageConstant is n-fold(usage (4 bytes, big-endian) | kind, 128), cached.
func usageConstant(usage uint32, kind byte) [aesBlock]byte {
	id := uint64(usage)<<8 | uint64(kind)
	if v, ok := nfoldCache.Load(id); ok {
		return v.([aesBlock]byte)
	}
	var c [5]byte
	binary.BigEndian.PutUint32(c[:], usage)
	c[4] = kind
	var out [aesBlock]byte
	copy(out[:], nfold(c[:], aesBlock))
	nfoldCache.Store(id, out)
	return out
}

// nfoldCache holds n-fold results per constant; usages are chosen by code, not
// by peers, so it stays small.
var nfoldCache sync.Map

// nfold is the n-fold operation of RFC 3961 §5.1 producing outLen bytes
// (the byte-oriented algorithm of MIT krb5's krb5int_nfold).
func nfold(in []byte, outLen int) []byte {
	inLen := len(in)
	lcm := inLen * outLen / gcd(inLen, outLen)
	out := make([]byte, outLen)
	inBits := inLen << 3
	carry := 0
	for i := lcm - 1; i >= 0; i-- {
		// the bit of the rotated, replicated input that lands on the msb of this byte
		msbit := (inBits - 1 + (inBits+13)*(i/inLen) + (inLen-i%inLen)<<3) % inBits
		hi := int(in[((inLen-1)-(msbit>>3))%inLen])
		lo := int(in[(inLen-(msbit>>3))%inLen])
		carry += ((hi<<8 | lo) >> ((msbit & 7) + 1)) & 0xff
		carry += int(out[i%outLen])
		out[i%outLen] = byte(carry)
		carry >>= 8
	}
	if carry != 0 { // end-around carry of the ones'-complement sum
		for i := outLen - 1; i >= 0; i-- {
			carry += int(out[i])
			out[i] = byte(carry)
			carry >>= 8
		}
	}
	return out
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// aesEncrypt is the simplified-profile encryption (RFC 3961 §5.3): a random
// confounder, AES-CTS (CBC-CS3, zero IV) of confounder|plain under Ke, then
// HMAC-SHA1-96 of confounder|plain under Ki.
func aesEncrypt(key []byte, etype int32, usage uint32, plain []byte) ([]byte, error) {
	k, err := usageKeys(key, etype, usage)
	if err != nil {
		return nil, err
	}
	n := aesConfounder + len(plain)
	buf := make([]byte, n, n+aesBlock+aesMAC) // room for the CTS pad and the MAC
	if _, err := rand.Read(buf[:aesConfounder]); err != nil {
		return nil, err
	}
	copy(buf[aesConfounder:], plain)
	var mac [aesMAC]byte
	k.ki.sum96(mac[:0], buf)
	ctsEncrypt(k.ke, buf) // uses the spare capacity for the padding, then clears it
	return append(buf, mac[:]...), nil
}

// aesDecrypt reverses aesEncrypt and checks the MAC in constant time; the
// caller guarantees len(ct) ≥ confounder + MAC.
func aesDecrypt(key []byte, etype int32, usage uint32, ct []byte) ([]byte, bool, error) {
	k, err := usageKeys(key, etype, usage)
	if err != nil {
		return nil, false, err
	}
	n := len(ct) - aesMAC
	plain := make([]byte, n)
	ctsDecrypt(k.ke, plain, ct[:n])
	var mac [aesMAC]byte
	k.ki.sum96(mac[:0], plain)
	if subtle.ConstantTimeCompare(mac[:], ct[n:]) != 1 {
		clear(plain)
		return nil, false, nil
	}
	return plain[aesConfounder:], true, nil
}

// aesChecksum is get_mic of the simplified profile: HMAC-SHA1-96 under Kc.
func aesChecksum(key []byte, etype int32, usage uint32, data []byte) ([]byte, error) {
	k, err := usageKeys(key, etype, usage)
	if err != nil {
		return nil, err
	}
	return k.kc.sum96(make([]byte, 0, aesMAC), data), nil
}

// ctsEncrypt encrypts b (at least one block) in place with AES-CBC-CS3 and a
// zero IV (RFC 3962 §5): plain CBC over the zero-padded input, then the last
// two cipher blocks swapped and the output cut to len(b). b must have room for
// the padding in its capacity (up to 15 bytes).
func ctsEncrypt(c cipher.Block, b []byte) {
	l := len(b)
	if l <= aesBlock {
		var blk [aesBlock]byte
		copy(blk[:], b)
		c.Encrypt(blk[:], blk[:])
		copy(b, blk[:]) // l == 16 here: the confounder alone fills a block
		return
	}
	nb := (l + aesBlock - 1) / aesBlock
	padded := b[:nb*aesBlock]
	clear(padded[l:])
	var iv [aesBlock]byte
	for i := 0; i < nb; i++ {
		blk := padded[i*aesBlock : (i+1)*aesBlock]
		subtle.XORBytes(blk, blk, iv[:])
		c.Encrypt(blk, blk)
		copy(iv[:], blk)
	}
	// swap C(n-1) and C(n): C1..C(n-2), Cn, C(n-1) truncated
	var prev [aesBlock]byte
	copy(prev[:], padded[(nb-2)*aesBlock:(nb-1)*aesBlock])
	copy(padded[(nb-2)*aesBlock:], padded[(nb-1)*aesBlock:nb*aesBlock])
	copy(padded[(nb-1)*aesBlock:l], prev[:])
	clear(padded[l:])
}

// ctsDecrypt decrypts ct (at least one block) into dst (same length) with
// AES-CBC-CS3 and a zero IV.
func ctsDecrypt(c cipher.Block, dst, ct []byte) {
	l := len(ct)
	if l == aesBlock {
		c.Decrypt(dst, ct)
		return
	}
	nb := (l + aesBlock - 1) / aesBlock
	d := l - (nb-1)*aesBlock // bytes in the last (partial) block, 1..16
	var iv [aesBlock]byte
	for i := 0; i < nb-2; i++ {
		c.Decrypt(dst[i*aesBlock:(i+1)*aesBlock], ct[i*aesBlock:(i+1)*aesBlock])
		subtle.XORBytes(dst[i*aesBlock:(i+1)*aesBlock], dst[i*aesBlock:(i+1)*aesBlock], iv[:])
		copy(iv[:], ct[i*aesBlock:(i+1)*aesBlock])
	}
	cn := ct[(nb-2)*aesBlock : (nb-1)*aesBlock] // the last CBC block, sent first
	tail := ct[(nb-1)*aesBlock:]                // the first d bytes of C(n-1)
	var x, cprev [aesBlock]byte
	c.Decrypt(x[:], cn) // = Pn|0… XOR C(n-1)
	copy(cprev[:], tail)
	copy(cprev[d:], x[d:]) // the zero padding of Pn reveals the rest of C(n-1)
	subtle.XORBytes(dst[(nb-1)*aesBlock:], x[:d], tail)
	var p [aesBlock]byte
	c.Decrypt(p[:], cprev[:])
	subtle.XORBytes(dst[(nb-2)*aesBlock:(nb-1)*aesBlock], p[:], iv[:])
}
