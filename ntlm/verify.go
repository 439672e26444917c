package ntlm

import (
	"context"
	"crypto/hmac"
	"fmt"
	"strings"

	"github.com/doublehop/doublehop/ntstatus"
)

// Error is a refused NTLM logon: the NTSTATUS Windows logs (4776, 4625) and a
// machine-readable reason for events and explain.
type Error struct {
	Status ntstatus.Status
	Reason string
	Text   string
}

func (e *Error) Error() string {
	return fmt.Sprintf("NTLM logon refused: %s %s: %s", e.Status, e.Status.Name(), e.Text)
}

// String implements fmt.Stringer.
func (e *Error) String() string { return e.Error() }

// Errorf builds an *Error.
func Errorf(st ntstatus.Status, reason, format string, args ...any) *Error {
	return &Error{Status: st, Reason: reason, Text: fmt.Sprintf(format, args...)}
}

// Reasons.
const (
	ReasonWrongPassword = "WRONG_PASSWORD"
	ReasonV1Refused     = "NTLMV1_REFUSED" // LmCompatibilityLevel 5: NTLMv2 only
	ReasonLMRefused     = "LM_REFUSED"
	ReasonMalformed     = "MALFORMED_RESPONSE"
)

// MinV2Response is the shortest NTLMv2 response: NTProofStr and the fixed
// part of the client blob.
const MinV2Response = 16 + 28 + 4

// Verify is the DC's check of a network logon (MS-NLMP 3.3.2, the
// validation NetrLogonSamLogonEx runs, MS-APDS 3.1.5): it recomputes
// NTProofStr from the account's NT hash and returns the session base key
// (the UserSessionKey of the logon). The domain is the one the client named,
// as it used it in NTOWFv2.
func Verify(ntHash []byte, user, domain string, serverChallenge [8]byte, nt, lm []byte) ([]byte, *Error) {
	switch {
	case len(nt) == 24:
		return nil, Errorf(ntstatus.WrongPassword, ReasonV1Refused, "an NTLMv1 response: this domain accepts NTLMv2 only (LmCompatibilityLevel 5)")
	case len(nt) == 0 && len(lm) > 0:
		return nil, Errorf(ntstatus.WrongPassword, ReasonLMRefused, "an LM response only: this domain accepts NTLMv2 only (LmCompatibilityLevel 5)")
	case len(nt) < MinV2Response || nt[16] != 1 || nt[17] != 1:
		return nil, Errorf(ntstatus.WrongPassword, ReasonMalformed, "an NTLMv2 response of %d bytes that is not one", len(nt))
	}
	key := NTOWFv2(ntHash, user, domain)
	proof := hmacMD5(key, serverChallenge[:], nt[16:])
	if !hmac.Equal(proof, nt[:16]) {
		return nil, Errorf(ntstatus.WrongPassword, ReasonWrongPassword, "the NTLMv2 response does not match %s's password", user)
	}
	return hmacMD5(key, proof), nil
}

// LocalAccounts validates against NT hashes held in memory, as a standalone
// (workgroup) server checks its own SAM: user (lower-case) → NT hash. Domain
// is the name it answers with. The lab's tiers use the DC instead.
type LocalAccounts struct {
	Domain string
	Hashes map[string][]byte
}

// ValidateNTLM implements Validator.
func (a LocalAccounts) ValidateNTLM(_ context.Context, r ValidationRequest) (*ValidationResult, error) {
	h, ok := a.Hashes[strings.ToLower(r.User)]
	if !ok {
		return nil, Errorf(ntstatus.NoSuchUser, "NO_SUCH_USER", "no account %s", r.User)
	}
	key, e := Verify(h, r.User, r.Domain, r.ServerChallenge, r.NtResponse, r.LmResponse)
	if e != nil {
		return nil, e
	}
	return &ValidationResult{Account: r.User, Domain: a.Domain, SessionBaseKey: key}, nil
}
