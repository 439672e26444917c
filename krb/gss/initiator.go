package gss

import (
	"fmt"
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
	g := GSSChecksum{Flags: o.Flags}
	if len(o.Deleg) > 0xffff {
		return nil, types.Authenticator{}, fmt.Errorf("delegated credential of %d bytes does not fit the GSS checksum (RFC 4121 §4.1.1 Dlgth)", len(o.Deleg))
	}
	if len(o.Deleg) > 0 {
		g.Flags |= GSSDeleg
		g.Deleg = o.Deleg
	}
	auth := kmsg.NewAuthenticator(cred.Info.PName, cred.Info.PRealm, now)
	auth.Cksum = types.Checksum{CksumType: ChecksumGSS, Checksum: g.Marshal()}
	var apOpts []int
	if o.Flags&GSSMutual != 0 {
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
