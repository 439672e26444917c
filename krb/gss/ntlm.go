package gss

import (
	"bytes"
	"context"
	"errors"

	"github.com/doublehop/doublehop/ntlm"
	"github.com/doublehop/doublehop/ntstatus"
)

// NTLM as a GSS mechanism on the accepting side, as the web tier (Negotiate
// and NTLM schemes) and SQL Server (LOGIN7's SSPI field, then SSPI packets)
// run it: bare NTLMSSP messages as Windows' Negotiate package sends them, or
// NTLM inside SPNEGO (MS-SPNG 3.3.5, RFC 4178 §4.2).

// SplitNTLM finds the NTLMSSP message in a Negotiate or SSPI token: the
// token itself, a NegTokenResp's responseToken, or the mechToken of a
// NegTokenInit whose preferred mechanism is NTLM. msg is nil when the token
// carries no NTLM.
func SplitNTLM(tok []byte) (msg []byte, init *NegTokenInit, resp *NegTokenResp) {
	switch {
	case ntlm.Is(tok):
		return tok, nil, nil
	case len(tok) > 0 && tok[0] == 0xa1:
		if r, err := ParseNegTokenResp(tok); err == nil && ntlm.Is(r.ResponseToken) {
			return r.ResponseToken, nil, r
		}
	case len(tok) > 0 && (tok[0] == 0x60 || tok[0] == 0xa0):
		if n, err := ParseNegTokenInit(tok); err == nil && n.FirstMech() == MechNTLM && ntlm.Is(n.MechToken) {
			return n.MechToken, n, nil
		}
	}
	return nil, nil, nil
}

// NTLMAcceptor is one NTLM handshake, NEGOTIATE then AUTHENTICATE, on one
// connection. Use a new one per connection (MS-NLMP 3.2: a fresh challenge
// for each).
type NTLMAcceptor struct {
	Config ntlm.ServerConfig

	sc        *ntlm.ServerContext
	spnego    bool
	mechTypes []byte // the client's MechTypeList, signed by mechListMIC
}

// Pending reports a CHALLENGE sent and an AUTHENTICATE due.
func (a *NTLMAcceptor) Pending() bool { return a.sc != nil }

// SPNEGO reports whether the handshake runs inside SPNEGO.
func (a *NTLMAcceptor) SPNEGO() bool { return a.spnego }

// ErrNTLMToken is a token that is not the NTLM message due next.
var ErrNTLMToken = errors.New("gss: not the NTLM message expected")

// Step takes the client's next token. For a NEGOTIATE it returns the
// CHALLENGE (wrapped as the client wrapped its token); for an AUTHENTICATE it
// has the DC validate the response and returns the logon and the final
// token (SPNEGO accept-completed with the mechListMIC signed back, nil when
// bare). Refusals are *ntlm.Error with the NTSTATUS Windows reports.
func (a *NTLMAcceptor) Step(ctx context.Context, tok []byte, dc ntlm.Validator) ([]byte, *ntlm.ServerResult, error) {
	msg, init, resp := SplitNTLM(tok)
	switch ntlm.TypeOf(msg) {
	case ntlm.TypeNegotiate:
		sc := ntlm.NewServerContext(a.Config)
		ch, err := sc.Challenge(msg)
		if err != nil {
			return nil, nil, err
		}
		a.sc, a.spnego, a.mechTypes = sc, init != nil || resp != nil, nil
		if init != nil {
			a.mechTypes = bytes.Clone(init.MechTypesDER) // the token's buffer may be reused (TDS)
		}
		if a.spnego {
			ch = MarshalNegTokenResp(NegAcceptIncomplete, MechNTLM, ch)
		}
		return ch, nil, nil
	case ntlm.TypeAuthenticate:
		sc := a.sc
		a.sc = nil
		if sc == nil {
			return nil, nil, ntlm.Errorf(ntstatus.LogonFailure, "NO_CHALLENGE", "an NTLM AUTHENTICATE without a CHALLENGE on this connection (NTLM is bound to one connection; replayed?)")
		}
		res, err := sc.Authenticate(ctx, msg, dc)
		if err != nil {
			return nil, nil, err
		}
		if !a.spnego {
			return nil, res, nil
		}
		var mic []byte
		if resp != nil && len(resp.MechListMIC) > 0 && res.Session != nil {
			// RFC 4178 §5: the client's mechListMIC signs the mechanism
			// list it sent; the answer signs it back.
			if !res.Session.VerifyClientMAC(0, a.mechTypes, resp.MechListMIC) {
				return nil, nil, ntlm.Errorf(ntstatus.DowngradeDetected, "MECHLISTMIC", "the SPNEGO mechListMIC does not verify (the mechanism list was changed in transit)")
			}
			mic = res.Session.ServerMAC(0, a.mechTypes)
		}
		return MarshalNegTokenRespMIC(NegAcceptCompleted, MechUnknown, nil, mic), res, nil
	}
	return nil, nil, ErrNTLMToken
}
