package dcerpc

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/doublehop/doublehop/krb/gss"
	"github.com/doublehop/doublehop/ntlm"
)

// Authentication services (MS-RPCE 2.2.1.1.7) and levels (2.2.1.1.8).
const (
	AuthNone     = 0
	AuthSPNEGO   = 9  // RPC_C_AUTHN_GSS_NEGOTIATE
	AuthNTLM     = 10 // RPC_C_AUTHN_WINNT
	AuthKerberos = 16 // RPC_C_AUTHN_GSS_KERBEROS

	LevelNone      = 1
	LevelConnect   = 2
	LevelCall      = 3
	LevelPacket    = 4
	LevelIntegrity = 5
	LevelPrivacy   = 6
)

// AuthTypeName names an authentication service as Windows' event log does.
func AuthTypeName(t byte) string {
	switch t {
	case AuthNone:
		return "none"
	case AuthSPNEGO:
		return "Negotiate"
	case AuthNTLM:
		return "NTLM"
	case AuthKerberos:
		return "Kerberos"
	}
	return fmt.Sprintf("auth type %d", t)
}

// LevelName names an authentication level.
func LevelName(l byte) string {
	return map[byte]string{LevelNone: "none", LevelConnect: "connect", LevelCall: "call", LevelPacket: "packet",
		LevelIntegrity: "packet integrity", LevelPrivacy: "packet privacy"}[l]
}

const secTrailerLen = 8

// authVerifier is a PDU's sec_trailer and auth_value (MS-RPCE 2.2.2.11).
type authVerifier struct {
	authType, level, padLen byte
	contextID               uint32
	value                   []byte
}

func parseAuthVerifier(b []byte) (*authVerifier, error) {
	if len(b) < secTrailerLen {
		return nil, protoErr("a sec_trailer of %d bytes", len(b))
	}
	return &authVerifier{authType: b[0], level: b[1], padLen: b[2], contextID: binary.LittleEndian.Uint32(b[4:]),
		value: b[secTrailerLen:]}, nil
}

func (a *authVerifier) append(b []byte) []byte {
	b = append(b, a.authType, a.level, a.padLen, 0)
	b = binary.LittleEndian.AppendUint32(b, a.contextID)
	return append(b, a.value...)
}

// Auth is who called, as the server's security provider established it.
type Auth struct {
	Type   byte   // AuthNTLM, AuthKerberos (the mechanism SPNEGO chose), or AuthNone
	SPNEGO bool   // negotiated inside SPNEGO
	Level  byte   // the authentication level of the calls
	User   string // the account as the DC validated it (sAMAccountName, or the ticket's client)
	Domain string
	Realm  string
	// SessionKey is the context's session key (NTLM's exported key, the
	// Kerberos subkey or session key): what DRSUAPI encrypts secrets with.
	// Secret: never log it.
	SessionKey []byte
}

// Package is the logon package name for events ("NTLM", "Kerberos").
func (a *Auth) Package() string {
	switch a.Type {
	case AuthNTLM:
		return "NTLM"
	case AuthKerberos:
		return "Kerberos"
	}
	return "Anonymous"
}

// Security is what a server needs to authenticate callers: the DC's own
// NTLM validation and its identity in a CHALLENGE, and its Kerberos
// acceptor (nil: NTLM only).
type Security struct {
	NTLM       ntlm.Validator
	NTLMServer ntlm.ServerConfig
	Kerberos   func() (*gss.Acceptor, error)
}

// secContext is one security context on a connection: the handshake, then
// the per-PDU protection.
type secContext struct {
	authType byte
	level    byte
	id       uint32
	sec      *Security

	ntlmAcc *gss.NTLMAcceptor
	ntlm    *ntlm.Session
	sendSeq uint32
	recvSeq uint32
	krb     *krbContext
	auth    *Auth
	hdrSign bool
}

// errAuthFailed carries a refused logon: the connection answers with a
// fault (or bind_nak) and the event names the cause.
type errAuthFailed struct{ err error }

func (e *errAuthFailed) Error() string { return "authentication failed: " + e.err.Error() }
func (e *errAuthFailed) Unwrap() error { return e.err }

// step takes the client's token from a bind, alter_context or auth3 and
// returns the token to answer with (nil: none).
func (s *secContext) step(ctx context.Context, tok []byte) ([]byte, error) {
	switch s.authType {
	case AuthNTLM, AuthSPNEGO:
		if s.authType == AuthSPNEGO && s.ntlmAcc == nil && s.krb == nil && !isNTLMToken(tok) {
			return s.kerberosStep(tok)
		}
		if s.krb != nil {
			return s.kerberosStep(tok)
		}
		if s.ntlmAcc == nil {
			if s.sec.NTLM == nil {
				return nil, &errAuthFailed{errors.New("NTLM is not accepted here")}
			}
			s.ntlmAcc = &gss.NTLMAcceptor{Config: s.sec.NTLMServer}
		}
		out, res, err := s.ntlmAcc.Step(ctx, tok, s.sec.NTLM)
		if err != nil {
			return nil, &errAuthFailed{err}
		}
		if res == nil {
			return out, nil
		}
		if res.Anonymous || res.Session == nil {
			return nil, &errAuthFailed{errors.New("an anonymous NTLM logon cannot protect calls")}
		}
		s.ntlm = res.Session
		if res.MICPresent && s.ntlmAcc.SPNEGO() {
			// SPNEGO's mechListMIC used sequence 0 each way; the RC4
			// streams start over and the numbers go on (MS-SPNG 3.3.5.1).
			s.ntlm = s.ntlm.Reset()
			s.sendSeq, s.recvSeq = 1, 1
		}
		s.auth = &Auth{Type: AuthNTLM, SPNEGO: s.ntlmAcc.SPNEGO(), Level: s.level, User: res.Validation.Account,
			Domain: res.Validation.Domain, SessionKey: res.Session.ExportedKey()}
		return out, nil
	case AuthKerberos:
		return s.kerberosStep(tok)
	}
	return nil, &errAuthFailed{fmt.Errorf("authentication service %d is not offered", s.authType)}
}

func isNTLMToken(tok []byte) bool {
	m, _, _ := gss.SplitNTLM(tok)
	return m != nil
}

// done reports an established context.
func (s *secContext) done() bool { return s.auth != nil }

// sigLen is the auth_value length of a protected PDU.
func (s *secContext) sigLen() int {
	if s.krb != nil {
		return s.krb.sigLen()
	}
	return 16
}

// sigLenOK reports whether a request's auth_value has a possible length:
// a sealed Kerberos token's grows with its filler (EC), which Windows and
// Samba set to 16 and impacket to the stub's padding to 16 bytes, so
// UnsealDCE checks it; the others are fixed.
func (s *secContext) sigLenOK(n int) bool {
	if s.krb != nil && s.level == LevelPrivacy {
		return n >= gss.SealedTokenLen-16 && n <= gss.SealedTokenLen+48
	}
	return n == s.sigLen()
}

// verify checks (and at privacy, decrypts in place) a protected request:
// raw is the whole fragment, data[from:to] the stub and its padding.
func (s *secContext) verify(raw []byte, from, to int, sig []byte) error {
	signed := raw[:len(raw)-len(sig)]
	if s.krb != nil {
		return s.krb.verify(raw, from, to, sig, s.hdrSign, s.level == LevelPrivacy)
	}
	// NTLM with extended session security signs the whole PDU whether or
	// not header signing was negotiated (Windows does; impacket relies on it).
	if s.level == LevelPrivacy {
		s.ntlm.DecryptFromClient(raw[from:to])
	}
	ok := s.ntlm.VerifyClientMAC(s.recvSeq, signed, sig)
	s.recvSeq++
	if !ok {
		return errors.New("the PDU's signature does not verify")
	}
	return nil
}

// protect signs (and at privacy, encrypts in place) a response whose
// auth_value (the last sigLen bytes) is still zero.
func (s *secContext) protect(raw []byte, from, to int) error {
	n := s.sigLen()
	signed := append([]byte(nil), raw[:len(raw)-n]...)
	if s.krb != nil {
		sig, err := s.krb.protect(raw, from, to, s.hdrSign, s.level == LevelPrivacy)
		if err != nil {
			return err
		}
		copy(raw[len(raw)-n:], sig)
		return nil
	}
	if s.level == LevelPrivacy {
		s.ntlm.EncryptToClient(raw[from:to])
	}
	copy(raw[len(raw)-n:], s.ntlm.ServerMAC(s.sendSeq, signed))
	s.sendSeq++
	return nil
}
