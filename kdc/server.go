// Package kdc is the lab's Key Distribution Center: AS and TGS exchanges (RFC
// 4120) with Active Directory's semantics where the lab needs them (SPN
// ownership and sPNMappings, AD salts, MS-PAC, ok-as-delegate, S4U2Self,
// S4U2Proxy, RBCD, NOT_DELEGATED), over UDP and TCP, with Windows-named audit
// events (4768, 4769, 4771).
package kdc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"runtime/debug"
	"sync"
	"time"

	"github.com/doublehop/doublehop/directory"
	"github.com/doublehop/doublehop/events"
	"github.com/doublehop/doublehop/krb/kerr"
	"github.com/doublehop/doublehop/krb/kmsg"
)

// Config configures a KDC.
type Config struct {
	Directory *directory.Store
	Events    events.Sink
	Logger    *slog.Logger
	Now       func() time.Time // base clock; the lab policy's kdc_clock_offset is added
	Host      string           // dc.lab.local, for events
	// MaxConns bounds concurrent TCP connections (default 1024).
	MaxConns int
}

// Server is a KDC. It holds no global state; several can run in one process.
type Server struct {
	cfg   Config
	log   *slog.Logger
	ev    events.Sink
	conns chan struct{}
}

// New makes a KDC.
func New(cfg Config) *Server {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Host == "" {
		cfg.Host = "dc.lab.local"
	}
	if cfg.MaxConns == 0 {
		cfg.MaxConns = 1024
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	ev := cfg.Events
	if ev == nil {
		ev = events.Discard
	}
	return &Server{cfg: cfg, log: log, ev: events.Stamp(ev, cfg.Host, "kdc", nil), conns: make(chan struct{}, cfg.MaxConns)}
}

// maxUDPReply is the largest reply sent over UDP; larger replies get
// KRB_ERR_RESPONSE_TOO_BIG so the client retries over TCP (RFC 4120 §7.2.1;
// MIT's max_dgram_reply_size is the same 4096).
const maxUDPReply = 4096

// Serve answers Kerberos over TCP (RFC 4120 §7.2.2) until ctx ends.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			// Temporary failures (EMFILE, timeouts): back off and keep serving, as net/http does.
			s.log.Warn("kdc: accept", "err", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		select {
		case s.conns <- struct{}{}:
		default:
			c.Close() // over MaxConns: refuse rather than queue without bound
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-s.conns }()
			s.serveConn(ctx, c)
		}()
	}
}

func (s *Server) serveConn(ctx context.Context, c net.Conn) {
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	for {
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		req, err := kmsg.ReadFrame(c, kmsg.MaxMessage)
		if err != nil {
			if code, ok := kerr.CodeOf(err); ok && code == kerr.KRB_ERR_FIELD_TOOLONG {
				s.log.Warn("oversized kerberos tcp request", "remote", c.RemoteAddr())
			}
			return
		}
		rep := s.Handle(req, c.RemoteAddr().String())
		if rep == nil {
			return
		}
		c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if kmsg.WriteFrame(c, rep) != nil {
			return
		}
	}
}

// ServePacket answers Kerberos over UDP (RFC 4120 §7.2.1) until ctx ends.
// A fixed pool of workers reads the socket (concurrent ReadFrom on one socket
// is safe): no goroutine and no stack growth per datagram.
func (s *Server) ServePacket(ctx context.Context, pc net.PacketConn) error {
	stop := context.AfterFunc(ctx, func() { pc.Close() })
	defer stop()
	workers := 2 * runtime.GOMAXPROCS(0)
	errs := make(chan error, workers)
	for range workers {
		go func() {
			buf := make([]byte, kmsg.MaxMessage)
			for {
				n, addr, err := pc.ReadFrom(buf)
				if err != nil {
					var ne net.Error
					if ctx.Err() == nil && errors.As(err, &ne) && ne.Timeout() {
						continue
					}
					errs <- err
					return
				}
				rep := s.Handle(buf[:n:n], addr.String())
				if rep == nil {
					continue
				}
				if len(rep) > maxUDPReply {
					rep = s.errorReply(nil, kerr.Errorf(kerr.KRB_ERR_RESPONSE_TOO_BIG, "RESPONSE_TOO_BIG", "reply of %d bytes: use TCP", len(rep)))
				}
				pc.WriteTo(rep, addr)
			}
		}()
	}
	var first error
	for range workers {
		if err := <-errs; first == nil {
			first = err
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	return first
}

// Handle answers one request. It never panics: a panic below is reported as an
// event and answered with KRB_ERR_GENERIC. It returns nil for input that is not
// a Kerberos request at all (the connection is then closed).
func (s *Server) Handle(req []byte, remote string) (rep []byte) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("kdc: panic handling request", "panic", r, "stack", string(debug.Stack()))
			s.ev.Emit(events.Event{ID: events.TierStatus, Outcome: events.Failure, Address: remote,
				Message: fmt.Sprintf("KDC recovered from a panic while handling a request: %v", r)})
			rep = s.errorReply(nil, kerr.Errorf(kerr.KRB_ERR_GENERIC, "INTERNAL", "internal error"))
		}
	}()
	r, err := kmsg.ParseKDCReq(req)
	if err != nil {
		if len(req) == 0 || (req[0] != 0x6a && req[0] != 0x6c) {
			return nil
		}
		ke, ok := err.(*kerr.Error)
		if !ok {
			ke = kerr.Errorf(kerr.KRB_ERR_GENERIC, "MALFORMED", "malformed request: %v", err)
		}
		id := events.TGTRequested
		if req[0] == 0x6c {
			id = events.ServiceTicket
		}
		s.ev.Emit(events.Event{ID: id, Outcome: events.Failure, Address: remote, Code: int(ke.Code), CodeName: ke.Code.Name(), Reason: ke.Reason,
			Message: "A Kerberos request could not be decoded: " + ke.Error()})
		return s.errorReply(nil, ke)
	}
	x := &exchange{s: s, req: r, raw: req, remote: remote, view: s.cfg.Directory.View()}
	x.now = s.cfg.Now().Add(x.view.Lab.Policy.KDCClockOffset.D())
	if r.MsgType == kmsg.MsgASReq {
		return x.as()
	}
	return x.tgs()
}
