package dcerpc

import (
	"errors"
	"fmt"
	"strings"

	"github.com/doublehop/doublehop/krb/gss"
	"github.com/doublehop/doublehop/ntstatus"
)

// Kerberos on a DCE/RPC connection (auth type 16, or chosen inside SPNEGO):
// a DCE-style context (krb/gss dce.go) whose tokens protect each PDU.

// krbContext is an established or establishing Kerberos context.
type krbContext struct {
	dce   *gss.DCEContext
	level byte
}

// krbRefused is a refused AP-REQ, with what the 4625 names.
type krbRefused struct{ status, reason, client, text string }

func (e *krbRefused) Error() string { return e.text }

// kerberosStep takes the AP-REQ (first leg) or the initiator's AP-REP
// (third leg).
func (s *secContext) kerberosStep(tok []byte) ([]byte, error) {
	if s.krb == nil {
		if s.sec.Kerberos == nil {
			return nil, &errAuthFailed{errors.New("Kerberos is not accepted here")}
		}
		acc, err := s.sec.Kerberos()
		if err != nil {
			return nil, &errAuthFailed{fmt.Errorf("the server's keys: %w", err)}
		}
		dce, out, err := acc.AcceptDCE(tok)
		if err != nil {
			r := &krbRefused{status: ntstatus.LogonFailure.String(), reason: "TICKET_REFUSED", text: err.Error()}
			var ae *gss.AcceptError
			if errors.As(err, &ae) {
				r.reason, r.client = ae.Reason, ae.Client
				if ae.Status != 0 {
					r.status = fmt.Sprintf("0x%08X", ae.Status)
				}
			}
			return nil, &errAuthFailed{r}
		}
		s.krb = &krbContext{dce: dce, level: s.level}
		return out, nil
	}
	if s.krb.dce.Complete() {
		return nil, &errAuthFailed{errors.New("a token after the Kerberos context was complete")}
	}
	out, err := s.krb.dce.Finish(tok)
	if err != nil {
		return nil, &errAuthFailed{err}
	}
	d := s.krb.dce
	user := strings.Join(d.Client.NameString, "/")
	if d.PAC != nil && d.PAC.Info.EffectiveName != "" {
		user = d.PAC.Info.EffectiveName
	}
	s.auth = &Auth{Type: AuthKerberos, SPNEGO: d.SPNEGO, Level: s.level, User: user, Domain: d.ClientRealm, Realm: d.ClientRealm,
		SessionKey: d.SessionKey()}
	return out, nil
}

// sigLen is the auth_value of a protected PDU: a sealed Wrap token, or a
// MIC token at packet integrity.
func (k *krbContext) sigLen() int {
	if k.level == LevelPrivacy {
		return gss.SealedTokenLen
	}
	return 28
}

// verify checks a request: raw[from:to] is the stub and its padding.
func (k *krbContext) verify(raw []byte, from, to int, sig []byte, hdrSign, privacy bool) error {
	end := len(raw) - len(sig)
	if privacy {
		pre, post := raw[:from], raw[to:end]
		if !hdrSign {
			pre, post = nil, nil
		}
		return k.dce.UnsealDCE(pre, raw[from:to], post, sig)
	}
	signed := raw[:end]
	if !hdrSign {
		signed = raw[from:to]
	}
	return k.dce.VerifyDCE(signed, sig)
}

// protect signs or seals a response and returns its auth_value.
func (k *krbContext) protect(raw []byte, from, to int, hdrSign, privacy bool) ([]byte, error) {
	end := len(raw) - k.sigLen()
	if privacy {
		pre, post := raw[:from], raw[to:end]
		if !hdrSign {
			pre, post = nil, nil
		}
		return k.dce.SealDCE(pre, raw[from:to], post)
	}
	signed := raw[:end]
	if !hdrSign {
		signed = raw[from:to]
	}
	return k.dce.SignDCE(signed), nil
}
