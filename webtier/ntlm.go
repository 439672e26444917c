package webtier

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
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
	mu        sync.Mutex
	pending   *ntlm.ServerContext // a CHALLENGE was sent, the AUTHENTICATE is due
	spnego    bool                // the handshake runs inside SPNEGO
	mechTypes []byte              // the client's MechTypeList (for mechListMIC)
	user      *identity           // authenticated by NTLM on this connection
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
	short := strings.ToUpper(strings.SplitN(s.cfg.Host, ".", 2)[0])
	return ntlm.ServerConfig{NetBIOSDomain: s.cfg.NetBIOS, NetBIOSComputer: short, DNSDomain: strings.ToLower(s.cfg.Realm),
		DNSComputer: s.cfg.Host, Now: s.cfg.Now}
}

// ntlmLeg runs one leg of an NTLM handshake. msg is the NTLMSSP message;
// scheme is how it came (Negotiate or NTLM); neg is the SPNEGO wrapper's
// token when there was one.
func (s *Server) ntlmLeg(w http.ResponseWriter, r *http.Request, scheme string, msg []byte, init *gss.NegTokenInit, resp *gss.NegTokenResp) (identity, bool) {
	cs := stateOf(r)
	cs.mu.Lock()
	defer cs.mu.Unlock()
	spnego := init != nil || resp != nil
	switch ntlm.TypeOf(msg) {
	case ntlm.TypeNegotiate:
		c := ntlm.NewServerContext(s.ntlmServerConfig())
		ch, err := c.Challenge(msg)
		if err != nil {
			s.ntlmFailure(r, nil, "BAD_TOKEN", err.Error())
			s.challenge(w, r, nil, "the NTLM NEGOTIATE message does not parse: "+err.Error())
			return identity{}, false
		}
		cs.pending, cs.spnego, cs.user = c, spnego, nil
		if init != nil {
			cs.mechTypes = init.MechTypesDER
		}
		tok := ch
		if spnego {
			tok = gss.MarshalNegTokenResp(gss.NegAcceptIncomplete, gss.MechNTLM, ch)
		}
		w.Header().Set("WWW-Authenticate", scheme+" "+base64.StdEncoding.EncodeToString(tok))
		s.renderError(w, r, http.StatusUnauthorized, "401 - Unauthorized: Access is denied due to invalid credentials.", "NTLM handshake: the challenge is on its way")
		return identity{}, false
	case ntlm.TypeAuthenticate:
		c := cs.pending
		cs.pending = nil
		if c == nil {
			s.ntlmFailure(r, ntlm.Errorf(ntstatus.LogonFailure, "NO_CHALLENGE", "an AUTHENTICATE without a CHALLENGE on this connection"), "", "")
			s.challenge(w, r, nil, "an NTLM AUTHENTICATE arrived without a challenge on this connection (NTLM is bound to one TCP connection)")
			return identity{}, false
		}
		res, err := c.Authenticate(r.Context(), msg, s.validator())
		if err != nil {
			var ne *ntlm.Error
			if !errors.As(err, &ne) {
				ne = ntlm.Errorf(ntstatus.LogonFailure, ntlm.ReasonMalformed, "%v", err)
			}
			s.ntlmFailure(r, ne, "", "")
			s.challenge(w, r, nil, "NTLM logon failed: "+ne.Error())
			return identity{}, false
		}
		if res.Anonymous {
			s.ntlmFailure(r, ntlm.Errorf(ntstatus.LogonFailure, "ANONYMOUS", "an anonymous NTLM logon (the site does not allow anonymous access)"), "", "")
			s.challenge(w, r, nil, "anonymous access is disabled on this site")
			return identity{}, false
		}
		var mic []byte
		if spnego && resp != nil && len(resp.MechListMIC) > 0 {
			// RFC 4178 §5: the client's mechListMIC signs the mechanism
			// list it sent; the answer signs it back.
			if !res.Session.VerifyClientMAC(0, cs.mechTypes, resp.MechListMIC) {
				s.ntlmFailure(r, ntlm.Errorf(ntstatus.DowngradeDetected, "MECHLISTMIC", "the SPNEGO mechListMIC does not verify (the mechanism list was changed in transit)"), "", "")
				s.challenge(w, r, nil, "SPNEGO mechListMIC mismatch")
				return identity{}, false
			}
			mic = res.Session.ServerMAC(0, cs.mechTypes)
		}
		if spnego {
			w.Header().Set("WWW-Authenticate", scheme+" "+base64.StdEncoding.EncodeToString(gss.MarshalNegTokenRespMIC(gss.NegAcceptCompleted, gss.MechUnknown, nil, mic)))
		}
		v := res.Validation
		id := identity{principal: v.Account + "@" + s.cfg.Realm, user: v.Account, via: "NTLM (NTLMv2" + map[bool]string{true: ", inside Negotiate", false: ""}[spnego] + ")", ntlm: res}
		cs.user = &id
		s.ev.Emit(events.Event{ID: events.LogonSuccess, Outcome: events.Success, Client: id.principal, Account: s.cfg.ServiceAccount,
			Message: "An account was successfully logged on", LogonType: 3, Package: "NTLM", LogonProcess: "NtLmSsp", LMPackage: "NTLM V2",
			Workstation: res.Workstation, Impersonation: "Impersonation", Address: r.RemoteAddr})
		return id, true
	}
	s.ntlmFailure(r, nil, "BAD_TOKEN", fmt.Sprintf("an NTLM message of type %d out of order", ntlm.TypeOf(msg)))
	s.challenge(w, r, nil, "an NTLM message out of order")
	return identity{}, false
}

// validator is the DC's pass-through service, or an answer that says there is none.
func (s *Server) validator() ntlm.Validator {
	if s.netlogon != nil {
		return s.netlogon
	}
	return noDC{}
}

type noDC struct{}

func (noDC) ValidateNTLM(context.Context, ntlm.ValidationRequest) (*ntlm.ValidationResult, error) {
	return nil, ntlm.Errorf(ntstatus.NoLogonServers, "NO_LOGON_SERVERS", "the site has no secure channel to a domain controller")
}

// ntlmFailure emits 4625 for an NTLM logon with Windows' status and sub-status.
func (s *Server) ntlmFailure(r *http.Request, e *ntlm.Error, reason, text string) {
	ev := events.Event{ID: events.LogonFailure, Outcome: events.Failure, Message: "An account failed to log on", LogonType: 3,
		Package: "NTLM", LogonProcess: "NtLmSsp", Account: s.cfg.ServiceAccount, Reason: reason, Address: r.RemoteAddr, Status: "0xC000006D"}
	if e != nil {
		ev.Reason, ev.Status = e.Reason, "0xC000006D/"+e.Status.String()
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
