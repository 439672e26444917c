package sqltier

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/doublehop/doublehop/internal/selfcert"

	"github.com/doublehop/doublehop/events"
	"github.com/doublehop/doublehop/krb/gss"
)

// Product version the server announces (PRELOGIN VERSION, LOGINACK,
// @@VERSION): SQL Server 2022 RTM-CU.
const (
	prodMajor = 16
	prodMinor = 0
	prodBuild = 4000
)

// Server is the lab's SQL Server. Create it with New; it holds no global state.
type Server struct {
	cfg    Config
	events events.Sink
	log    *slog.Logger
	replay *gss.ReplayCache
	liveMu sync.Mutex
	live   atomic.Pointer[live] // logins, data, acceptor: changed at run time by Apply

	viewList []*view

	tlsTDS    *tls.Config // TLS carried in PRELOGIN packets (TDS 7.x): TLS 1.2 max, no tickets
	tlsStrict *tls.Config // TDS 8.0: TLS first, ALPN tds/8.0
	initErr   error

	mu    sync.Mutex
	conns map[*conn]struct{}
	spids map[uint16]bool
	spid  uint16
}

// New makes a server from cfg (defaults filled in, see Config). When the
// encryption setting needs TLS and cfg.TLSConfig is nil, a self-signed
// certificate for cfg.Host is generated.
func New(cfg Config) *Server {
	cfg.setDefaults()
	s := &Server{
		cfg:    cfg,
		events: events.Stamp(cfg.Events, cfg.Host, "sql", cfg.Now),
		log:    cfg.Logger,
		conns:  map[*conn]struct{}{},
		spids:  map[uint16]bool{},
		spid:   50,
	}
	s.replay = gss.NewReplayCache(cfg.MaxSkew, 0)
	s.Apply(Update{Logins: cfg.Logins, Data: cfg.Data, Keytab: cfg.Keytab})
	s.viewList = s.makeViews()
	if cfg.Encryption != EncryptionNotSupported {
		base := cfg.TLSConfig
		if base == nil {
			cert, err := selfcert.New(cfg.Host, cfg.Now())
			if err != nil {
				s.initErr = fmt.Errorf("sqltier: self-signed certificate: %w", err)
				return s
			}
			base = &tls.Config{Certificates: []tls.Certificate{cert}}
		}
		s.tlsTDS = base.Clone()
		// SQL Server speaks TLS 1.2 inside TDS 7.x; TLS 1.3 session tickets
		// would be written after the client has switched transports (notes §3).
		s.tlsTDS.MaxVersion = tls.VersionTLS12
		if s.tlsTDS.MinVersion == 0 || s.tlsTDS.MinVersion > tls.VersionTLS12 {
			s.tlsTDS.MinVersion = tls.VersionTLS12
		}
		s.tlsTDS.SessionTicketsDisabled = true
		s.tlsStrict = base.Clone()
		s.tlsStrict.NextProtos = []string{"tds/8.0"}
		if s.tlsStrict.MinVersion == 0 {
			s.tlsStrict.MinVersion = tls.VersionTLS12
		}
		s.tlsStrict.SessionTicketsDisabled = true
	}
	return s
}

// Config returns the effective configuration (defaults filled in).
func (s *Server) Config() Config { return s.cfg }

// Serve accepts connections on ln until ctx is cancelled or ln fails. On
// cancellation it closes the listener and every connection, waits for their
// goroutines, and returns nil. ln is always closed on return.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if s.initErr != nil {
		ln.Close()
		return s.initErr
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	s.log.Info("sql tier listening", "addr", ln.Addr().String(), "encryption", s.cfg.Encryption.String(), "realm", s.cfg.Realm)

	var wg sync.WaitGroup
	defer func() {
		s.mu.Lock()
		for c := range s.conns {
			c.nc.Close()
		}
		s.mu.Unlock()
		wg.Wait()
	}()
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				time.Sleep(backoff)
				continue
			}
			ln.Close()
			return err
		}
		backoff = 0
		c := s.register(nc)
		if c == nil {
			s.log.Warn("connection refused: too many connections", "client", nc.RemoteAddr().String(), "max", s.cfg.MaxConns)
			nc.Close()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer s.unregister(c)
			c.serve(ctx)
		}()
	}
}

// register allocates a SPID (51 and up, as user sessions on SQL Server) and
// tracks the connection; nil when the server is full.
func (s *Server) register(nc net.Conn) *conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.conns) >= s.cfg.MaxConns {
		return nil
	}
	for {
		s.spid++
		if s.spid > 32767 || s.spid < 51 {
			s.spid = 51
		}
		if !s.spids[s.spid] {
			break
		}
	}
	c := newConn(s, nc, s.spid)
	s.spids[c.spid] = true
	s.conns[c] = struct{}{}
	return c
}

func (s *Server) unregister(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	delete(s.spids, c.spid)
	s.mu.Unlock()
}

// ActiveConnections is the number of open connections.
func (s *Server) ActiveConnections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}
