package ldapserver

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/doublehop/doublehop/directory"
	"github.com/doublehop/doublehop/events"
	"github.com/doublehop/doublehop/internal/accept"
	"github.com/doublehop/doublehop/internal/selfcert"
	"github.com/doublehop/doublehop/ldap"
	"github.com/doublehop/doublehop/ntds"
	"github.com/doublehop/doublehop/ntlm"
	ber "github.com/go-asn1-ber/asn1-ber"
)

// Config configures the DC's LDAP service.
type Config struct {
	Directory *directory.Store
	Account   string // the DC's machine account, whose key opens ldap/<dc> tickets (DC$)
	Host      string // dc.lab.local
	Events    events.Sink
	Logger    *slog.Logger
	Now       func() time.Time
	// NTLM validates Sicily (NTLM) binds at the DC; nil refuses them.
	NTLM ntlm.Validator
	// TLS enables StartTLS (RFC 4511 §4.14); nil: a self-signed certificate
	// for Host is made at start, as a DC without an enrolled one does.
	TLS      *tls.Config
	MaxConns int           // default 512
	Idle     time.Duration // AD's MaxConnIdleTime, default 900 s
}

// Server is the DC's LDAP face: the lab directory with Active Directory's
// shape, read and written live.
type Server struct {
	cfg    Config
	ev     events.Sink
	log    *slog.Logger
	dcKeys *ntds.DCAcceptor

	ntds ntds.Cache

	mu sync.Mutex // the TLS configuration, made once
}

// New makes a server; it holds no global state.
func New(cfg Config) (*Server, error) {
	if cfg.Directory == nil {
		return nil, errors.New("ldap: a directory is required")
	}
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
		cfg.MaxConns = 512
	}
	if cfg.Idle == 0 {
		cfg.Idle = 900 * time.Second
	}
	ev := cfg.Events
	if ev == nil {
		ev = events.Discard
	}
	lg := cfg.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, ev: events.Stamp(ev, cfg.Host, "kdc", cfg.Now), log: lg,
		dcKeys: ntds.NewDCAcceptor(cfg.Directory, cfg.Account, cfg.Now), ntds: ntds.Cache{Directory: cfg.Directory}}
	return s, nil
}

// view returns the directory as LDAP entries, rebuilt when the directory changed.
func (s *Server) view() (*directory.View, *ntds.Tree) { return s.ntds.View() }

// Serve accepts LDAP connections until ctx ends.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error { return s.serve(ctx, ln, false) }

// ServeLDAPS accepts LDAP over TLS from the first byte (port 636), with the
// configured or self-signed certificate.
func (s *Server) ServeLDAPS(ctx context.Context, ln net.Listener) error {
	cfg, err := s.tlsConfig()
	if err != nil {
		ln.Close()
		return err
	}
	return s.serve(ctx, tls.NewListener(ln, cfg), true)
}

func (s *Server) serve(ctx context.Context, ln net.Listener, overTLS bool) error {
	busy := func(c net.Conn) {
		// Over the cap: a Notice of Disconnection (busy), then close.
		c.SetWriteDeadline(time.Now().Add(time.Second))
		c.Write(ldap.Envelope(0, ldap.NoticeOfDisconnection(ldap.Other, "the DC's LDAP connection limit is reached")))
	}
	return accept.Loop(ctx, ln, s.cfg.MaxConns, s.log, "ldap", busy, func(c net.Conn) {
		cn := &conn{s: s, raw: c, net: c, tls: overTLS}
		cn.r = bufio.NewReader(c)
		cn.serve(ctx)
	})
}

// conn is one client connection: its bind state and security layer.
type conn struct {
	s   *Server
	raw net.Conn // the TCP connection
	net net.Conn // raw, or the TLS connection after StartTLS
	r   *bufio.Reader
	tls bool

	who  *identity
	bind *bindState // a SASL or Sicily bind in progress

	pending []byte // responses to the current request

	layer     securityLayer // SASL security layer (RFC 4752 §3.3, MS-NLMP 3.4)
	layerConf bool
	peerMax   int
}

// identity is who bound.
type identity struct {
	Account string // sAMAccountName
	Client  string // bob@LAB.LOCAL
	Mech    string // SIMPLE, GSSAPI, GSS-SPNEGO, NTLM
	Admin   bool
}

func (c *conn) name() string {
	if c.who == nil {
		return "ANONYMOUS LOGON"
	}
	return c.who.Client
}

func (c *conn) serve(ctx context.Context) {
	for ctx.Err() == nil {
		c.raw.SetDeadline(time.Now().Add(c.s.cfg.Idle))
		b, err := ldap.ReadFrame(c.r, ldap.MaxMessage)
		if err != nil {
			var pe *ldap.ProtocolError
			if errors.As(err, &pe) {
				c.write(ldap.Envelope(0, ldap.NoticeOfDisconnection(ldap.ProtocolErrorCode, pe.Reason)))
			}
			return
		}
		m, err := ldap.DecodeMessage(b)
		if err != nil {
			var pe *ldap.ProtocolError
			errors.As(err, &pe)
			c.write(ldap.Envelope(0, ldap.NoticeOfDisconnection(ldap.ProtocolErrorCode, err.Error())))
			return
		}
		ok := c.handle(ctx, m)
		if err := c.flush(); err != nil || !ok {
			return
		}
	}
}

// handle answers one request; false closes the connection.
func (c *conn) handle(ctx context.Context, m *ldap.Message) bool {
	op := int(m.Op.Tag)
	if c.bind != nil && op != ldap.OpBindRequest {
		c.bind = nil // RFC 4513 §5.2.1.4: another operation abandons the bind
	}
	switch op {
	case ldap.OpBindRequest:
		return c.handleBind(ctx, m)
	case ldap.OpUnbindRequest:
		return false
	case ldap.OpSearchRequest:
		c.handleSearch(m)
	case ldap.OpModifyRequest:
		c.handleModify(m)
	case ldap.OpAddRequest:
		c.handleAdd(m)
	case ldap.OpDelRequest:
		c.handleDelete(m)
	case ldap.OpModDNRequest:
		c.handleModDN(m)
	case ldap.OpCompareRequest:
		c.handleCompare(m)
	case ldap.OpAbandonRequest:
		// Operations run one at a time here, so there is nothing left to abandon.
	case ldap.OpExtendedRequest:
		return c.handleExtended(m)
	default:
		c.write(ldap.Envelope(0, ldap.NoticeOfDisconnection(ldap.ProtocolErrorCode, fmt.Sprintf("unknown operation %d", op))))
		return false
	}
	return true
}

// needBind refuses everything but the rootDSE to anonymous clients, as AD
// does (MS-ADTS 5.1.3: dSHeuristics fLDAPBlockAnonOps).
func (c *conn) needBind(id int64, op int) bool {
	if c.who != nil {
		return false
	}
	c.reply(id, ldap.Result(op, ldap.OperationsError, "", diagNeedBind))
	return true
}

// reply queues one response message; the request's responses go out
// together (one write per request, however many entries it returns).
func (c *conn) reply(id int64, op *ber.Packet, controls ...*ber.Packet) {
	c.pending = append(c.pending, ldap.Envelope(id, op, controls...)...)
	if len(c.pending) > 1<<16 {
		c.flush()
	}
}

// flush writes the queued responses.
func (c *conn) flush() error {
	if len(c.pending) == 0 {
		return nil
	}
	err := c.write(c.pending)
	c.pending = c.pending[:0]
	return err
}

// write sends bytes through the security layer in force.
func (c *conn) write(b []byte) error {
	if c.layer == nil {
		_, err := c.net.Write(b)
		return err
	}
	// The SASL layer is a stream of buffers: length, then a Wrap token, each no
	// larger than the peer's maximum (RFC 4422 §3.7, RFC 4752 §3.3).
	chunk := c.peerMax - 64
	if chunk < 256 {
		chunk = 256
	}
	var out []byte
	for len(b) > 0 {
		n := min(len(b), chunk)
		tok, err := c.layer.wrap(b[:n])
		if err != nil {
			return err
		}
		out = binary.BigEndian.AppendUint32(out, uint32(len(tok)))
		out = append(out, tok...)
		b = b[n:]
	}
	_, err := c.net.Write(out)
	return err
}

// saslReader unwraps the client's SASL buffers into the LDAP stream.
type saslReader struct {
	src   *bufio.Reader
	layer securityLayer
	buf   []byte
}

// maxSASLBuffer is the largest buffer the server accepts (announced in the
// security layer negotiation).
const maxSASLBuffer = 1 << 20

func (r *saslReader) Read(p []byte) (int, error) {
	for len(r.buf) == 0 {
		var hdr [4]byte
		if _, err := io.ReadFull(r.src, hdr[:]); err != nil {
			return 0, err
		}
		n := binary.BigEndian.Uint32(hdr[:])
		if n > maxSASLBuffer {
			return 0, protoErr("SASL buffer of %d bytes exceeds %d", n, maxSASLBuffer)
		}
		tok := make([]byte, n)
		if _, err := io.ReadFull(r.src, tok); err != nil {
			return 0, io.ErrUnexpectedEOF
		}
		msg, err := r.layer.unwrap(tok)
		if err != nil {
			return 0, protoErr("SASL buffer: %v", err)
		}
		r.buf = msg
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

// startLayer switches the connection to the negotiated security layer, once
// the bind's response has gone out in clear.
func (c *conn) startLayer(l securityLayer, peerMax int) {
	c.flush()
	c.layer, c.layerConf, c.peerMax = l, l.confidential(), peerMax
	c.r = bufio.NewReader(&saslReader{src: c.r, layer: l})
}

// StartTLS (RFC 4511 §4.14) and the "Who am I?" operation (RFC 4532).
const (
	oidStartTLS = "1.3.6.1.4.1.1466.20037"
	oidWhoAmI   = "1.3.6.1.4.1.4203.1.11.3"
)

func (c *conn) handleExtended(m *ldap.Message) bool {
	name := ""
	var value []byte
	for _, x := range m.Op.Children {
		switch x.Tag {
		case 0:
			name = ldap.Str(x)
		case 1:
			value = ldap.Val(x)
		}
	}
	_ = value
	resp := func(code ldap.ResultCode, diag string, respName string, value []byte) {
		p := ldap.Result(ldap.OpExtendedResponse, code, "", diag)
		if respName != "" {
			p.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 10, respName, "responseName"))
		}
		if value != nil {
			p.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 11, string(value), "responseValue"))
		}
		c.reply(m.ID, p)
	}
	switch name {
	case oidStartTLS:
		if c.tls || c.layer != nil {
			resp(ldap.OperationsError, "00000000: LdapErr: DSID-0C091139, comment: Error initializing SSL/TLS, data 0, v4563", oidStartTLS, nil)
			return true
		}
		cfg, err := c.s.tlsConfig()
		if err != nil {
			resp(ldap.Other, err.Error(), oidStartTLS, nil)
			return true
		}
		resp(ldap.Success, "", oidStartTLS, nil)
		if err := c.flush(); err != nil {
			return false
		}
		tc := tls.Server(c.raw, cfg)
		tc.SetDeadline(time.Now().Add(30 * time.Second))
		if err := tc.Handshake(); err != nil {
			return false
		}
		c.net, c.tls = tc, true
		c.r = bufio.NewReader(tc)
		return true
	case oidWhoAmI:
		authz := ""
		if c.who != nil {
			authz = "u:" + c.s.cfg.Directory.View().Lab.NetBIOS + `\` + c.who.Account
		}
		resp(ldap.Success, "", "", []byte(authz))
		return true
	}
	resp(ldap.ProtocolErrorCode, fmt.Sprintf("0000203D: LdapErr: DSID-0C0C0E4C, comment: Unknown extended request OID, data 0, v4563 (%s)", name), "", nil)
	return true
}

func (s *Server) tlsConfig() (*tls.Config, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cfg.TLS == nil {
		cert, err := selfcert.New(s.cfg.Host, s.cfg.Now())
		if err != nil {
			return nil, err
		}
		s.cfg.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	return s.cfg.TLS, nil
}

// isAdmin is AD's default for writing delegation and SPNs of other accounts:
// Domain Admins (or Enterprise Admins, Administrators).
func isAdmin(a *directory.Account) bool {
	return a.RID == 500 || a.InGroup("Domain Admins") || a.InGroup("Enterprise Admins") || a.InGroup("Administrators")
}

func (s *Server) identityOf(v *directory.View, account, mech string) (*identity, error) {
	e, ok := v.Account(account)
	if !ok {
		return nil, fmt.Errorf("no account %s", account)
	}
	return &identity{Account: e.Name, Client: e.Name + "@" + v.Lab.Realm, Mech: mech, Admin: isAdmin(e.Account)}, nil
}

func protoErr(format string, args ...any) error {
	return &ldap.ProtocolError{Reason: fmt.Sprintf(format, args...)}
}
