// Package gss is the Kerberos GSS-API mechanism (RFC 4121) and SPNEGO
// (RFC 4178, RFC 4559 for HTTP): context tokens and their framing (gss.go),
// the 0x8003 authenticator checksum with its flags and forwarded TGT
// (gsscksum.go, the only place it is built or read), the acceptor a service
// uses to verify an AP-REQ the way Windows does, with its account key
// whatever SPN the ticket names (acceptor.go), the initiator's token and its
// check of the AP-REP (initiator.go), and the replay cache (replay.go).
//
// gokrb5's spnego/service acceptor is not used: it rejects MIT 1.20 tickets
// (no LOGON_INFO), sends no KRB-ERROR back, and keeps a process-global replay
// cache (notes/gokrb5.md).
package gss
