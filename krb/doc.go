// Package krb is the home of the lab's Kerberos protocol code, one package
// per specification; it holds no code itself. Every tier imports the pieces it
// needs from here and nowhere else, so each piece is written once:
//
//	der        X.690 DER framing (TLV read and write) for the layers gofork handles poorly
//	kerr       RFC 4120 §7.5.9 error codes, NTSTATUS values, KERB-EXT-ERROR (MS-KILE 2.2.1)
//	kcrypto    RFC 3961/3962 encryption, checksums, string-to-key; fast AES, gokrb5 for the rest
//	kmsg       RFC 4120 messages: tickets, KDC-REQ/REP, AP-REQ/REP, KRB-CRED, KRB-ERROR,
//	           PA-DATA (incl. MS-SFU 2.2 PA-FOR-USER, PA-PAC-OPTIONS), names, flags, TCP framing
//	pac        MS-PAC: the PAC buffers in NDR, signatures, S4U_DELEGATION_INFO
//	ccache     MIT credential cache file format
//	keytab     MIT keytab file format
//	gss        RFC 4121/4178: GSS krb5 tokens, SPNEGO, the 0x8003 checksum, acceptor, initiator, replay cache
//	kdcclient  the KDC exchange: AS, TGS, S4U2Self, S4U2Proxy, forwarded TGT, transport
//
// Imports point one way: gss and kdcclient → pac, ccache, keytab → kmsg →
// kcrypto → kerr, der. gokrb5 v8 supplies the message structs (messages,
// types) and the non-AES crypto; see each package's doc for what it replaces.
package krb
