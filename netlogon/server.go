package netlogon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/doublehop/doublehop/directory"
	"github.com/doublehop/doublehop/events"
	"github.com/doublehop/doublehop/internal/accept"
	"github.com/doublehop/doublehop/krb/gss"
	"github.com/doublehop/doublehop/krb/keytab"
	"github.com/doublehop/doublehop/krb/kmsg"
	"github.com/doublehop/doublehop/ntlm"
	"github.com/doublehop/doublehop/ntstatus"
)

// Config configures the DC's Netlogon service.
type Config struct {
	Directory *directory.Store
	Account   string // the DC's own account, whose key opens callers' tickets (DC$)
	Host      string // dc.lab.local (events)
	Events    events.Sink
	Logger    *slog.Logger
	Now       func() time.Time
	MaxConns  int           // default 256
	Idle      time.Duration // a secure channel idle this long is closed (default 10 minutes)
}

// Server answers NetrLogonSamLogonEx for authenticated members.
type Server struct {
	cfg Config
	ev  events.Sink
	log *slog.Logger
}

// New makes a server; it holds no global state.
func New(cfg Config) *Server {
	if cfg.Account == "" {
		cfg.Account = "DC$"
	}
	if cfg.Host == "" {
		cfg.Host = "dc.lab.local"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxConns == 0 {
		cfg.MaxConns = 256
	}
	if cfg.Idle == 0 {
		cfg.Idle = 10 * time.Minute
	}
	ev := cfg.Events
	if ev == nil {
		ev = events.Discard
	}
	lg := cfg.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	return &Server{cfg: cfg, ev: events.Stamp(ev, cfg.Host, "kdc", cfg.Now), log: lg}
}

// Serve accepts secure channels until ctx ends.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	return accept.Loop(ctx, ln, s.cfg.MaxConns, s.log, "netlogon", nil, func(c net.Conn) { s.serveConn(ctx, c) })
}

// handshake replies: 0 then the AP-REP token, or 1 then the reason.
const (
	replyOK      = 0
	replyRefused = 1
)

func (s *Server) serveConn(ctx context.Context, c net.Conn) {
	c.SetDeadline(time.Now().Add(30 * time.Second)) // wall clock, not the lab's
	tok, err := kmsg.ReadFrame(c, MaxFrame)
	if err != nil {
		return
	}
	v := s.cfg.Directory.View()
	sec, who, err := s.accept(v, tok)
	if err != nil {
		ev := events.Event{ID: events.NetlogonSessionFailed, Outcome: events.Failure, Client: who, Address: c.RemoteAddr().String(),
			Reason: "SESSION_REFUSED", Status: ntstatus.AccessDenied.String(), Account: s.cfg.Account,
			Message: "The session setup from a caller failed to authenticate: " + err.Error()}
		var ae *gss.AcceptError
		if errors.As(err, &ae) {
			// The ticket's evidence, as the web and SQL tiers report theirs:
			// which SPN, whose key, which code.
			ev.Code, ev.CodeName, ev.Reason, ev.Client = int(ae.Code), ae.Code.Name(), ae.Reason, ae.Client
			ev.Service, ev.EType, ev.KVNO = ae.SPN(), ae.EType, ae.KVNO
		}
		s.ev.Emit(ev)
		kmsg.WriteFrame(c, append([]byte{replyRefused}, err.Error()...))
		return
	}
	if err := kmsg.WriteFrame(c, append([]byte{replyOK}, sec.ResponseToken...)); err != nil {
		return
	}
	key := sec.SessionKey()
	var seq uint64
	for ctx.Err() == nil {
		c.SetDeadline(time.Now().Add(s.cfg.Idle))
		var req SamLogonRequest
		if err := readSealed(c, key, usageRequest, &req); err != nil {
			return
		}
		if req.Seq != seq+1 {
			s.log.Warn("netlogon: out-of-order request", "caller", sec.ClientPrincipal(), "seq", req.Seq)
			return
		}
		seq = req.Seq
		resp := s.samLogon(sec.ClientPrincipal(), c.RemoteAddr().String(), &req)
		resp.Seq = seq
		if err := writeSealed(c, key, usageResponse, resp); err != nil {
			return
		}
	}
}

// accept verifies the caller's ticket with the DC's key and checks that the
// caller is a domain member: a computer or a service account, never a user.
func (s *Server) accept(v *directory.View, tok []byte) (*gss.SecContext, string, error) {
	entries, err := v.KeytabEntries(s.cfg.Account)
	if err != nil {
		return nil, "", err
	}
	kt, err := keytab.Gokrb5(entries)
	if err != nil {
		return nil, "", err
	}
	acc := gss.NewAcceptor(gss.AcceptorConfig{Keytab: kt, Realm: v.Lab.Realm, Now: s.cfg.Now, MaxSkew: v.Lab.Policy.MaxSkew.D()})
	sec, err := acc.Accept(tok)
	if err != nil {
		return nil, "", fmt.Errorf("the caller's ticket was refused: %w", err)
	}
	who := sec.ClientPrincipal()
	e, ok := v.Account(strings.Join(sec.Client.NameString, "/"))
	if !ok || e.Disabled {
		return nil, who, fmt.Errorf("%s is not an enabled account of this domain", who)
	}
	if e.Type != directory.TypeComputer && e.Type != directory.TypeService {
		return nil, who, fmt.Errorf("%s is a user account, not a member server's (computer or service) account: the DC validates NTLM only for domain members", who)
	}
	return sec, who, nil
}

// ValidateNTLM validates a logon at the DC itself, for an NTLM bind to the
// DC's own services (LDAP's Sicily bind): the same checks and 4776 as a
// member's pass-through, with the DC as the caller.
func (s *Server) ValidateNTLM(_ context.Context, r ntlm.ValidationRequest) (*ntlm.ValidationResult, error) {
	resp := s.samLogon(s.cfg.Host, "", &SamLogonRequest{User: r.User, Domain: r.Domain, Workstation: r.Workstation,
		ServerChallenge: r.ServerChallenge[:], NtResponse: r.NtResponse, LmResponse: r.LmResponse, Package: "NTLM"})
	return resp.validation()
}

// samLogon validates one network logon (MS-APDS 3.1.5) and logs 4776.
func (s *Server) samLogon(caller, addr string, req *SamLogonRequest) SamLogonResponse {
	v := s.cfg.Directory.View()
	l := v.Lab
	ev := events.Event{ID: events.CredentialValidation, Outcome: events.Failure, Client: req.User, Account: req.User,
		Package: "MICROSOFT_AUTHENTICATION_PACKAGE_V1_0", Workstation: req.Workstation, Address: addr, Evidence: caller,
		Message: "The computer attempted to validate the credentials for an account."}
	fail := func(e *ntlm.Error) SamLogonResponse {
		ev.Status, ev.Reason = e.Status.String(), e.Reason
		ev.Message += " Error Code: " + e.Status.String() + " (" + e.Text + ")"
		s.ev.Emit(ev)
		return SamLogonResponse{Status: uint32(e.Status), Reason: e.Reason, Text: e.Text}
	}
	if d := strings.ToUpper(req.Domain); d != "" && d != strings.ToUpper(l.NetBIOS) && d != strings.ToUpper(l.Realm) {
		return fail(ntlm.Errorf(ntstatus.NoSuchUser, "FOREIGN_DOMAIN", "domain %q is not %s (no trusts in the lab)", req.Domain, l.NetBIOS))
	}
	a, ok := v.LogonAccount(req.User)
	if !ok || a.Type == directory.TypeKrbtgt {
		return fail(ntlm.Errorf(ntstatus.NoSuchUser, "NO_SUCH_USER", "no account %s in %s", req.User, l.NetBIOS))
	}
	ev.Client = a.Name + "@" + l.Realm
	if l.Policy.RestrictNTLM == directory.RestrictNTLMDenyAll {
		s.ev.Emit(events.Event{ID: events.NTLMBlocked, Outcome: events.Failure, Client: ev.Client, Workstation: req.Workstation, Evidence: caller,
			Status: ntstatus.NTLMBlocked.String(), Reason: "RESTRICT_NTLM",
			Message: "NTLM authentication to this domain controller was blocked (Network security: Restrict NTLM: NTLM authentication in this domain)."})
		return fail(ntlm.Errorf(ntstatus.NTLMBlocked, "RESTRICT_NTLM", "the domain policy restrict_ntlm=%s refuses NTLM", l.Policy.RestrictNTLM))
	}
	if len(req.ServerChallenge) != 8 {
		return fail(ntlm.Errorf(ntstatus.InvalidParameter, ntlm.ReasonMalformed, "a server challenge of %d bytes", len(req.ServerChallenge)))
	}
	var sc [8]byte
	copy(sc[:], req.ServerChallenge)
	now := s.cfg.Now()
	if a.LockedNow(l.Policy, now) {
		return fail(ntlm.Errorf(ntstatus.AccountLockedOut, "LOCKED_OUT", "the account %s is locked out", a.Name))
	}
	key, verr := ntlm.Verify(ntlm.NTHash(a.Password), req.User, req.Domain, sc, req.NtResponse, req.LmResponse)
	if verr != nil {
		if verr.Status == ntstatus.WrongPassword {
			s.badPassword(a.Name, now) // NTLM's bad passwords count toward lockout too
		}
		return fail(verr)
	}
	// Account state is checked once the password is proven (MS-APDS 3.1.5).
	if r := a.BeforePassword(l.Policy, now); r != nil {
		return fail(ntlm.Errorf(r.Status, r.Reason, "%s", r.Text))
	}
	if r := a.AfterPassword(); r != nil {
		return fail(ntlm.Errorf(r.Status, r.Reason, "%s", r.Text))
	}
	switch {
	case a.InGroup("Protected Users"):
		return fail(ntlm.Errorf(ntstatus.AccountRestriction, "PROTECTED_USERS", "%s is in Protected Users, which cannot use NTLM", a.Name))
	}
	ev.Outcome, ev.Status = events.Success, ntstatus.Success.String()
	ev.Message += " Error Code: 0x0"
	s.ev.Emit(ev)
	return SamLogonResponse{Status: 0, Account: a.Name, Domain: l.NetBIOS, UPN: a.UPN, SID: a.SID, Groups: a.Groups, UserSessionKey: key}
}

// badPassword counts a wrong NTLM password (badPwdCount) and locks the
// account at the domain's threshold: 4740, as for Kerberos.
func (s *Server) badPassword(name string, now time.Time) {
	if directory.RecordBadPassword(s.cfg.Directory, name, now) {
		s.ev.Emit(events.Event{ID: events.AccountLockedOut, Outcome: events.Failure, Client: name, Account: name, Reason: "LOCKED_OUT",
			Status: ntstatus.AccountLockedOut.String(), Message: "A user account was locked out: " + name + " (bad NTLM passwords)"})
	}
}
