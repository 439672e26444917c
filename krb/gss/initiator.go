package gss

import (
	"bytes"
	"time"

	"github.com/doublehop/doublehop/krb/kcrypto"
	"github.com/doublehop/doublehop/krb/kerr"
	"github.com/doublehop/doublehop/krb/kmsg"
	"github.com/jcmturner/gokrb5/v8/types"
)

// InitiatorOptions shape a context token (RFC 4121 §4.1).
type InitiatorOptions struct {
	Flags  uint32 // GSS flags; GSSMutual also sets the AP-REQ mutual-required option
	Deleg  []byte // KRB-CRED to carry (sets GSSDeleg)
	SPNEGO bool   // wrap in SPNEGO NegTokenInit (RFC 4178), as HTTP Negotiate and go-mssqldb do
	Now    time.Time
}

// InitiatorToken builds the initial context token for a service ticket: an
// AP-REQ whose authenticator carries the 0x8003 checksum, GSS-framed, and
// optionally SPNEGO-wrapped. It returns the authenticator too, so the caller
// can verify the server's AP-REP.
func InitiatorToken(cred kmsg.Credential, o InitiatorOptions) ([]byte, types.Authenticator, error) {
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	ck, err := NewChecksum(o.Flags, o.Deleg)
	if err != nil {
		return nil, types.Authenticator{}, err
	}
	auth := kmsg.NewAuthenticator(cred.Info.PName, cred.Info.PRealm, now)
	auth.Cksum = ck
	var apOpts []int
	if o.Flags&FlagMutual != 0 {
		apOpts = append(apOpts, 2) // mutual-required (RFC 4120 §5.5.1)
	}
	ap, err := kmsg.MarshalAPReq(cred.Ticket, cred.Info.Key, auth, kcrypto.UsageAPReqAuthenticator, apOpts)
	if err != nil {
		return nil, auth, err
	}
	tok := WrapKRB5(MechKRB5, tokAPReq, ap)
	if o.SPNEGO {
		tok = MarshalNegTokenInit(tok, false)
	}
	return tok, auth, nil
}

// VerifyMutual checks the acceptor's reply token (SPNEGO or raw GSS) against
// the authenticator that was sent (RFC 4120 §3.2.5). It reports a KRB-ERROR
// carried in the token as that error.
func VerifyMutual(reply []byte, cred kmsg.Credential, auth types.Authenticator) error {
	if e, ok := ParseErrorToken(reply); ok {
		return e
	}
	rep, ok := ParseAPRepToken(reply)
	if !ok {
		return kerr.Errorf(kerr.KRB_AP_ERR_MUT_FAIL, "NO_AP_REP", "the server's reply carries no AP-REP")
	}
	return kmsg.VerifyAPRep(rep, cred.Info.Key, auth.CTime, auth.Cusec)
}

// ParseErrorToken extracts a KRB-ERROR from an acceptor's reply token (SPNEGO
// NegTokenResp or raw GSS), as a client does to report it (Windows event 4).
func ParseErrorToken(tok []byte) (*kerr.Error, bool) {
	msg, _, ok := replyMessage(tok, tokError)
	if !ok {
		return nil, false
	}
	if e := kmsg.AsKRBError(msg); e != nil {
		return e, true
	}
	return nil, false
}

// ParseAPRepToken extracts an AP-REP from an acceptor's reply token.
func ParseAPRepToken(tok []byte) ([]byte, bool) {
	msg, framed, ok := replyMessage(tok, tokAPRep)
	if !ok || (!framed && msg[0] != 0x6f) {
		return nil, false
	}
	return msg, true
}

// replyMessage takes the krb5 message out of a reply token: the SPNEGO
// NegTokenResp's responseToken, then the GSS framing (token id want) when
// there is one; framed is false for a bare message.
func replyMessage(tok, want []byte) (msg []byte, framed, ok bool) {
	inner := tok
	if len(tok) > 0 && tok[0] == 0xa1 {
		r, err := ParseNegTokenResp(tok)
		if err != nil || len(r.ResponseToken) == 0 {
			return nil, false, false
		}
		inner = r.ResponseToken
	}
	if len(inner) > 0 && inner[0] == 0x60 {
		_, id, m, err := unwrapKRB5(inner)
		if err != nil || !bytes.Equal(id, want) {
			return nil, true, false
		}
		return m, true, true
	}
	return inner, false, len(inner) > 0
}
