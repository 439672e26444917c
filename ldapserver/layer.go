package ldapserver

import (
	"errors"

	"github.com/doublehop/doublehop/krb/gss"
	"github.com/doublehop/doublehop/ntlm"
)

// securityLayer is the per-message protection a SASL bind installed (RFC
// 4422 §3.7): each LDAP buffer is wrapped into a token, or unwrapped from one.
type securityLayer interface {
	wrap(b []byte) ([]byte, error)
	unwrap(tok []byte) ([]byte, error)
	confidential() bool
}

// krbLayer is RFC 4121 wrap tokens (GSSAPI, GSS-SPNEGO with Kerberos).
type krbLayer struct {
	sec  *gss.SecContext
	conf bool
}

func (k krbLayer) wrap(b []byte) ([]byte, error) { return k.sec.Wrap(b, k.conf) }
func (k krbLayer) confidential() bool            { return k.conf }
func (k krbLayer) unwrap(tok []byte) ([]byte, error) {
	msg, sealed, err := k.sec.Unwrap(tok)
	if err == nil && k.conf && !sealed {
		err = errors.New("a buffer not sealed on a confidential layer")
	}
	return msg, err
}

// ntlmLayer is NTLM's message security on an LDAP connection (GSS-SPNEGO
// with NTLM, MS-NLMP 3.4): each buffer is the 16-byte signature, then the
// message, sealed when confidentiality was negotiated.
type ntlmLayer struct {
	s                *ntlm.Session
	seal             bool
	sendSeq, recvSeq uint32
}

func (n *ntlmLayer) confidential() bool { return n.seal }

func (n *ntlmLayer) wrap(b []byte) ([]byte, error) {
	var body, sig []byte
	if n.seal {
		body, sig = n.s.Seal(n.sendSeq, b)
	} else {
		body, sig = b, n.s.ServerMAC(n.sendSeq, b)
	}
	n.sendSeq++
	return append(sig, body...), nil
}

func (n *ntlmLayer) unwrap(tok []byte) ([]byte, error) {
	if len(tok) < 16 {
		return nil, errors.New("an NTLM buffer shorter than its signature")
	}
	sig, body := tok[:16], tok[16:]
	seq := n.recvSeq
	n.recvSeq++
	if n.seal {
		msg, ok := n.s.Unseal(seq, body, sig)
		if !ok {
			return nil, errors.New("an NTLM sealed buffer whose signature does not verify")
		}
		return msg, nil
	}
	if !n.s.VerifyClientMAC(seq, body, sig) {
		return nil, errors.New("an NTLM signed buffer whose signature does not verify")
	}
	return body, nil
}
