// Package webtier is the lab's intranet site: an IIS-like web server that runs
// under its own service account (svc_iispool), accepts only Negotiate
// (SPNEGO/Kerberos, RFC 4559), impersonates the caller when configured to,
// and opens SQL Server as that caller through go-mssqldb — with whatever
// delegable credential it was given (a forwarded TGT, S4U2Proxy, protocol
// transition) or none, which is the famous ANONYMOUS LOGON.
package webtier

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/doublehop/doublehop/events"
	"github.com/doublehop/doublehop/krb/gss"
	"github.com/doublehop/doublehop/krb/kdcclient"
	"github.com/doublehop/doublehop/krb/keytab"
	"github.com/doublehop/doublehop/krb/kmsg"
	"github.com/doublehop/doublehop/netlogon"
	"github.com/doublehop/doublehop/ntlm"
)

// Config configures the web tier.
type Config struct {
	Keytab         string // path of the service account's keytab; re-read when it changes
	ServiceAccount string // sAMAccountName the site runs as, svc_iispool
	Realm          string // LAB.LOCAL
	NetBIOS        string // LAB
	Host           string // web.lab.local
	KDC            string // host:port of the KDC (own TGT, S4U, delegated TGS)
	SettingsFile   string // YAML file with a `web:` section (web.config); "" = defaults
	SQLSPN         string // default MSSQLSvc/<sql host>:<port>
	Dialer         kdcclient.Dialer
	Events         events.Sink
	Logger         *slog.Logger
	Now            func() time.Time
	MaxSkew        time.Duration
	FormSecret     []byte // signs the form-login cookie; random when empty
	// NetlogonAddr is the DC's pass-through service (dc.lab.local:445) for
	// NTLM logons; the site opens it with a ticket for HOST/<dc host>.
	NetlogonAddr string
	// Validator replaces the secure channel (tests).
	Validator ntlm.Validator
}

// Server is the web tier.
type Server struct {
	cfg      Config
	log      *slog.Logger
	ev       events.Sink
	settings *settingsFile
	replay   *gss.ReplayCache
	kdc      *kdcclient.Client

	ktFile *keytab.File
	logon  *kdcclient.ServiceLogon // the service account's own TGT

	netlogon ntlm.Validator // the secure channel to the DC (NTLM pass-through)
}

// New makes the web tier.
func New(cfg Config) *Server {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxSkew == 0 {
		cfg.MaxSkew = 5 * time.Minute
	}
	if cfg.ServiceAccount == "" {
		cfg.ServiceAccount = "svc_iispool"
	}
	if cfg.Host == "" {
		cfg.Host = "web.lab.local"
	}
	if cfg.NetBIOS == "" {
		cfg.NetBIOS = "LAB"
	}
	if len(cfg.FormSecret) == 0 {
		cfg.FormSecret = randomBytes(32)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ev := cfg.Events
	if ev == nil {
		ev = events.Discard
	}
	s := &Server{cfg: cfg, log: log, ev: events.Stamp(ev, cfg.Host, "web", cfg.Now), settings: &settingsFile{path: cfg.SettingsFile, cur: DefaultSettings()},
		replay: gss.NewReplayCache(cfg.MaxSkew, 0)}
	s.kdc = &kdcclient.Client{Addr: cfg.KDC, Realm: cfg.Realm, Dialer: cfg.Dialer, Now: cfg.Now}
	s.ktFile = &keytab.File{Path: cfg.Keytab}
	s.logon = &kdcclient.ServiceLogon{KDC: s.kdc, Account: cfg.ServiceAccount, Keytab: s.keytab, Options: []int{kmsg.FlagForwardable}}
	switch {
	case cfg.Validator != nil:
		s.netlogon = cfg.Validator
	case cfg.NetlogonAddr != "":
		s.netlogon = netlogon.NewMemberClient(cfg.NetlogonAddr, cfg.Dialer, s.logon)
	}
	return s
}

// Serve serves HTTP on ln until ctx ends.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 60 * time.Second, MaxHeaderBytes: 64 << 10,
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn), ConnContext: withConnState}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		hs.Shutdown(sctx)
	}()
	err := hs.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Handler returns the site's routes: / (the page, Negotiate only), /login
// (a form login for protocol transition), /healthz (unauthenticated).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		if _, err := s.keytab(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, "web: service unavailable:", err)
			return
		}
		fmt.Fprintln(w, "web: ready")
	})
	mux.HandleFunc("/login", s.serveLogin)
	mux.HandleFunc("/logout", s.serveLogout)
	mux.HandleFunc("/", s.servePage)
	return s.recoverer(mux)
}

// recoverer turns a panic in a request (ours or a dependency's) into a 500
// and an event, and keeps the server up.
func (s *Server) recoverer(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("web: panic", "panic", v, "stack", string(debug.Stack()))
				s.ev.Emit(events.Event{ID: events.TierStatus, Outcome: events.Failure, Address: r.RemoteAddr,
					Message: fmt.Sprintf("the web tier recovered from a panic while serving %s: %v", r.URL.Path, v)})
				http.Error(w, "500 - Internal server error.", http.StatusInternalServerError)
			}
		}()
		h.ServeHTTP(w, r)
	})
}
