package webtier

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/doublehop/doublehop/events"
	"github.com/doublehop/doublehop/krb/gss"
	"github.com/doublehop/doublehop/krb/kdcclient"
	"github.com/doublehop/doublehop/krb/kerr"
	"github.com/doublehop/doublehop/krb/kmsg"
	"github.com/doublehop/doublehop/ntlm"
	"github.com/doublehop/doublehop/ntstatus"
	gokeytab "github.com/jcmturner/gokrb5/v8/keytab"
)

// errKeytab is the seed's "Service Unavailable": the app pool identity's
// credentials cannot be read.
type errKeytab struct{ err error }

func (e errKeytab) Error() string { return "cannot read the service account keytab: " + e.err.Error() }

// keytab returns the service account's keys, re-reading the file when it
// changed (a re-exported keytab after a password reset takes effect at once).
func (s *Server) keytab() (*gokeytab.Keytab, error) {
	kt, err := s.ktFile.Keytab()
	if err != nil {
		return nil, errKeytab{err}
	}
	return kt, nil
}

// ownTGT returns the service account's TGT, logging on with its keytab when
// needed (the app pool identity's logon).
func (s *Server) ownTGT(ctx context.Context) (kmsg.Credential, error) {
	c, err := s.logon.TGT(ctx)
	if errors.Is(err, kdcclient.ErrNoKey) {
		// IIS cannot log the pool identity on: WAS event 5021, as for an
		// unreadable keytab.
		s.ev.Emit(events.Event{ID: events.AppPoolIdentityInvalid, Outcome: events.Failure, Account: s.cfg.ServiceAccount, Reason: "KEYTAB_NO_KEY",
			Message: fmt.Sprintf("The identity of application pool SVC_POOL (%s) is invalid: %s has no key for %s", s.cfg.ServiceAccount, s.cfg.Keytab, s.cfg.ServiceAccount)})
	}
	return c, err
}

// identity is who the page serves.
type identity struct {
	principal string // bob@LAB.LOCAL
	user      string // bob
	via       string // "Kerberos (SPNEGO)", "NTLM (...)", the form
	ctx       *gss.SecContext
	ntlm      *ntlm.ServerResult
	spnego    bool // NTLM inside Negotiate (not the NTLM scheme)
}

func (id identity) windows(netbios string) string { return netbios + `\` + id.user }

// kerberos verifies a Kerberos context token.
func (s *Server) kerberos(w http.ResponseWriter, r *http.Request, kt *gokeytab.Keytab, raw []byte) (*gss.SecContext, bool) {
	skew := s.cfg.MaxSkew
	if st := s.settings.get(); st.MaxSkew > 0 {
		skew = st.MaxSkew // the lab's policy, live
	}
	s.replay.SetSkew(skew)
	acc := gss.NewAcceptor(gss.AcceptorConfig{Keytab: kt, Realm: s.cfg.Realm, MaxSkew: skew, Now: s.cfg.Now, Replay: s.replay})
	ctx, err := acc.Accept(raw)
	if err != nil {
		var ae *gss.AcceptError
		if errors.As(err, &ae) {
			s.logonFailure(r, ae, ae.Reason, ae.Text)
			s.challenge(w, r, ae.Token, ae.Error())
		} else {
			// NTLM: this site is Kerberos only (Negotiate without NTLM fallback).
			s.logonFailure(r, nil, "NOT_KERBEROS", err.Error())
			s.challenge(w, r, nil, "this site accepts Kerberos only; the browser offered NTLM or no credential")
		}
		return nil, false
	}
	if len(ctx.ResponseToken) > 0 {
		w.Header().Set("WWW-Authenticate", "Negotiate "+base64.StdEncoding.EncodeToString(ctx.ResponseToken))
	}
	lvl := "Impersonation"
	if ctx.Delegated != nil {
		lvl = "Delegation"
	}
	s.ev.Emit(events.Event{ID: events.LogonSuccess, Outcome: events.Success, Client: ctx.ClientPrincipal(),
		Message: "An account was successfully logged on", Service: ctx.Service, Account: s.cfg.ServiceAccount,
		EType: ctx.EType, KVNO: ctx.KVNO, TicketFlags: kmsg.FlagNames(ctx.Flags), LogonType: 3, Package: "Kerberos",
		Impersonation: lvl, Delegated: ctx.Delegated != nil, Address: r.RemoteAddr})
	return ctx, true
}

// challenge answers 401 with WWW-Authenticate: Negotiate, carrying the
// acceptor's KRB-ERROR token when there is one (as Windows servers do).
func (s *Server) challenge(w http.ResponseWriter, r *http.Request, token []byte, why string) {
	negotiated := false
	for _, p := range s.settings.get().providers() {
		switch {
		case strings.HasPrefix(strings.ToLower(p), "negotiate") && !negotiated:
			v := "Negotiate"
			if len(token) > 0 {
				v += " " + base64.StdEncoding.EncodeToString(token)
			}
			w.Header().Add("WWW-Authenticate", v)
			negotiated = true
		case strings.EqualFold(p, ProviderNTLM):
			w.Header().Add("WWW-Authenticate", "NTLM")
		}
	}
	s.renderError(w, r, http.StatusUnauthorized, "401 - Unauthorized: Access is denied due to invalid credentials.", why)
}

// unavailable is the seed's "Service Unavailable" (HTTP 503) with the reason.
func (s *Server) unavailable(w http.ResponseWriter, r *http.Request, err error) {
	s.ev.Emit(events.Event{ID: events.AppPoolIdentityInvalid, Outcome: events.Failure, Account: s.cfg.ServiceAccount, Address: r.RemoteAddr,
		Reason: "KEYTAB_UNREADABLE", Message: fmt.Sprintf("The identity of application pool SVC_POOL (%s) is invalid: %v", s.cfg.ServiceAccount, err)})
	w.Header().Set("Retry-After", "5")
	s.renderError(w, r, http.StatusServiceUnavailable, "Service Unavailable", err.Error())
}

// logonFailure emits 4625 with Windows' failure reason and status.
func (s *Server) logonFailure(r *http.Request, ae *gss.AcceptError, reason, text string) {
	ev := events.Event{ID: events.LogonFailure, Outcome: events.Failure, Message: "An account failed to log on", LogonType: 3,
		Package: "Kerberos", Account: s.cfg.ServiceAccount, Reason: reason, Address: r.RemoteAddr,
		Status: "0xC000006D"} // STATUS_LOGON_FAILURE; the sub-status says why
	if ae != nil {
		ev.Service, ev.EType, ev.KVNO, ev.Client = ae.SPN(), ae.EType, ae.KVNO, ae.Client
		ev.Code, ev.CodeName = int(ae.Code), ae.Code.Name()
		if st := ae.StatusString(); st != "" {
			ev.Status = "0xC000006D/" + st
		}
		switch ae.Code {
		case kerr.KRB_AP_ERR_MODIFIED:
			ev.Message += ": Unknown user name or bad password (the ticket was encrypted with another account's key)"
		case kerr.KRB_AP_ERR_SKEW:
			ev.Message += ": the clocks of the client and this server differ too much"
		case kerr.KRB_AP_ERR_REPEAT:
			ev.Message += ": the authenticator was replayed"
		default:
			ev.Message += ": " + ae.Code.String()
		}
	}
	if text != "" {
		ev.Message += " — " + text
	}
	s.ev.Emit(ev)
}

// Form login: the site's own (non-Kerberos) way in, used to show protocol
// transition (S4U2Self). The cookie is HMAC-signed with the server's secret.
const formCookie = "doublehop_form"

func (s *Server) signUser(user string, exp time.Time) string {
	v := fmt.Sprintf("%s|%d", user, exp.Unix())
	m := hmac.New(sha256.New, s.cfg.FormSecret)
	m.Write([]byte(v))
	return base64.RawURLEncoding.EncodeToString([]byte(v)) + "." + hex.EncodeToString(m.Sum(nil))
}

func (s *Server) formUser(r *http.Request) (string, bool) {
	c, err := r.Cookie(formCookie)
	if err != nil || len(c.Value) > 512 {
		return "", false
	}
	p, sig, ok := strings.Cut(c.Value, ".")
	if !ok {
		return "", false
	}
	raw, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil {
		return "", false
	}
	m := hmac.New(sha256.New, s.cfg.FormSecret)
	m.Write(raw)
	want := hex.EncodeToString(m.Sum(nil))
	if !hmac.Equal([]byte(want), []byte(sig)) {
		return "", false
	}
	user, exp, _ := strings.Cut(string(raw), "|")
	var e int64
	fmt.Sscan(exp, &e)
	if s.cfg.Now().Unix() > e {
		return "", false
	}
	if _, ok := s.settings.get().FormUsers[user]; !ok {
		return "", false // the user was removed from the site's logins
	}
	return user, true
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// authenticate reads the Authorization header: Kerberos or NTLM inside
// Negotiate (SPNEGO, MS-SPNG), or the NTLM scheme, as the site's providers
// allow. It writes the 401 itself and returns ok=false when the request is
// not (yet) authenticated.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request, st Settings) (identity, bool) {
	scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(tok))
	if err != nil || len(raw) == 0 || len(raw) > gss.MaxToken {
		s.logonFailure(r, nil, "BAD_TOKEN", "the "+scheme+" header is not a base64 token")
		s.challenge(w, r, nil, "the "+scheme+" token was not valid base64")
		return identity{}, false
	}
	negotiate := strings.EqualFold(scheme, "Negotiate")
	switch {
	case strings.EqualFold(scheme, "NTLM") && st.has(ProviderNTLM) && ntlm.Is(raw):
		return s.ntlmLeg(w, r, "NTLM", raw)
	case negotiate && (st.has(ProviderNegotiate) || st.has(ProviderNegotiateKerberos)):
	default:
		s.logonFailure(r, nil, "PROVIDER_NOT_ENABLED", "the client used the "+scheme+" scheme, which this site does not offer")
		s.challenge(w, r, nil, "this site does not accept the "+scheme+" scheme")
		return identity{}, false
	}
	// Inside Negotiate: bare NTLMSSP (Windows sends it so), a NegTokenResp
	// continuing an NTLM handshake, or a NegTokenInit preferring NTLM.
	if msg, _, _ := gss.SplitNTLM(raw); msg != nil {
		if !st.negotiateAllowsNTLM() {
			s.ntlmFailure(r, ntlm.Errorf(ntstatus.LogonFailure, "NTLM_NOT_ENABLED", "NTLM inside Negotiate, and this site's provider is Negotiate:Kerberos"), "", "")
			s.challenge(w, r, nil, "this site accepts Kerberos only (provider Negotiate:Kerberos); the browser offered NTLM")
			return identity{}, false
		}
		return s.ntlmLeg(w, r, "Negotiate", raw)
	}
	kt, err := s.keytab()
	if err != nil {
		s.unavailable(w, r, err)
		return identity{}, false
	}
	ctx, ok := s.kerberos(w, r, kt, raw)
	if !ok {
		return identity{}, false
	}
	return identity{principal: ctx.ClientPrincipal(), user: strings.Join(ctx.Client.NameString, "/"), via: "Kerberos (SPNEGO)", ctx: ctx}, true
}
