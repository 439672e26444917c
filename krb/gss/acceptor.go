package gss

import (
	"bytes"
	"fmt"
	"log/slog"
	"time"

	"github.com/doublehop/doublehop/krb/kcrypto"
	"github.com/doublehop/doublehop/krb/kerr"
	"github.com/doublehop/doublehop/krb/kmsg"
	"github.com/doublehop/doublehop/krb/pac"
	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

// AcceptorConfig configures a GSS-API/SPNEGO Kerberos acceptor.
type AcceptorConfig struct {
	Keytab  *keytab.Keytab // the service account's keys (any SPN on the account)
	Realm   string         // tickets must be issued by this realm
	MaxSkew time.Duration  // default 5 minutes (RFC 4120 §1.6)
	Now     func() time.Time
	Replay  *ReplayCache // nil: a private cache
}

// Acceptor verifies Kerberos AP-REQs sent as SPNEGO, raw krb5 GSS tokens or
// bare AP-REQs, the way a Windows service does: with its account's key,
// whatever SPN the ticket names.
type Acceptor struct {
	cfg    AcceptorConfig
	replay *ReplayCache
}

// NewAcceptor makes an acceptor; it holds no global state.
func NewAcceptor(cfg AcceptorConfig) *Acceptor {
	if cfg.MaxSkew == 0 {
		cfg.MaxSkew = 5 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	r := cfg.Replay
	if r == nil {
		r = NewReplayCache(cfg.MaxSkew, 0)
	}
	return &Acceptor{cfg: cfg, replay: r}
}

// SecContext is an established security context: who the client is (from the
// decrypted ticket, never from the unauthenticated authenticator realm), what
// the ticket said, and what came with it.
type SecContext struct {
	Client         types.PrincipalName
	ClientRealm    string
	Service        string // ticket sname, e.g. HTTP/web.lab.local (clear text: which key decrypted it is what counts)
	ServiceRealm   string
	EType          int32
	KVNO           int
	Flags          asn1.BitString
	AuthTime       time.Time
	EndTime        time.Time
	Mech           Mech
	SPNEGO         bool
	GSSFlags       uint32
	MutualRequired bool
	PAC            *pac.PAC
	Delegated      *kmsg.Credential // forwarded TGT from the 0x8003 checksum (unconstrained delegation)
	Ticket         messages.Ticket  // the ticket as received (clean), usable as S4U2Proxy evidence
	ResponseToken  []byte           // SPNEGO/GSS reply for the client (AP-REP when mutual was asked)

	sessionKey types.EncryptionKey
	subkey     types.EncryptionKey
	sendSeq    uint64 // the acceptor's next wrap sequence number (the AP-REP's, RFC 4121 §4.2.6.2)
	// The authenticator's time and sequence number, which a DCE-style
	// context's AP-REPs echo (dce.go).
	authCTime time.Time
	authCusec int
	initSeq   uint64
}

// ClientPrincipal is "bob@LAB.LOCAL".
func (c *SecContext) ClientPrincipal() string { return kmsg.PrincipalString(c.Client, c.ClientRealm) }

// SessionKey returns the ticket session key (for S4U2Proxy and KRB-CRED use only; never log it).
func (c *SecContext) SessionKey() types.EncryptionKey { return c.sessionKey }

// LogValue keeps key material out of structured logs.
func (c *SecContext) LogValue() slog.Value {
	return slog.GroupValue(slog.String("client", c.ClientPrincipal()), slog.String("service", c.Service),
		slog.Int("etype", int(c.EType)), slog.String("flags", kmsg.FlagLetters(c.Flags)), slog.Bool("delegated", c.Delegated != nil))
}

// AcceptError is a refused context: the Kerberos code, the NTSTATUS Windows
// would log, what could be read in clear text, and the reply token that carries
// the KRB-ERROR back to the client (as Windows servers do in the SPNEGO reply).
type AcceptError struct {
	Code    kerr.Code
	Status  uint32
	Reason  string
	Text    string
	Service string // clear-text ticket sname, when there was a ticket
	EType   int32
	KVNO    int
	Client  string // authenticated client, when the ticket decrypted
	Mech    Mech
	// MutualRequired is the AP-REQ's mutual-required option (clear text).
	MutualRequired bool
	Token          []byte
}

func (e *AcceptError) Error() string {
	s := e.Unwrap().Error()
	if e.Service != "" {
		s += " [ticket for " + e.Service + "]"
	}
	return s
}

// String implements fmt.Stringer.
func (e *AcceptError) String() string { return e.Error() }

// SPN is the ticket's service name without its realm (HTTP/web.lab.local),
// as events name services; "" when there was no ticket.
func (e *AcceptError) SPN() string {
	if e.Service == "" {
		return ""
	}
	pn, _ := kmsg.ParsePrincipal(e.Service)
	return kmsg.PrincipalString(pn, "")
}

// Unwrap exposes the protocol error as an *Error.
func (e *AcceptError) Unwrap() error {
	return &kerr.Error{Code: e.Code, Status: e.Status, Reason: e.Reason, Text: e.Text}
}

// StatusString renders the NTSTATUS as Windows does, or "".
func (e *AcceptError) StatusString() string { return (&kerr.Error{Status: e.Status}).StatusString() }

func newAcceptError(e *kerr.Error) *AcceptError {
	return &AcceptError{Code: e.Code, Status: e.Status, Reason: e.Reason, Text: e.Text}
}

func (e *AcceptError) set(x *kerr.Error) {
	e.Code, e.Status, e.Reason, e.Text = x.Code, x.Status, x.Reason, x.Text
}

// MaxToken bounds an incoming context token (AD's MaxTokenSize default is 48000).
const MaxToken = 64 * 1024

// Accept verifies one initial context token (RFC 4121 §4.1, RFC 4178).
func (a *Acceptor) Accept(token []byte) (*SecContext, error) {
	if len(token) == 0 || IsNTLM(token) {
		return nil, ErrNotKerberos
	}
	if len(token) > MaxToken {
		return nil, newAcceptError(kerr.Errorf(kerr.KRB_ERR_FIELD_TOOLONG, "TOKEN_TOO_BIG", "token of %d bytes", len(token)))
	}
	mech, spnego, apreqBytes, err := a.unwrap(token)
	if err != nil {
		return nil, err
	}
	ctx, aerr := a.verify(apreqBytes, mech, spnego)
	if aerr != nil {
		aerr.Mech = mech
		// The KRB-ERROR goes back only to a client that asked for mutual
		// authentication (AP-REQ mutual-required, RFC 4120 §5.5.1): its
		// mechanism expects a reply token and reads the error from it (on
		// Windows, Kerberos event 4). A client that did not ask has finished
		// its context and would take any token as defective; it gets a plain
		// new challenge, and a browser shows the 401 page.
		if aerr.MutualRequired {
			aerr.Token = a.errorToken(aerr, mech, spnego)
		}
		return nil, aerr
	}
	return ctx, nil
}

// unwrap finds the AP-REQ inside SPNEGO / GSS framing.
func (a *Acceptor) unwrap(token []byte) (Mech, bool, []byte, error) {
	bad := func(format string, args ...any) error {
		return newAcceptError(kerr.Errorf(kerr.KRB_AP_ERR_MSG_TYPE, "BAD_TOKEN", format, args...))
	}
	inner := token
	spnego := false
	if token[0] == 0xa0 || (token[0] == 0x60 && bytes.Contains(token[:min(len(token), 16)], oidSPNEGO)) {
		n, err := parseSPNEGO(token)
		if err != nil {
			return 0, false, nil, bad("SPNEGO: %v", err)
		}
		spnego = true
		first := mechOf(n.MechTypes[0])
		if first != MechKRB5 && first != MechMSKRB5 {
			return 0, false, nil, ErrNotKerberos
		}
		if len(n.MechToken) == 0 {
			return 0, false, nil, bad("SPNEGO NegTokenInit without a mechToken")
		}
		inner = n.MechToken
		if IsNTLM(inner) {
			return 0, false, nil, ErrNotKerberos
		}
		if inner[0] == 0x6e { // Impacket sends a bare AP-REQ as the mechToken
			return first, true, inner, nil
		}
	}
	switch inner[0] {
	case 0x6e:
		return MechRawAPReq, spnego, inner, nil
	case 0x60:
		m, tok, msg, err := unwrapKRB5(inner)
		if err != nil {
			if m == MechNTLM {
				return 0, false, nil, ErrNotKerberos
			}
			return 0, false, nil, bad("GSS token: %v", err)
		}
		if !bytes.Equal(tok, tokAPReq) {
			return 0, false, nil, bad("GSS token id %x is not an AP-REQ", tok)
		}
		return m, spnego, msg, nil
	}
	return 0, false, nil, bad("unrecognised token (first byte 0x%02x)", inner[0])
}

// verify checks the AP-REQ (RFC 4120 §3.2.3) and builds the context.
func (a *Acceptor) verify(b []byte, mech Mech, spnego bool) (*SecContext, *AcceptError) {
	// The fast DER decoders the KDC uses (kmsg/derdec.go: equal results on
	// canonical DER); anything else goes to gokrb5 as before.
	ap, fast := kmsg.FastAPReq(b)
	if !fast {
		if err := kmsg.SafeUnmarshal(func() error { return ap.Unmarshal(b) }); err != nil {
			return nil, newAcceptError(kerr.Errorf(kerr.KRB_AP_ERR_MSG_TYPE, "BAD_AP_REQ", "AP-REQ: %v", err))
		}
	}
	tkt := kmsg.CleanTicket(ap.Ticket)
	ae := &AcceptError{Service: kmsg.PrincipalString(tkt.SName, ""), EType: tkt.EncPart.EType, KVNO: tkt.EncPart.KVNO,
		MutualRequired: kmsg.HasFlag(ap.APOptions, 2)}
	fail := func(e *kerr.Error) (*SecContext, *AcceptError) { ae.set(e); return nil, ae }
	if a.cfg.Realm != "" && !equalFold(tkt.Realm, a.cfg.Realm) {
		return fail(kerr.Errorf(kerr.KRB_AP_ERR_NOT_US, "WRONG_REALM", "ticket issued by realm %s, this service is in %s", tkt.Realm, a.cfg.Realm))
	}
	etp, key, err := a.openTicket(tkt)
	if err != nil {
		return fail(err)
	}
	plain, derr := kcrypto.Decrypt(ap.EncryptedAuthenticator, etp.Key, kcrypto.UsageAPReqAuthenticator)
	if derr != nil {
		return fail(kerr.Errorf(kerr.KRB_AP_ERR_BAD_INTEGRITY, "AUTHENTICATOR", "authenticator does not decrypt with the ticket session key"))
	}
	auth, fast := kmsg.FastAuthenticator(plain)
	if !fast {
		if err := kmsg.SafeUnmarshal(func() error { return auth.Unmarshal(plain) }); err != nil {
			return fail(kerr.Errorf(kerr.KRB_AP_ERR_BAD_INTEGRITY, "AUTHENTICATOR", "authenticator: %v", err))
		}
	}
	client := kmsg.PrincipalString(etp.CName, etp.CRealm)
	ae.Client = client
	// RFC 4120 §3.2.3: the authenticator names the same client as the ticket.
	if !kmsg.SameName(auth.CName, etp.CName) || !equalFold(auth.CRealm, etp.CRealm) {
		return fail(kerr.Errorf(kerr.KRB_AP_ERR_BADMATCH, "BADMATCH", "authenticator names %s, ticket names %s", kmsg.PrincipalString(auth.CName, auth.CRealm), client))
	}
	now := a.cfg.Now()
	skew := a.cfg.MaxSkew
	if d := now.Sub(auth.CTime); d > skew || d < -skew {
		return fail(kerr.Errorf(kerr.KRB_AP_ERR_SKEW, "SKEW", "authenticator time %s is %s from server time (max %s)", auth.CTime.UTC().Format(time.RFC3339), d.Round(time.Second), skew).WithStatus(kerr.StatusTimeDifference))
	}
	start := etp.StartTime
	if start.IsZero() {
		start = etp.AuthTime
	}
	if start.Sub(now) > skew || kmsg.HasFlag(etp.Flags, kmsg.FlagInvalid) {
		return fail(kerr.Errorf(kerr.KRB_AP_ERR_TKT_NYV, "TKT_NYV", "ticket not valid until %s", start.UTC().Format(time.RFC3339)))
	}
	if now.Sub(etp.EndTime) > skew {
		return fail(kerr.Errorf(kerr.KRB_AP_ERR_TKT_EXPIRED, "TKT_EXPIRED", "ticket expired at %s", etp.EndTime.UTC().Format(time.RFC3339)))
	}
	if a.replay.Seen(client, auth.CTime, ap.EncryptedAuthenticator.Cipher, now) {
		return fail(kerr.Errorf(kerr.KRB_AP_ERR_REPEAT, "REPLAY", "authenticator from %s at %s.%06d was already used", client, auth.CTime.UTC().Format(time.RFC3339), auth.Cusec))
	}
	ctx := &SecContext{
		Client: etp.CName, ClientRealm: etp.CRealm, Service: kmsg.PrincipalString(tkt.SName, ""), ServiceRealm: tkt.Realm,
		EType: tkt.EncPart.EType, KVNO: tkt.EncPart.KVNO, Flags: etp.Flags, AuthTime: etp.AuthTime, EndTime: etp.EndTime,
		Mech: mech, SPNEGO: spnego, Ticket: tkt, sessionKey: etp.Key, subkey: auth.SubKey,
		sendSeq:   uint64(uint32(auth.SeqNumber)),
		authCTime: auth.CTime, authCusec: auth.Cusec, initSeq: uint64(uint32(auth.SeqNumber)),
		MutualRequired: kmsg.HasFlag(ap.APOptions, 2), // RFC 4120 §5.5.1 mutual-required
	}
	if g, present, err := readChecksum(auth, etp); err != nil {
		return fail(err)
	} else if present {
		ctx.GSSFlags = g.Flags
		if g.Flags&FlagMutual != 0 {
			ctx.MutualRequired = true
		}
		ctx.Delegated = g.Delegated
	}
	if p, ok := kmsg.FindPAC(etp.AuthorizationData); ok {
		pc, err := pac.Parse(p)
		if err == nil {
			err = pc.VerifyServerChecksum(key)
		}
		if err != nil {
			// MS-PAC 2.8.1: a service that cannot verify the server signature rejects the logon.
			return fail(kerr.Errorf(kerr.KRB_AP_ERR_MODIFIED, "PAC_SIGNATURE", "PAC server signature: %v", err))
		}
		ctx.PAC = pc
	}
	if err := a.reply(ctx, auth); err != nil {
		return fail(kerr.Errorf(kerr.KRB_ERR_GENERIC, "AP_REP", "%v", err))
	}
	return ctx, nil
}

// openTicket decrypts the ticket with the keytab: keys of the ticket's etype,
// the ticket's kvno first. A service holding only an older key fails exactly
// as a Windows service with a stale password does: KRB_AP_ERR_MODIFIED.
func (a *Acceptor) openTicket(t messages.Ticket) (messages.EncTicketPart, types.EncryptionKey, *kerr.Error) {
	var same, other []types.EncryptionKey
	var kvnos []uint32
	if a.cfg.Keytab != nil {
		for _, e := range a.cfg.Keytab.Entries {
			if e.Key.KeyType != t.EncPart.EType {
				continue
			}
			if t.EncPart.KVNO == 0 || int(e.KVNO) == t.EncPart.KVNO {
				same = append(same, e.Key)
			} else {
				other = append(other, e.Key)
				kvnos = append(kvnos, e.KVNO)
			}
		}
	}
	if len(same)+len(other) == 0 {
		return messages.EncTicketPart{}, types.EncryptionKey{}, kerr.Errorf(kerr.KRB_AP_ERR_NOKEY, "NO_KEY", "no key of etype %s in the service keytab", kcrypto.ETypeName(t.EncPart.EType))
	}
	for _, k := range append(same, other...) {
		etp, err := kmsg.OpenTicket(t, k)
		if err == nil {
			return etp, k, nil
		}
		if c, _ := kerr.CodeOf(err); c != kerr.KRB_AP_ERR_MODIFIED {
			return messages.EncTicketPart{}, k, err.(*kerr.Error)
		}
	}
	e := kerr.Errorf(kerr.KRB_AP_ERR_MODIFIED, "TICKET_WRONG_KEY", "ticket for %s (kvno %d, %s) does not decrypt with this service account's key",
		kmsg.PrincipalString(t.SName, t.Realm), t.EncPart.KVNO, kcrypto.ETypeName(t.EncPart.EType)).WithStatus(kerr.StatusWrongPassword)
	if len(same) == 0 {
		e.Reason = "KVNO_MISMATCH"
		e.Text += fmt.Sprintf("; the keytab only has kvno %v", kvnos)
	}
	return messages.EncTicketPart{}, types.EncryptionKey{}, e
}

// reply builds the success token: SPNEGO accept-completed, carrying an AP-REP
// when the client asked for mutual authentication (RFC 4121 §4.1, RFC 4178 §4.2.2).
func (a *Acceptor) reply(ctx *SecContext, auth types.Authenticator) error {
	var inner []byte
	if ctx.MutualRequired {
		rep, err := kmsg.MarshalAPRep(auth.CTime, auth.Cusec, auth.SeqNumber, ctx.sessionKey)
		if err != nil {
			return err
		}
		if ctx.Mech == MechRawAPReq {
			inner = rep
		} else {
			inner = WrapKRB5(ctx.Mech, tokAPRep, rep)
		}
	}
	if ctx.SPNEGO {
		ctx.ResponseToken = MarshalNegTokenResp(NegAcceptCompleted, ctx.Mech, inner)
	} else {
		ctx.ResponseToken = inner
	}
	return nil
}

// errorToken wraps a KRB-ERROR for the client (RFC 4121 §4.1 token id 03 00).
func (a *Acceptor) errorToken(e *AcceptError, mech Mech, spnego bool) []byte {
	pn, realm := kmsg.ParsePrincipal(e.Service)
	if realm == "" {
		realm = a.cfg.Realm
	}
	k := messages.NewKRBError(pn, realm, int32(e.Code), e.Text)
	if e.Status != 0 {
		k.EData = kerr.ExtErrorEData(e.Status)
	}
	b, err := k.Marshal()
	if err != nil {
		return nil
	}
	tok := b
	if mech != MechRawAPReq {
		tok = WrapKRB5(mech, tokError, b)
	}
	if spnego {
		// As Windows answers (IIS's 401 after a failed AP-REQ): negState
		// accept-incomplete with the KRB-ERROR as the mechanism's token, so
		// the client's krb5 mechanism reads the error (Kerberos event 4 on
		// Windows; GSS_S_FAILURE with the code in MIT), not a rejected
		// negotiation, which MIT reports as a defective token.
		return MarshalNegTokenResp(NegAcceptIncomplete, mech, tok)
	}
	return tok
}

func equalFold(a, b string) bool { return len(a) == len(b) && bytes.EqualFold([]byte(a), []byte(b)) }
