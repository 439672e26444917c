package ntlm

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"time"
)

// ClientConfig is the logon session NTLM answers with: the NT hash (never the
// password), the user and domain as the workstation names them.
type ClientConfig struct {
	User, Domain, Workstation string
	NTHash                    []byte
	Now                       func() time.Time
	// NoMIC leaves the MIC out (clients before Windows Vista); V1 sends an
	// NTLMv1 response (what LmCompatibilityLevel < 3 clients send).
	NoMIC, V1 bool
	// Anonymous answers with the null session (MS-NLMP 3.1.5.1.2: no user,
	// an empty NT response, LM response Z(1)): what Windows sends for a
	// thread whose impersonation token cannot leave the machine.
	Anonymous bool
}

// ClientContext is the initiator's side of one handshake (MS-NLMP 3.1).
type ClientContext struct {
	cfg       ClientConfig
	negotiate []byte
	Session   *Session
	Exported  []byte // the exported session key, once authenticated (secret)
}

// NewClientContext starts a handshake.
func NewClientContext(cfg ClientConfig) *ClientContext {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &ClientContext{cfg: cfg}
}

// ClientFlags are what the lab's workstation negotiates (Windows 10's set).
const ClientFlags = FlagUnicode | FlagRequestTarget | FlagSign | FlagSeal | FlagNTLM | FlagAlwaysSign |
	FlagExtendedSessionSecurity | Flag128 | FlagKeyExch | Flag56

// Negotiate returns the NEGOTIATE_MESSAGE.
func (c *ClientContext) Negotiate() []byte {
	f := ClientFlags
	if c.cfg.Anonymous {
		f |= FlagAnonymous
	}
	c.negotiate = (&Negotiate{Flags: f, Version: &DefaultVersion}).Marshal()
	return c.negotiate
}

// Authenticate answers the CHALLENGE (MS-NLMP 3.1.5.1.2) with an NTLMv2
// response, a random session key under KEY_EXCH, and the MIC.
func (c *ClientContext) Authenticate(challengeMsg []byte) ([]byte, error) {
	ch, err := ParseChallenge(challengeMsg)
	if err != nil {
		return nil, err
	}
	if c.negotiate == nil {
		return nil, fmt.Errorf("ntlm: AUTHENTICATE before NEGOTIATE")
	}
	flags := ch.Flags & (ClientFlags | FlagVersion | FlagTargetInfo)
	if c.cfg.Anonymous {
		a := &Authenticate{Flags: flags | FlagAnonymous, Workstation: c.cfg.Workstation, LmChallengeResponse: []byte{0}, Version: &DefaultVersion}
		return a.Marshal(), nil
	}
	a := &Authenticate{Flags: flags, Domain: c.cfg.Domain, User: c.cfg.User, Workstation: c.cfg.Workstation, Version: &DefaultVersion}
	if c.cfg.V1 {
		// An NTLMv1 response (MS-NLMP 3.3.1, DESL over the NT hash): only
		// its length matters to a v2-only DC, which refuses it.
		a.NtChallengeResponse = make([]byte, 24)
		rand.Read(a.NtChallengeResponse)
		a.LmChallengeResponse = make([]byte, 24)
		return a.Marshal(), nil
	}
	info := ch.TargetInfo
	ts, hasTS := info.Timestamp()
	if !hasTS {
		ts = c.cfg.Now()
	}
	pairs := append(AvPairs(nil), info...)
	if !c.cfg.NoMIC {
		var f [4]byte
		binary.LittleEndian.PutUint32(f[:], info.Flags()|AvFlagMIC)
		pairs = pairs.Set(AvFlags, f[:])
	}
	var cc [8]byte
	rand.Read(cc[:])
	key := NTOWFv2(c.cfg.NTHash, c.cfg.User, c.cfg.Domain)
	nt, lm, base := ResponseV2(key, ch.ServerChallenge, cc, Filetime(ts), pairs.Marshal())
	a.NtChallengeResponse = nt
	a.LmChallengeResponse = lm
	if hasTS {
		a.LmChallengeResponse = make([]byte, 24) // MS-NLMP 3.1.5.1.2: Z(24) when the server sent a timestamp
	}
	exported := base
	if flags&FlagKeyExch != 0 {
		exported = make([]byte, 16)
		rand.Read(exported)
		a.EncryptedRandomSessionKey = rc4K(base, exported)
	}
	if !c.cfg.NoMIC {
		a.MIC = make([]byte, 16)
		a.Marshal()
		copy(a.MIC, MIC(exported, c.negotiate, ch.Raw, a.withoutMIC()))
	}
	c.Exported, c.Session = exported, NewSession(flags, exported)
	return a.Marshal(), nil
}
