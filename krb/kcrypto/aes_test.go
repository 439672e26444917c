package kcrypto

import (
	"bytes"
	"crypto/aes"
	"encoding/hex"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/doublehop/doublehop/krb/kerr"
	"github.com/jcmturner/aescts/v2"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/crypto/rfc3961"
	"github.com/jcmturner/gokrb5/v8/types"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// RFC 3961 Appendix A.1 n-fold vectors.
func TestNfoldRFC3961(t *testing.T) {
	for _, v := range []struct {
		bits int
		in   string
		out  string
	}{
		{64, "012345", "be072631276b1955"},
		{56, "password", "78a07b6caf85fa"},
		{64, "Rough Consensus, and Running Code", "bb6ed30870b7f0e0"},
		{168, "password", "59e4a8ca7c0385c3c37b3f6d2000247cb6e6bd5b3e"},
		{192, "MASSACHVSETTS INSTITVTE OF TECHNOLOGY", "db3b0d8f0b061e603282b308a50841229ad798fab9540c1b"},
		{168, "Q", "518a54a215a8452a518a54a215a8452a518a54a215"},
		{168, "ba", "fb25d531ae8974499f52fd92ea9857c4ba24cf297e"},
		{64, "kerberos", "6b65726265726f73"},
		{128, "kerberos", "6b65726265726f737b9b5b2b93132b93"},
		{168, "kerberos", "8372c236344e5f1550cd0747e15d62ca7a5a3bcea4"},
		{256, "kerberos", "6b65726265726f737b9b5b2b93132b935c9bdcdad95c9899c4cae4dee6d6cae4"},
	} {
		if got := hex.EncodeToString(nfold([]byte(v.in), v.bits/8)); got != v.out {
			t.Errorf("%d-fold(%q) = %s, want %s", v.bits, v.in, got, v.out)
		}
	}
}

// The usage constants equal gokrb5's n-fold of usage|kind.
func TestUsageConstantMatchesGokrb5(t *testing.T) {
	usages := []uint32{0, 0x7fffffff, 0xffffffff, 1 << 24, 65535}
	for u := uint32(1); u < 600; u++ {
		usages = append(usages, u)
	}
	for _, u := range usages {
		for _, kind := range []byte{0xAA, 0x55, 0x99} {
			c := []byte{byte(u >> 24), byte(u >> 16), byte(u >> 8), byte(u), kind}
			want := rfc3961.Nfold(c, 128)
			got := usageConstant(u, kind)
			if !bytes.Equal(got[:], want) {
				t.Fatalf("usage %d kind %x: %x, gokrb5 %x", u, kind, got, want)
			}
		}
	}
}

// RFC 3962 Appendix B AES-CTS vectors (key "chicken teriyaki", IV zero).
func TestCTSRFC3962(t *testing.T) {
	key := unhex(t, "636869636b656e207465726979616b69")
	in := unhex(t, "4920776f756c64206c696b652074686520"+"47656e6572616c20476175277320436869636b656e2c20706c656173652c"+"20616e6420776f6e746f6e20736f75702e")
	for _, v := range []struct {
		n   int
		out string
	}{
		{17, "c6353568f2bf8cb4d8a580362da7ff7f97"},
		{31, "fc00783e0efdb2c1d445d4c8eff7ed2297687268d6ecccc0c07b25e25ecfe5"},
		{32, "39312523a78662d5be7fcbcc98ebf5a897687268d6ecccc0c07b25e25ecfe584"},
		{47, "97687268d6ecccc0c07b25e25ecfe584b3fffd940c16a18c1b5549d2f838029e39312523a78662d5be7fcbcc98ebf5"},
		{48, "97687268d6ecccc0c07b25e25ecfe5849dad8bbb96c4cdc03bc103e1a194bbd839312523a78662d5be7fcbcc98ebf5a8"},
		{64, "97687268d6ecccc0c07b25e25ecfe58439312523a78662d5be7fcbcc98ebf5a84807efe836ee89a526730dbc2f7bc8409dad8bbb96c4cdc03bc103e1a194bbd8"},
	} {
		b, _ := aes.NewCipher(key)
		buf := make([]byte, v.n, v.n+16)
		copy(buf, in[:v.n])
		ctsEncrypt(b, buf)
		if got := hex.EncodeToString(buf); got != v.out {
			t.Errorf("len %d: %s, want %s", v.n, got, v.out)
		}
		dec := make([]byte, v.n)
		ctsDecrypt(b, dec, buf)
		if !bytes.Equal(dec, in[:v.n]) {
			t.Errorf("len %d: decrypt %x", v.n, dec)
		}
	}
}

// CTS equals aescts (gokrb5's) for every length from one block to a few hundred bytes.
func TestCTSMatchesAescts(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, ks := range []int{16, 32} {
		for n := 16; n < 400; n++ {
			key, in := randBytes(r, ks), randBytes(r, n)
			_, want, err := aescts.Encrypt(key, make([]byte, 16), in)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := aes.NewCipher(key)
			buf := make([]byte, n, n+16)
			copy(buf, in)
			ctsEncrypt(b, buf)
			if !bytes.Equal(buf, want) {
				t.Fatalf("key %d len %d: %x, aescts %x", ks, n, buf, want)
			}
			dec := make([]byte, n)
			ctsDecrypt(b, dec, want)
			if !bytes.Equal(dec, in) {
				t.Fatalf("key %d len %d: decrypt differs", ks, n)
			}
		}
	}
}

func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.UintN(256))
	}
	return b
}

func randUsage(r *rand.Rand) uint32 {
	if r.IntN(4) == 0 {
		return r.Uint32()
	}
	return uint32(1 + r.IntN(30))
}

// Ours encrypt → gokrb5 decrypt, gokrb5 encrypt → ours decrypt, checksums
// byte-equal, for random keys, usages and plaintexts.
func TestAESMatchesGokrb5(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 3000; i++ {
		et := []int32{ETypeAES128SHA1, ETypeAES256SHA1}[i%2]
		key := types.EncryptionKey{KeyType: et, KeyValue: randBytes(r, KeySize(et))}
		usage := randUsage(r)
		n := r.IntN(300)
		if i%50 == 0 {
			n = 1000 + r.IntN(4000)
		}
		plain := randBytes(r, n)

		ed, err := Encrypt(plain, key, usage, 3)
		if err != nil {
			t.Fatal(err)
		}
		if ed.EType != et || ed.KVNO != 3 || len(ed.Cipher) != 16+n+12 {
			t.Fatalf("encrypted data %d/%d/%d", ed.EType, ed.KVNO, len(ed.Cipher))
		}
		got, err := crypto.DecryptEncPart(ed, key, usage)
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("gokrb5 cannot decrypt ours (etype %d usage %d len %d): %v", et, usage, n, err)
		}
		ged, err := crypto.GetEncryptedData(plain, key, usage, 0)
		if err != nil {
			t.Fatal(err)
		}
		got, err = Decrypt(ged, key, usage)
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("we cannot decrypt gokrb5's (etype %d usage %d len %d): %v", et, usage, n, err)
		}
		if _, err := Decrypt(ged, key, usage+1); err == nil {
			t.Fatal("decrypt with the wrong usage succeeded")
		}

		sum, err := Checksum(key, usage, plain)
		if err != nil {
			t.Fatal(err)
		}
		gt, _ := crypto.GetEtype(et)
		want, _ := gt.GetChecksumHash(key.KeyValue, plain, usage)
		if sum.CksumType != gt.GetHashID() || !bytes.Equal(sum.Checksum, want) {
			t.Fatalf("checksum %d %x, gokrb5 %d %x", sum.CksumType, sum.Checksum, gt.GetHashID(), want)
		}
		if err := VerifyChecksum(key, usage, plain, sum); err != nil {
			t.Fatal(err)
		}
		bad := types.Checksum{CksumType: sum.CksumType, Checksum: bytes.Clone(sum.Checksum)}
		bad.Checksum[r.IntN(len(bad.Checksum))] ^= 1 << r.IntN(8)
		if err := VerifyChecksum(key, usage, plain, bad); err == nil {
			t.Fatal("a modified checksum verified")
		}
		if err := VerifyChecksum(key, usage, plain, types.Checksum{CksumType: sum.CksumType, Checksum: sum.Checksum[:11]}); err == nil {
			t.Fatal("a short checksum verified")
		}
	}
}

// Tampered or truncated ciphertext is an integrity error, never a panic.
func TestAESDecryptRejects(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, et := range []int32{ETypeAES128SHA1, ETypeAES256SHA1} {
		key := types.EncryptionKey{KeyType: et, KeyValue: randBytes(r, KeySize(et))}
		ed, _ := Encrypt(randBytes(r, 100), key, 7, 0)
		for i := 0; i < len(ed.Cipher)*8; i += 3 {
			c := bytes.Clone(ed.Cipher)
			c[i/8] ^= 1 << (i % 8)
			if _, err := Decrypt(types.EncryptedData{EType: et, Cipher: c}, key, 7); err == nil {
				t.Fatalf("bit %d flipped: decrypted", i)
			} else if code, _ := kerr.CodeOf(err); code != kerr.KRB_AP_ERR_BAD_INTEGRITY {
				t.Fatalf("bit %d flipped: %v", i, err)
			}
		}
		for n := 0; n < len(ed.Cipher); n++ {
			_, err := Decrypt(types.EncryptedData{EType: et, Cipher: ed.Cipher[:n]}, key, 7)
			if code, _ := kerr.CodeOf(err); err == nil || code != kerr.KRB_AP_ERR_BAD_INTEGRITY {
				t.Fatalf("truncated to %d: %v", n, err)
			}
		}
		// a key of the wrong length goes to gokrb5 and still does not panic
		odd := types.EncryptionKey{KeyType: et, KeyValue: randBytes(r, 7)}
		if _, err := Decrypt(ed, odd, 7); err == nil {
			t.Fatal("odd key decrypted")
		}
	}
}

// The cache is safe under concurrency and bounded.
func TestDerivedKeyCacheConcurrent(t *testing.T) {
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 9))
			for i := 0; i < 1500; i++ {
				key := types.EncryptionKey{KeyType: ETypeAES256SHA1, KeyValue: randBytes(r, 32)}
				if i%3 == 0 {
					key.KeyValue = bytes.Repeat([]byte{byte(g)}, 32)
				}
				ed, err := Encrypt([]byte("hello"), key, 2, 0)
				if err != nil {
					t.Error(err)
					return
				}
				if p, err := Decrypt(ed, key, 2); err != nil || string(p) != "hello" {
					t.Error("round trip failed", err)
					return
				}
			}
		}(g)
	}
	wg.Wait()
	dkCache.RLock()
	n := len(dkCache.m)
	dkCache.RUnlock()
	if n > dkCacheMax {
		t.Fatalf("cache holds %d entries, bound %d", n, dkCacheMax)
	}
}

func BenchmarkAESEncrypt1K(b *testing.B) {
	key := types.EncryptionKey{KeyType: ETypeAES256SHA1, KeyValue: bytes.Repeat([]byte{1}, 32)}
	plain := make([]byte, 1024)
	b.ReportAllocs()
	for b.Loop() {
		Encrypt(plain, key, 2, 0)
	}
}

func BenchmarkGokrb5Encrypt1K(b *testing.B) {
	key := types.EncryptionKey{KeyType: ETypeAES256SHA1, KeyValue: bytes.Repeat([]byte{1}, 32)}
	plain := make([]byte, 1024)
	b.ReportAllocs()
	for b.Loop() {
		crypto.GetEncryptedData(plain, key, 2, 0)
	}
}

// The plain crypto/hmac path (used when SHA-1 cannot be cloned) gives the same MAC.
func TestHMACStateFallback(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	for i := 0; i < 200; i++ {
		key, data := randBytes(r, 16+16*(i%2)), randBytes(r, r.IntN(3000))
		st := newHMACState(key)
		fast := st.sum96(nil, data)
		st.inner, st.outer = nil, nil
		if slow := st.sum96(nil, data); !bytes.Equal(fast, slow) {
			t.Fatalf("cloned-state HMAC %x, crypto/hmac %x", fast, slow)
		}
	}
}
