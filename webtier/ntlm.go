package webtier

import (
	"context"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"sync"

	"github.com/doublehop/doublehop/events"
	"github.com/doublehop/doublehop/krb/gss"
	"github.com/doublehop/doublehop/ntlm"
	"github.com/doublehop/doublehop/ntstatus"
)

// NTLM on the site (MS-NLMP inside Negotiate per MS-SPNG, or the plain NTLM
// scheme), the way IIS runs it: the handshake is bound to its TCP connection
// (the CHALLENGE and the AUTHENTICATE must arrive on the same one), the DC
// validates the response over the secure channel (package netlogon), and the
// connection stays authenticated as the user afterwards (IIS's
// authPersistSingleRequest=false).

type connKey struct{}

// connState is what the site remembers about one TCP connection.
type connState struct {
	mu   sync.Mutex
	ntlm *gss.NTLMAcceptor // this connection's NTLM handshake
	user *identity         // authenticated by NTLM on this connection
}

func withConnState(ctx context.Context, _ net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, &connState{})
}

func stateOf(r *http.Request) *connState {
	if cs, ok := r.Context().Value(connKey{}).(*connState); ok {
		return cs
	}
	return &connState{} // a handler used without Serve: no connection binding
}

func (s *Server) ntlmServerConfig() ntlm.ServerConfig {
	return ntlm.MemberServer(s.cfg.NetBIOS, s.cfg.Realm, s.cfg.Host, "", s.cfg.Now)
}

// ntlmLeg runs one leg of an NTLM handshake on the request's connection;
// scheme is how it came (Negotiate or NTLM).
func (s *Server) ntlmLeg(w http.ResponseWriter, r *http.Request, scheme string, tok []byte) (identity, bool) {
	cs := stateOf(r)
	cs.mu.Lock()
	defer cs.mu.Unlock()
	msg, _, _ := gss.SplitNTLM(tok)
	if ntlm.TypeOf(msg) == ntlm.TypeNegotiate {
		cs.ntlm, cs.user = &gss.NTLMAcceptor{Config: s.ntlmServerConfig()}, nil
	} else if cs.ntlm == nil {
		cs.ntlm = &gss.NTLMAcceptor{Config: s.ntlmServerConfig()}
	}
	out, res, err := cs.ntlm.Step(r.Context(), tok, s.validator())
	var ne *ntlm.Error
	switch {
	case errors.As(err, &ne):
		s.ntlmFailure(r, ne, "", "")
		s.challenge(w, r, nil, "NTLM logon failed: "+ne.Error())
		return identity{}, false
	case err != nil:
		s.ntlmFailure(r, nil, "BAD_TOKEN", err.Error())
		s.challenge(w, r, nil, "the NTLM message does not parse: "+err.Error())
		return identity{}, false
	case res == nil:
		w.Header().Set("WWW-Authenticate", scheme+" "+base64.StdEncoding.EncodeToString(out))
		s.renderError(w, r, http.StatusUnauthorized, "401 - Unauthorized: Access is denied due to invalid credentials.", "NTLM handshake: the challenge is on its way")
		return identity{}, false
	case res.Anonymous:
		s.ntlmFailure(r, ntlm.Errorf(ntstatus.LogonFailure, "ANONYMOUS", "an anonymous NTLM logon (the site does not allow anonymous access)"), "", "")
		s.challenge(w, r, nil, "anonymous access is disabled on this site")
		return identity{}, false
	}
	if out != nil {
		w.Header().Set("WWW-Authenticate", scheme+" "+base64.StdEncoding.EncodeToString(out))
	}
	spnego := cs.ntlm.SPNEGO()
	v := res.Validation
	id := identity{principal: v.Account + "@" + s.cfg.Realm, user: v.Account, via: "NTLM (NTLMv2" + map[bool]string{true: ", inside Negotiate", false: ""}[spnego] + ")", ntlm: res, spnego: spnego}
	cs.user = &id
	s.ev.Emit(events.Event{ID: events.LogonSuccess, Outcome: events.Success, Client: id.principal, Account: s.cfg.ServiceAccount,
		Message: "An account was successfully logged on", LogonType: 3, Package: "NTLM", LogonProcess: "NtLmSsp", LMPackage: "NTLM V2",
		Workstation: res.Workstation, Impersonation: "Impersonation", Address: r.RemoteAddr})
	return id, true
}

// validator is the DC's pass-through service, or an answer that says there is none.
func (s *Server) validator() ntlm.Validator {
	if s.netlogon != nil {
		return s.netlogon
	}
	return ntlm.NoDC("the site")
}

// ntlmFailure emits 4625 for an NTLM logon with Windows' status and sub-status.
func (s *Server) ntlmFailure(r *http.Request, e *ntlm.Error, reason, text string) {
	ev := events.Event{ID: events.LogonFailure, Outcome: events.Failure, Message: "An account failed to log on", LogonType: 3,
		Package: "NTLM", LogonProcess: "NtLmSsp", Account: s.cfg.ServiceAccount, Reason: reason, Address: r.RemoteAddr, Status: "0xC000006D"}
	if e != nil {
		// 4625's Status/Sub Status: an account restriction (disabled,
		// expired, logon hours, workstation, Protected Users) is
		// 0xC000006E; a bad name or password 0xC000006D.
		top := "0xC000006D/"
		switch e.Status {
		case ntstatus.AccountRestriction, ntstatus.AccountDisabled, ntstatus.AccountExpired, ntstatus.PasswordExpired,
			ntstatus.InvalidLogonHours, ntstatus.InvalidWorkstation:
			top = "0xC000006E/"
		}
		ev.Reason, ev.Status = e.Reason, top+e.Status.String()
		ev.Message += ": " + e.Text
	} else if text != "" {
		ev.Message += ": " + text
	}
	s.ev.Emit(ev)
}

func (cs *connState) authenticated() *identity {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.user
}
