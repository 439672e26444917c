// Package der reads and writes DER (ITU-T X.690) elements with single-byte
// tags and definite lengths: the framing of GSS-API tokens (RFC 2743 §3.1),
// SPNEGO (RFC 4178 §4.2) and hand-built Kerberos messages. Every length is
// checked against the input; nothing here panics. gofork's encoding/asn1
// remains the fallback for full Kerberos structures (package kmsg).
package der
