package ntlm

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	"github.com/doublehop/doublehop/ntstatus"
)

// Validator sends a response to the DC (pass-through authentication, MS-APDS
// 3.1.5 over MS-NRPC) and returns the session base key the DC computed, or
// the DC's refusal as an *Error.
type Validator interface {
	ValidateNTLM(ctx context.Context, req ValidationRequest) (*ValidationResult, error)
}

// ValidationRequest is what a member server hands the DC: never a secret.
type ValidationRequest struct {
	User, Domain, Workstation string
	ServerChallenge           [8]byte
	NtResponse, LmResponse    []byte
}

// ValidationResult is the DC's answer for a valid logon.
type ValidationResult struct {
	Account        string // sAMAccountName as the directory spells it
	Domain         string // NetBIOS domain name
	UPN            string
	SID            string
	SessionBaseKey []byte // UserSessionKey (secret)
	Groups         []string
}

// ServerConfig describes the server issuing challenges.
type ServerConfig struct {
	NetBIOSDomain, NetBIOSComputer, DNSDomain, DNSComputer string
	Now                                                    func() time.Time
}

// ServerContext is one NTLM handshake on one connection (MS-NLMP 3.2): the
// challenge is fresh per context and used once.
type ServerContext struct {
	cfg       ServerConfig
	negotiate *Negotiate
	challenge *Challenge
	done      bool
}

// ServerResult is an established NTLM logon.
type ServerResult struct {
	Anonymous   bool
	Validation  *ValidationResult // nil for anonymous
	User        string            // as the client sent it
	Domain      string
	Workstation string
	Flags       uint32
	MICPresent  bool
	Session     *Session // message security (nil for anonymous)
	V2          bool
}

// NewServerContext starts a handshake.
func NewServerContext(cfg ServerConfig) *ServerContext {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &ServerContext{cfg: cfg}
}

// Challenge answers the client's NEGOTIATE with a CHALLENGE (MS-NLMP 3.2.5.1.1).
func (c *ServerContext) Challenge(negotiateMsg []byte) ([]byte, error) {
	n, err := ParseNegotiate(negotiateMsg)
	if err != nil {
		return nil, err
	}
	if c.challenge != nil {
		return nil, fmt.Errorf("ntlm: a second NEGOTIATE on one context")
	}
	flags := FlagRequestTarget | FlagNTLM | FlagTargetTypeDomain | FlagExtendedSessionSecurity | FlagTargetInfo | FlagVersion
	for _, f := range []uint32{FlagUnicode, FlagSign, FlagSeal, FlagAlwaysSign, Flag128, FlagKeyExch, Flag56, FlagIdentify} {
		flags |= n.Flags & f
	}
	if flags&FlagUnicode == 0 {
		flags |= FlagOEM
	}
	ch := &Challenge{Flags: flags, TargetName: c.cfg.NetBIOSDomain, Version: &DefaultVersion}
	if _, err := rand.Read(ch.ServerChallenge[:]); err != nil {
		return nil, err
	}
	var ts [8]byte
	binary.LittleEndian.PutUint64(ts[:], Filetime(c.cfg.Now()))
	ch.TargetInfo = AvPairs{
		{AvNbDomainName, Str(c.cfg.NetBIOSDomain)}, {AvNbComputerName, Str(c.cfg.NetBIOSComputer)},
		{AvDNSDomainName, Str(c.cfg.DNSDomain)}, {AvDNSComputerName, Str(c.cfg.DNSComputer)},
		{AvDNSTreeName, Str(c.cfg.DNSDomain)}, {AvTimestamp, ts[:]},
	}
	c.negotiate, c.challenge = n, ch
	return ch.Marshal(), nil
}

// Authenticate takes the client's AUTHENTICATE: anonymous logons complete
// here (NT AUTHORITY\ANONYMOUS LOGON); every other one is validated by the DC,
// then its MIC is checked with the session key the DC returned (MS-NLMP
// 3.2.5.1.2). The context is spent either way: a replayed AUTHENTICATE finds
// no challenge to answer.
func (c *ServerContext) Authenticate(ctx context.Context, authMsg []byte, dc Validator) (*ServerResult, error) {
	if c.challenge == nil || c.done {
		return nil, Errorf(ntstatus.LogonFailure, "NO_CHALLENGE", "an AUTHENTICATE without a pending challenge on this connection (replayed?)")
	}
	c.done = true
	a, err := ParseAuthenticate(authMsg)
	if err != nil {
		return nil, err
	}
	res := &ServerResult{User: a.User, Domain: a.Domain, Workstation: a.Workstation, Flags: a.Flags, V2: a.IsV2()}
	if a.Anonymous() {
		res.Anonymous = true
		return res, nil
	}
	v, err := dc.ValidateNTLM(ctx, ValidationRequest{User: a.User, Domain: a.Domain, Workstation: a.Workstation,
		ServerChallenge: c.challenge.ServerChallenge, NtResponse: a.NtChallengeResponse, LmResponse: a.LmChallengeResponse})
	if err != nil {
		return nil, err
	}
	res.Validation = v
	exported := ExportedSessionKey(a.Flags, v.SessionBaseKey, a.EncryptedRandomSessionKey)
	// The client says in its blob whether it sent a MIC (MsvAvFlags 0x2).
	var blobPairs AvPairs
	if len(a.NtChallengeResponse) > MinV2Response {
		blobPairs, _ = ParseAvPairs(a.NtChallengeResponse[16+28:])
	}
	if blobPairs.Flags()&AvFlagMIC != 0 {
		if a.MIC == nil {
			return nil, Errorf(ntstatus.LogonFailure, "MIC_MISSING", "the client announced a MIC and sent none")
		}
		want := MIC(exported, c.negotiate.Raw, c.challenge.Raw, a.withoutMIC())
		if !hmac.Equal(want, a.MIC) {
			return nil, Errorf(ntstatus.LogonFailure, "MIC_MISMATCH", "the MIC does not match the messages (modified in transit?)")
		}
		res.MICPresent = true
	}
	res.Session = NewSession(a.Flags, exported)
	return res, nil
}

// NegotiateMessage returns the client's NEGOTIATE as received.
func (c *ServerContext) NegotiateMessage() *Negotiate { return c.negotiate }

// MemberServer is the identity a domain member's CHALLENGE names (MS-NLMP
// 2.2.2.1 AV pairs): the domain, the host's first label as its NetBIOS name
// (or computer when given), the DNS names.
func MemberServer(netbiosDomain, realm, host, computer string, now func() time.Time) ServerConfig {
	if computer == "" {
		computer = strings.ToUpper(strings.SplitN(host, ".", 2)[0])
	}
	return ServerConfig{NetBIOSDomain: netbiosDomain, NetBIOSComputer: computer, DNSDomain: strings.ToLower(realm), DNSComputer: host, Now: now}
}

// NoDC is a member server with no secure channel to a domain controller:
// every logon fails with STATUS_NO_LOGON_SERVERS. who names the server.
type NoDC string

// ValidateNTLM implements Validator.
func (who NoDC) ValidateNTLM(context.Context, ValidationRequest) (*ValidationResult, error) {
	return nil, Errorf(ntstatus.NoLogonServers, "NO_LOGON_SERVERS", "%s has no secure channel to a domain controller", string(who))
}
