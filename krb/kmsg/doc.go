// Package kmsg holds the Kerberos messages (RFC 4120 §5) and their DER codec,
// one file per message: ticket.go (Ticket, EncTicketPart §5.3), kdcreq.go
// (KDC-REQ parsing §5.4.1), asreq.go and tgsreq.go (building AS-REQ and a
// TGS-REQ signed over the body actually sent), kdcrep.go (KDC-REP §5.4.2),
// apreq.go and aprep.go (§5.5), krbcred.go (§5.8), krberror.go (§5.9.1),
// authdata.go (AD-IF-RELEVANT and AD-WIN2K-PAC, §5.2.6, MS-PAC 4), s4u.go
// (MS-SFU 2.2.1 PA-FOR-USER, 2.2.5 PA-PAC-OPTIONS), names.go (principal names
// and flags), frame.go (TCP record framing, §7.2.2).
//
// The message structs are gokrb5's (messages, types). The encoders in
// derenc.go and the decoders in derdec.go replace gofork's reflection-based
// encoding/asn1 on the KDC's hot path; they are byte-identical to gofork on
// random structures (derenc_test.go, derdec_test.go, a fuzz target), and
// input they do not recognise as canonical DER falls back to gofork.
// gokrb5's own marshalling is not used where it is wrong: it cannot encode
// EncTicketPart, tags EncTGSRepPart as [APPLICATION 25] and KrbCredInfo's
// realms as IA5String (notes/gokrb5.md).
package kmsg
