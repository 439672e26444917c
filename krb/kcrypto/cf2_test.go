package kcrypto

import (
	"encoding/hex"
	"testing"
)

// KRB-FX-CF2 of string-to-key("key1", salt "key1") and ("key2", "key2")
// with peppers "a" and "b": the AES values are Heimdal's test_fx.c vectors,
// all four as Samba's kcrypto.cf2 computes them.
func TestCF2Vectors(t *testing.T) {
	for _, c := range []struct {
		e1, e2 int32
		want   string
	}{
		{ETypeAES256SHA1, ETypeAES256SHA1, "4d6ca4e629785c1f01baf55e2e548566b9617ae3a96868c337cb93b5e72b1c7b"},
		{ETypeAES128SHA1, ETypeAES128SHA1, "97df97e4b798b29eb31ed7280287a92a"},
		{ETypeAES256SHA1, ETypeAES128SHA1, "520e81ab91debcdb02fb4ab36f49611224dc7d3aefb4a7da405536195133f5cd"},
		{ETypeRC4HMAC, ETypeRC4HMAC, "24d7f6b6bae4e5c00d2082c5ebab3672"},
	} {
		k1, err := StringToKey("key1", "key1", c.e1)
		if err != nil {
			t.Fatal(err)
		}
		k2, err := StringToKey("key2", "key2", c.e2)
		if err != nil {
			t.Fatal(err)
		}
		out, err := CF2(k1, k2, "a", "b")
		if err != nil {
			t.Fatal(err)
		}
		if got := hex.EncodeToString(out.KeyValue); got != c.want || out.KeyType != c.e1 {
			t.Errorf("CF2(%d, %d) = %d %s, want %s", c.e1, c.e2, out.KeyType, got, c.want)
		}
	}
	k, _ := StringToKey("key1", "key1", ETypeAES256SHA1)
	if p, _ := PRF(k, []byte("\x01a")); hex.EncodeToString(p) != "b2628c788e2e9c4a9bb4644678c29f2f" {
		t.Errorf("PRF = %x", p)
	}
}
