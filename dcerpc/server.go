package dcerpc

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/doublehop/doublehop/events"
	"github.com/doublehop/doublehop/internal/accept"
	"github.com/doublehop/doublehop/ntlm"
	"github.com/doublehop/doublehop/ntstatus"
)

// Handler serves the calls of one interface.
type Handler interface {
	// ServeRPC runs one call and returns its [out] stub, or a Fault (any
	// other error is a fault nca_s_fault_ndr when it is malformed NDR, else
	// an access-denied fault).
	ServeRPC(ctx context.Context, c *Call) ([]byte, error)
}

// HandlerFunc adapts a function.
type HandlerFunc func(ctx context.Context, c *Call) ([]byte, error)

// ServeRPC calls f.
func (f HandlerFunc) ServeRPC(ctx context.Context, c *Call) ([]byte, error) { return f(ctx, c) }

// Interface is a served RPC interface.
type Interface struct {
	Name    string   // drsuapi, epmapper: for logs and events
	Syntax  SyntaxID // its UUID and version
	Handler Handler
	// MinLevel is the lowest authentication level its calls may use
	// (LevelNone: anonymous calls are served).
	MinLevel byte
}

// Call is one request.
type Call struct {
	Interface *Interface
	Opnum     uint16
	Stub      []byte
	Auth      *Auth  // nil when unauthenticated
	Remote    string // the client's address
	Local     string // the address the client reached
	Assoc     *Association
}

// Association is an association group (C706 §12.4): the connections a
// client bound with one assoc_group_id share its context handles.
type Association struct {
	ID      uint32
	mu      sync.Mutex
	handles map[[20]byte]any
	conns   int
}

// maxHandles bounds the context handles one association holds.
const maxHandles = 1024

// NewAssociation is an association outside any connection, for driving a
// Handler directly (its tests and fuzzing).
func NewAssociation(id uint32) *Association {
	return &Association{ID: id, handles: map[[20]byte]any{}, conns: 1}
}

// NewHandle stores v under a fresh context handle (a policy_handle:
// handle_type 0 and a random UUID, MS-DTYP 2.3.7).
func (a *Association) NewHandle(v any) ([20]byte, error) {
	var h [20]byte
	rand.Read(h[4:])
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.handles) >= maxHandles {
		return h, errors.New("too many open handles")
	}
	a.handles[h] = v
	return h, nil
}

// Handle finds a context handle's value.
func (a *Association) Handle(h [20]byte) (any, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	v, ok := a.handles[h]
	return v, ok
}

// CloseHandle forgets a context handle; it reports whether it existed.
func (a *Association) CloseHandle(h [20]byte) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, ok := a.handles[h]
	delete(a.handles, h)
	return ok
}

// Config configures a server.
type Config struct {
	Interfaces []*Interface
	Security   Security
	Host       string // the server's host name, for events (dc.lab.local)
	Tier       string // the lab tier it belongs to, for events (kdc: the DC)
	Account    string // the account the server runs as, for events (DC$)
	Events     events.Sink
	Now        func() time.Time
	Logger     *slog.Logger
	MaxConns   int           // default 512
	Idle       time.Duration // default 15 minutes
}

// Server serves connection-oriented DCE/RPC on TCP (ncacn_ip_tcp).
type Server struct {
	cfg Config
	ev  events.Sink
	log *slog.Logger

	mu     sync.Mutex
	assocs map[uint32]*Association
}

// New makes a server; it holds no global state.
func New(cfg Config) *Server {
	if cfg.MaxConns == 0 {
		cfg.MaxConns = 512
	}
	if cfg.Idle == 0 {
		cfg.Idle = 15 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ev := cfg.Events
	if ev == nil {
		ev = events.Discard
	}
	return &Server{cfg: cfg, ev: events.Stamp(ev, cfg.Host, cfg.Tier, cfg.Now), log: cfg.Logger, assocs: map[uint32]*Association{}}
}

// Serve accepts connections until ctx ends.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	return accept.Loop(ctx, ln, s.cfg.MaxConns, s.log, "dcerpc", nil, func(c net.Conn) { s.serveConn(ctx, c) })
}

func (s *Server) join(id uint32) (*Association, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id != 0 {
		a, ok := s.assocs[id]
		if ok {
			a.conns++
		}
		return a, ok
	}
	for {
		var b [4]byte
		rand.Read(b[:])
		id = binary.LittleEndian.Uint32(b[:]) & 0x00ffffff
		if _, taken := s.assocs[id]; id != 0 && !taken {
			break
		}
	}
	a := NewAssociation(id)
	s.assocs[id] = a
	return a, true
}

func (s *Server) leave(a *Association) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a.conns--; a.conns <= 0 {
		delete(s.assocs, a.ID)
	}
}

// conn is one connection's state: its presentation contexts, its security
// context and the request being reassembled.
type conn struct {
	s        *Server
	raw      net.Conn
	w        *bufio.Writer
	assoc    *Association
	contexts map[uint16]*Interface
	maxXmit  int
	sec      *secContext
	port     string

	call *pendingCall
}

type pendingCall struct {
	id    uint32
	ctx   uint16
	opnum uint16
	stub  []byte
}

func (s *Server) serveConn(ctx context.Context, c net.Conn) {
	cn := &conn{s: s, raw: c, w: bufio.NewWriter(c), contexts: map[uint16]*Interface{}, maxXmit: MaxFrag}
	if _, p, err := net.SplitHostPort(c.LocalAddr().String()); err == nil {
		cn.port = p
	}
	defer func() {
		if cn.assoc != nil {
			s.leave(cn.assoc)
		}
	}()
	r := bufio.NewReader(c)
	for {
		c.SetReadDeadline(time.Now().Add(s.cfg.Idle))
		p, err := readPDU(r)
		if err != nil {
			var pe *ProtocolError
			if errors.As(err, &pe) {
				s.log.Info("dcerpc: closing", "peer", c.RemoteAddr().String(), "reason", pe.Reason)
			}
			return
		}
		more := cn.handle(ctx, p)
		// The answer goes out even when the connection then closes: a
		// refusal's bind_nak or fault is what the client reports.
		if cn.w.Flush() != nil || !more {
			return
		}
	}
}

// handle takes one PDU; false closes the connection.
func (c *conn) handle(ctx context.Context, p *pdu) bool {
	switch p.ptype {
	case ptBind:
		if c.assoc != nil {
			// A second bind on a bound connection: refused, as Windows and
			// Samba do (a client adds contexts with alter_context).
			c.nak(p.callID, false, nakReasonNotSpecified)
			return false
		}
		return c.bind(ctx, p, false)
	case ptAlterContext:
		if c.assoc == nil {
			c.fault(p.callID, 0, FaultProtoError)
			return false
		}
		return c.bind(ctx, p, true)
	case ptAuth3:
		if c.sec == nil || c.sec.done() || p.auth == nil {
			return false
		}
		if _, err := c.sec.step(ctx, p.auth.value); err != nil {
			c.logonFailed(err)
			c.sec = nil
			return true // the next request is refused with access denied
		}
		if c.sec.done() {
			c.loggedOn()
		}
		return true
	case ptRequest:
		return c.request(ctx, p)
	case ptCoCancel, ptOrphaned:
		c.call = nil
		return true
	case ptShutdown:
		return false
	}
	c.fault(p.callID, 0, FaultProtoError)
	return false
}

// bind negotiates presentation contexts and starts (or continues) the
// security context (C706 §12.6.4.3; MS-RPCE 3.3.1.5.3).
func (c *conn) bind(ctx context.Context, p *pdu, alter bool) bool {
	req, err := parseBind(p.body)
	if err != nil {
		c.nak(p.callID, alter, nakReasonNotSpecified)
		return false
	}
	if !alter {
		a, ok := c.s.join(req.assocGroup)
		if !ok {
			c.nak(p.callID, false, nakReasonNotSpecified) // MS-RPCE 3.3.1.5.3: an unknown association group
			return false
		}
		c.assoc = a
		if req.maxRecv >= 1432 && int(req.maxRecv) < c.maxXmit {
			c.maxXmit = int(req.maxRecv)
		}
	}
	ack := &bindAck{maxXmit: MaxFrag, maxRecv: MaxFrag, assocGroup: c.assoc.ID}
	if !alter {
		ack.secAddr = c.port
	}
	for _, pc := range req.contexts {
		ack.results = append(ack.results, c.negotiate(pc))
	}
	var verifier *authVerifier
	if p.auth != nil {
		if c.sec == nil {
			if p.auth.authType != AuthNTLM && p.auth.authType != AuthSPNEGO && p.auth.authType != AuthKerberos ||
				p.auth.level < LevelConnect || p.auth.level > LevelPrivacy {
				c.nak(p.callID, alter, nakAuthenticationTypeNotRec)
				return false
			}
			c.sec = &secContext{authType: p.auth.authType, level: p.auth.level, id: p.auth.contextID, sec: &c.s.cfg.Security,
				hdrSign: !alter && p.flags&pfcSupportHdrSign != 0}
		} else if p.auth.authType != c.sec.authType || p.auth.contextID != c.sec.id {
			c.fault(p.callID, 0, FaultAccessDenied) // one security context per connection here
			return false
		}
		tok, err := c.sec.step(ctx, p.auth.value)
		if err != nil {
			c.logonFailed(err)
			if alter {
				c.fault(p.callID, 0, FaultAccessDenied)
			} else {
				c.nak(p.callID, false, nakInvalidChecksum)
			}
			return false
		}
		if c.sec.done() {
			c.loggedOn()
		}
		if len(tok) > 0 {
			verifier = &authVerifier{authType: c.sec.authType, level: c.sec.level, contextID: c.sec.id, value: tok}
		}
	}
	flags := byte(pfcFirstFrag | pfcLastFrag)
	if !alter && p.flags&pfcSupportHdrSign != 0 {
		flags |= pfcSupportHdrSign
	}
	pt := byte(ptBindAck)
	if alter {
		pt = ptAlterContextRsp
	}
	body := ack.marshal()
	if verifier != nil {
		// The auth verifier starts 4-aligned after the body (C706 §12.6.3.1).
		for (headerLen+len(body))%4 != 0 {
			body = append(body, 0)
		}
	}
	c.w.Write(marshal(pt, flags, p.callID, body, verifier))
	return true
}

// negotiate accepts a presentation context for a served interface and NDR
// 2.0, answers bind-time feature negotiation, and refuses the rest.
func (c *conn) negotiate(pc proposedContext) contextResult {
	if bits, ok := isBTFN(pc.transfer[0]); ok {
		// MS-RPCE 3.3.1.5.3: security context multiplexing (1) and keep
		// connection on orphan (2), both as Windows answers.
		return contextResult{result: resultNegotiateAck, reason: bits & 0x3}
	}
	var iface *Interface
	for _, i := range c.s.cfg.Interfaces {
		if i.Syntax.UUID == pc.abstract.UUID && i.Syntax.Major == pc.abstract.Major && pc.abstract.Minor <= i.Syntax.Minor {
			iface = i
		}
	}
	if iface == nil {
		return contextResult{result: resultProviderRejec, reason: reasonAbstractNotSupported}
	}
	for _, ts := range pc.transfer {
		if ts == NDR20 {
			c.contexts[pc.id] = iface
			return contextResult{result: resultAcceptance, transfer: NDR20}
		}
	}
	return contextResult{result: resultProviderRejec, reason: reasonTransferNotSupported}
}

func (c *conn) nak(callID uint32, alter bool, reason uint16) {
	if alter {
		c.fault(callID, 0, FaultAccessDenied)
		return
	}
	c.w.Write(marshal(ptBindNak, pfcFirstFrag|pfcLastFrag, callID, bindNak(reason), nil))
}

// fault answers a call with a fault PDU (C706 §12.6.4.7).
func (c *conn) fault(callID uint32, ctxID uint16, f Fault) {
	b := make([]byte, 16)
	binary.LittleEndian.PutUint16(b[4:], ctxID)
	binary.LittleEndian.PutUint32(b[8:], uint32(f))
	c.w.Write(marshal(ptFault, pfcFirstFrag|pfcLastFrag|pfcDidNotExecute, callID, b, nil))
}

// request takes one request fragment; the call runs when the last arrives.
func (c *conn) request(ctx context.Context, p *pdu) bool {
	if c.assoc == nil || len(p.body) < 8 {
		c.fault(p.callID, 0, FaultProtoError)
		return false
	}
	ctxID := binary.LittleEndian.Uint16(p.body[4:])
	opnum := binary.LittleEndian.Uint16(p.body[6:])
	hdr := headerLen + 8
	if p.flags&pfcObjectUUID != 0 {
		hdr += 16
	}
	if hdr > headerLen+len(p.body) {
		c.fault(p.callID, ctxID, FaultProtoError)
		return false
	}
	stub, ok := c.unprotect(p, hdr)
	if !ok {
		c.fault(p.callID, ctxID, FaultAccessDenied)
		return false
	}
	if p.flags&pfcFirstFrag != 0 {
		c.call = &pendingCall{id: p.callID, ctx: ctxID, opnum: opnum}
	} else if c.call == nil || c.call.id != p.callID {
		c.fault(p.callID, ctxID, FaultProtoError)
		return false
	}
	if len(c.call.stub)+len(stub) > MaxStub {
		c.fault(p.callID, ctxID, FaultProtoError)
		return false
	}
	c.call.stub = append(c.call.stub, stub...)
	if p.flags&pfcLastFrag == 0 {
		return true
	}
	call := c.call
	c.call = nil
	return c.dispatch(ctx, call)
}

// unprotect checks the fragment's verifier at the context's level and
// returns its stub (decrypted at packet privacy).
func (c *conn) unprotect(p *pdu, hdr int) ([]byte, bool) {
	sec := c.sec
	if sec == nil || !sec.done() || sec.level < LevelPacket {
		if sec != nil && !sec.done() {
			return nil, false // a handshake was begun and not finished
		}
		if p.auth != nil && p.auth.level >= LevelPacket {
			return nil, false // protection without a security context
		}
		stub := p.raw[hdr : headerLen+len(p.body)]
		if p.auth != nil {
			stub = stub[:max(0, len(stub)-int(p.auth.padLen))]
		}
		return stub, true
	}
	if p.auth == nil || p.auth.authType != sec.authType || p.auth.level != sec.level || p.auth.contextID != sec.id ||
		!sec.sigLenOK(len(p.auth.value)) {
		return nil, false
	}
	end := headerLen + len(p.body)
	if err := sec.verify(p.raw, hdr, end, p.auth.value); err != nil {
		return nil, false
	}
	if int(p.auth.padLen) > end-hdr {
		return nil, false
	}
	return p.raw[hdr : end-int(p.auth.padLen)], true
}

func (c *conn) dispatch(ctx context.Context, call *pendingCall) bool {
	iface := c.contexts[call.ctx]
	if iface == nil {
		c.fault(call.id, call.ctx, FaultUnknownIf)
		return true
	}
	var auth *Auth
	level := byte(LevelNone)
	if c.sec != nil && c.sec.done() {
		auth, level = c.sec.auth, c.sec.level
	}
	if level < iface.MinLevel {
		c.fault(call.id, call.ctx, FaultAccessDenied)
		return true
	}
	out, err := iface.Handler.ServeRPC(ctx, &Call{Interface: iface, Opnum: call.opnum, Stub: call.stub, Auth: auth,
		Remote: c.raw.RemoteAddr().String(), Local: c.raw.LocalAddr().String(), Assoc: c.assoc})
	if err != nil {
		var f Fault
		switch {
		case errors.As(err, &f):
		default:
			f = FaultNDR
			c.s.log.Info("dcerpc: call refused", "interface", iface.Name, "opnum", call.opnum, "error", err.Error())
		}
		c.fault(call.id, call.ctx, f)
		return true
	}
	return c.respond(call, out)
}

// respond sends the [out] stub in fragments of at most the client's
// max_recv_frag, each protected at the context's level.
func (c *conn) respond(call *pendingCall, stub []byte) bool {
	sec := c.sec
	protected := sec != nil && sec.done() && sec.level >= LevelPacket
	overhead := headerLen + 8
	if protected {
		overhead += secTrailerLen + sec.sigLen()
	}
	chunk := c.maxXmit - overhead
	if protected {
		chunk &^= 15 // stub fragments padded to 16 bytes (MS-RPCE 2.2.2.11)
	}
	first := true
	for {
		n := min(chunk, len(stub))
		part := stub[:n]
		flags := byte(0)
		if first {
			flags |= pfcFirstFrag
		}
		if n == len(stub) {
			flags |= pfcLastFrag
		}
		body := make([]byte, 8, 8+n+16)
		binary.LittleEndian.PutUint32(body, uint32(len(stub))) // alloc_hint: what is left
		binary.LittleEndian.PutUint16(body[4:], call.ctx)
		body = append(body, part...)
		var v *authVerifier
		if protected {
			pad := (16 - n%16) % 16
			body = append(body, make([]byte, pad)...)
			v = &authVerifier{authType: sec.authType, level: sec.level, padLen: byte(pad), contextID: sec.id, value: make([]byte, sec.sigLen())}
		}
		pkt := marshal(ptResponse, flags, call.id, body, v)
		if protected {
			if err := sec.protect(pkt, headerLen+8, headerLen+len(body)); err != nil {
				c.s.log.Error("dcerpc: cannot protect a response", "error", err.Error())
				return false
			}
		}
		c.w.Write(pkt)
		stub, first = stub[n:], false
		if len(stub) == 0 {
			return true
		}
	}
}

// loggedOn logs the network logon (4624, logon type 3) a finished
// handshake is.
func (c *conn) loggedOn() {
	a := c.sec.auth
	c.s.ev.Emit(events.Event{ID: events.LogonSuccess, Outcome: events.Success, Client: a.User + "@" + a.Domain, Account: c.s.cfg.Account,
		Service: "RPC " + strconv.Itoa(int(c.sec.id)), LogonType: 3, Package: a.Package(), Address: c.raw.RemoteAddr().String(),
		Message: fmt.Sprintf("An account was successfully logged on (DCE/RPC, %s, %s).", AuthTypeName(c.sec.authType), LevelName(c.sec.level))})
}

// logonFailed logs 4625 with the NTSTATUS the DC gave.
func (c *conn) logonFailed(err error) {
	status, reason, client := ntstatus.LogonFailure.String(), "LOGON_FAILURE", ""
	var ne *ntlm.Error
	if errors.As(err, &ne) {
		status, reason = ne.Status.String(), ne.Reason
	}
	var ke *krbRefused
	if errors.As(err, &ke) {
		status, reason, client = ke.status, ke.reason, ke.client
	}
	pkg := "NTLM"
	if c.sec != nil && (c.sec.authType == AuthKerberos || c.sec.krb != nil) {
		pkg = "Kerberos"
	}
	c.s.ev.Emit(events.Event{ID: events.LogonFailure, Outcome: events.Failure, Client: client, Account: c.s.cfg.Account,
		LogonType: 3, Package: pkg, Status: status, Reason: reason, Address: c.raw.RemoteAddr().String(),
		Message: "An account failed to log on (DCE/RPC): " + err.Error()})
}
