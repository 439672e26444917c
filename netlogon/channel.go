package netlogon

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/doublehop/doublehop/krb/kcrypto"
	"github.com/doublehop/doublehop/krb/kmsg"
	"github.com/doublehop/doublehop/ntlm"
	"github.com/doublehop/doublehop/ntstatus"
	"github.com/jcmturner/gokrb5/v8/types"
)

// Key usages of the channel's frames (outside RFC 4120's range).
const (
	usageRequest  uint32 = 1200
	usageResponse uint32 = 1201
)

// MaxFrame bounds one frame.
const MaxFrame = 32 << 10

// SamLogonRequest is NetrLogonSamLogonEx for a network logon
// (NETLOGON_NETWORK_INFO, MS-NRPC 2.2.1.4.5).
type SamLogonRequest struct {
	Seq             uint64 `json:"seq"`
	User            string `json:"user"`
	Domain          string `json:"domain"`
	Workstation     string `json:"workstation"`
	ServerChallenge []byte `json:"server_challenge"` // LmChallenge
	NtResponse      []byte `json:"nt_response"`
	LmResponse      []byte `json:"lm_response"`
	Package         string `json:"package"` // "NTLM"
}

// SamLogonResponse is the answer: NETLOGON_VALIDATION_SAM_INFO4's fields
// (MS-NRPC 2.2.1.4.13) or the NTSTATUS of the refusal.
type SamLogonResponse struct {
	Seq            uint64   `json:"seq"`
	Status         uint32   `json:"status"`
	Reason         string   `json:"reason,omitempty"`
	Text           string   `json:"text,omitempty"`
	Account        string   `json:"account,omitempty"`
	Domain         string   `json:"domain,omitempty"`
	UPN            string   `json:"upn,omitempty"`
	SID            string   `json:"sid,omitempty"`
	Groups         []string `json:"groups,omitempty"`
	UserSessionKey []byte   `json:"user_session_key,omitempty"`
}

// validation is the answer as the NTLM server context takes it.
func (resp *SamLogonResponse) validation() (*ntlm.ValidationResult, error) {
	if resp.Status != 0 {
		return nil, &ntlm.Error{Status: ntstatus.Status(resp.Status), Reason: resp.Reason, Text: resp.Text}
	}
	return &ntlm.ValidationResult{Account: resp.Account, Domain: resp.Domain, UPN: resp.UPN, SID: resp.SID,
		SessionBaseKey: resp.UserSessionKey, Groups: resp.Groups}, nil
}

// writeSealed encrypts v under key and writes it as one frame.
func writeSealed(w io.Writer, key types.EncryptionKey, usage uint32, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	ed, err := kcrypto.Encrypt(b, key, usage, 0)
	if err != nil {
		return err
	}
	return kmsg.WriteFrame(w, kmsg.MarshalEncryptedData(ed))
}

// readSealed reads one frame and decrypts it into v.
func readSealed(r io.Reader, key types.EncryptionKey, usage uint32, v any) error {
	b, err := kmsg.ReadFrame(r, MaxFrame)
	if err != nil {
		return err
	}
	ed, ok := kmsg.FastEncryptedData(b)
	if !ok {
		if err := kmsg.SafeUnmarshal(func() error { return ed.Unmarshal(b) }); err != nil {
			return fmt.Errorf("netlogon: a frame that is not EncryptedData: %w", err)
		}
	}
	plain, err := kcrypto.Decrypt(ed, key, usage)
	if err != nil {
		return fmt.Errorf("netlogon: a frame that does not decrypt with the channel key: %w", err)
	}
	return json.Unmarshal(plain, v)
}
