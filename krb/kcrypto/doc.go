// Package kcrypto is Kerberos cryptography (RFC 3961 simplified profile,
// RFC 3962 AES-CTS-HMAC-SHA1-96, RFC 4757 RC4-HMAC via gokrb5): encrypt,
// decrypt, keyed checksums and string-to-key, by key usage (RFC 4120 §7.5.1).
//
// AES (etypes 17, 18) is our own code, byte-identical to gokrb5 (aes_test.go)
// and several times faster, because derived keys are cached per (key, usage);
// BENCHMARKS.md has the figures. Other etypes go through gokrb5's crypto after
// length checks, with any panic turned into KRB_AP_ERR_BAD_INTEGRITY.
package kcrypto
