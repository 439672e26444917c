package sqltier

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/doublehop/doublehop/events"
	"github.com/doublehop/doublehop/sqltier/tds"
	"github.com/doublehop/doublehop/sqltier/tsql"
)

// loginMaxMessage bounds PRELOGIN and LOGIN7 (an SSPI blob is at most
// krb.MaxToken): an unauthenticated peer cannot make the server buffer more.
const loginMaxMessage = 256 << 10

// errClose ends a connection after the server has answered (a login
// failure, a client that cannot encrypt): nothing to report.
var errClose = errors.New("sqltier: connection closed by the server")

// conn is one client connection: a state machine with one method per step,
// prelogin → [TLS] → login → requests (MS-TDS 3.3.5: Initial, Sent Initial
// PRELOGIN Packet, Sent TLS/SSL Negotiation Packet, Sent LOGIN7 Record,
// Logged In, Client Request Execution).
type conn struct {
	srv  *Server
	nc   net.Conn // the socket
	tr   net.Conn // the transport requests travel on: nc or a tls.Conn
	spid uint16
	r    *tds.Reader
	w    *tds.Writer
	tok  tds.Tokens

	addr      string // client IP
	port      int
	localAddr string
	localPort int
	start     time.Time

	// negotiated
	clientEncrypt uint8 // the client's PRELOGIN ENCRYPTION
	encrypt       uint8 // the server's answer
	strict        bool  // TDS 8.0: TLS before PRELOGIN
	loginTLS      *tls.Conn
	tlsVersion    uint16
	clientTDS     uint32 // LOGIN7 TDSVersion
	tdsVersion    uint32 // LOGINACK TDSVersion
	packetSize    int
	lastRequest   time.Time

	sess    *session
	pending chan readResult // a read started while a statement was running
	tabs    []*tsql.Table   // the lab objects bound to this connection (tables)
}

type readResult struct {
	msg *tds.Message
	err error
}

func newConn(s *Server, nc net.Conn, spid uint16) *conn {
	c := &conn{srv: s, nc: nc, tr: nc, spid: spid, start: s.cfg.Now()}
	c.r = tds.NewReader(nc)
	c.r.MaxMessage = loginMaxMessage
	c.w = tds.NewWriter(nc)
	c.w.SPID = spid
	if ta, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
		c.addr, c.port = ta.IP.String(), ta.Port
	} else if nc.RemoteAddr() != nil {
		c.addr = nc.RemoteAddr().String()
	}
	if ta, ok := nc.LocalAddr().(*net.TCPAddr); ok {
		c.localAddr, c.localPort = ta.IP.String(), ta.Port
	}
	return c
}

// serve runs the connection to its end. A panic anywhere below is recovered
// here, logged, and reported as SQL Server's error 17310 event; the other
// connections are not affected.
func (c *conn) serve(ctx context.Context) {
	defer c.nc.Close()
	defer func() {
		if p := recover(); p != nil {
			c.srv.log.Error("panic in SQL connection", "spid", c.spid, "client", c.addr, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			c.srv.events.Emit(events.Event{
				ID: 17310, Outcome: events.Failure, Address: c.addr,
				Message: fmt.Sprintf("A user request from the session with SPID %d generated a fatal exception. SQL Server is terminating this session. [CLIENT: %s] (panic: %v)", c.spid, c.addr, p),
				Login:   c.loginName(),
			})
		}
	}()
	err := c.run(ctx)
	switch {
	case err == nil, errors.Is(err, errClose), errors.Is(err, io.EOF), ctx.Err() != nil:
		c.srv.log.Debug("connection closed", "spid", c.spid, "client", c.addr)
	default:
		c.srv.log.Info("connection dropped", "spid", c.spid, "client", c.addr, "err", err.Error())
	}
}

func (c *conn) loginName() string {
	if c.sess == nil {
		return ""
	}
	return c.sess.login
}

func (c *conn) run(ctx context.Context) error {
	// One deadline covers the whole login sequence: a silent or slow client
	// cannot hold the goroutine (MS-TDS 3.3.2.1 login timer).
	c.nc.SetDeadline(c.start.Add(c.srv.cfg.LoginTimeout))
	if err := c.prelogin(); err != nil {
		return err
	}
	if err := c.login(); err != nil {
		return err
	}
	c.nc.SetDeadline(time.Time{})
	c.r.MaxMessage = c.srv.cfg.MaxMessage
	// From now on packets must respect the negotiated size (MS-TDS 2.2.3.1.3).
	c.r.MaxPacket = c.packetSize
	return c.requests(ctx)
}

// prelogin reads the client's PRELOGIN and answers it (MS-TDS 2.2.6.5,
// 3.3.5.1). A TLS ClientHello instead of a PRELOGIN is a TDS 8.0 client
// (encrypt=strict): TLS first, then PRELOGIN inside it.
func (c *conn) prelogin() error {
	var first [1]byte
	if _, err := io.ReadFull(c.nc, first[:]); err != nil {
		return err
	}
	pc := &prefixConn{Conn: c.nc, prefix: []byte{first[0]}}
	c.setTransport(pc)
	if first[0] == 0x16 { // TLS handshake record
		if c.srv.tlsStrict == nil {
			return errors.New("TLS ClientHello (TDS 8.0 strict) but encryption is not supported")
		}
		tc := tls.Server(pc, c.srv.tlsStrict)
		if err := tc.Handshake(); err != nil {
			return fmt.Errorf("TDS 8.0 TLS handshake: %w", err)
		}
		c.strict = true
		c.tlsVersion = tc.ConnectionState().Version
		c.setTransport(tc)
	} else if c.srv.cfg.Encryption == EncryptionStrict {
		return errors.New("strict encryption is required but the client sent a clear-text PRELOGIN")
	}
	m, err := c.r.ReadMessage()
	if err != nil {
		return err
	}
	if m.Type != tds.PacketPrelogin {
		return fmt.Errorf("%w: %v before PRELOGIN", tds.ErrUnexpectedType, m.Type)
	}
	var p tds.Prelogin
	if err := p.Unmarshal(m.Data); err != nil {
		return err
	}
	c.clientEncrypt = tds.EncryptOff // a missing option means ENCRYPT_OFF
	if p.HasEncryption {
		c.clientEncrypt = p.Encryption &^ 0x80 // ENCRYPT_CLIENT_CERT bit
	}
	answer, tlsMode, refuse := c.negotiateEncryption()
	c.encrypt = answer
	resp := tds.Prelogin{
		HasVersion: true, Major: prodMajor, Minor: prodMinor, Build: prodBuild,
		HasEncryption: true, Encryption: answer,
		HasInstance: true, // a single 0x00: the instance name matched (default instance)
		HasMARS:     true, // 0: no MARS; the client falls back to one request at a time
	}
	if err := c.send(tds.PacketReply, resp.Marshal()); err != nil {
		return err
	}
	if refuse {
		c.srv.log.Info("client cannot encrypt but encryption is forced", "client", c.addr, "client_encryption", tds.EncryptionName(c.clientEncrypt))
		return errClose
	}
	switch tlsMode {
	case tlsFull, tlsLoginOnly:
		return c.startTLS(tlsMode == tlsLoginOnly)
	}
	return nil
}

type tlsMode int

const (
	tlsNone tlsMode = iota
	tlsLoginOnly
	tlsFull
)

// negotiateEncryption applies the ENCRYPTION table of MS-TDS 2.2.6.5 to the
// server setting and the client's value.
func (c *conn) negotiateEncryption() (answer uint8, mode tlsMode, refuse bool) {
	if c.strict {
		// The transport is already TLS; no TLS-in-TDS follows. go-mssqldb
		// ignores this answer but needs the option present.
		return tds.EncryptNotSup, tlsNone, false
	}
	cl := c.clientEncrypt
	switch c.srv.cfg.Encryption {
	case EncryptionOff:
		switch cl {
		case tds.EncryptOff:
			return tds.EncryptOff, tlsLoginOnly, false
		case tds.EncryptOn, tds.EncryptReq:
			return tds.EncryptOn, tlsFull, false
		}
		return tds.EncryptNotSup, tlsNone, false
	case EncryptionOn:
		switch cl {
		case tds.EncryptOn:
			return tds.EncryptOn, tlsFull, false
		case tds.EncryptOff, tds.EncryptReq:
			return tds.EncryptReq, tlsFull, false
		}
		return tds.EncryptReq, tlsNone, true
	}
	return tds.EncryptNotSup, tlsNone, false
}

// startTLS runs the TLS handshake inside PRELOGIN packets (MS-TDS 3.3.5.2).
// Full encryption moves every later byte into TLS; login-only encryption
// reads just the first LOGIN7 packet through it (see login).
func (c *conn) startTLS(loginOnly bool) error {
	pt := &prelogTLS{Conn: c.nc, r: c.r, spid: c.spid, handshake: true}
	var under net.Conn = pt
	if loginOnly {
		under = &recordConn{Conn: pt, rr: &recordReader{r: pt}}
	}
	tc := tls.Server(under, c.srv.tlsTDS)
	if err := tc.Handshake(); err != nil {
		return fmt.Errorf("TLS handshake in PRELOGIN: %w", err)
	}
	if err := pt.finish(); err != nil {
		return err
	}
	c.tlsVersion = tc.ConnectionState().Version
	if loginOnly {
		c.loginTLS = tc
		c.setTransport(c.nc)
		return nil
	}
	c.setTransport(tc)
	return nil
}

func (c *conn) setTransport(t net.Conn) {
	c.tr = t
	c.r.SetTransport(t)
	c.w.SetTransport(t)
}

// login reads LOGIN7, authenticates and answers (MS-TDS 2.2.6.4, 3.3.5.3).
func (c *conn) login() error {
	var m *tds.Message
	var err error
	if c.loginTLS != nil {
		// Login-only encryption: the first packet inside TLS, the rest in clear.
		c.r.SetTransport(c.loginTLS)
		m, err = c.r.ReadFirstPacket()
		c.r.SetTransport(c.nc)
		if err == nil {
			err = c.r.Continue(m)
		}
	} else {
		m, err = c.r.ReadMessage()
	}
	if err != nil {
		return err
	}
	if m.Type != tds.PacketLogin7 {
		return fmt.Errorf("%w: %v instead of LOGIN7", tds.ErrUnexpectedType, m.Type)
	}
	var l tds.Login7
	if err := l.Unmarshal(m.Data); err != nil {
		return err
	}
	c.clientTDS = l.TDSVersion
	c.tdsVersion, c.tok.Legacy = answerVersion(l.TDSVersion)
	c.packetSize = int(l.PacketSize)
	if c.packetSize == 0 {
		c.packetSize = tds.DefaultPacketSize
	}
	c.packetSize = min(max(c.packetSize, tds.MinPacketSize), tds.MaxPacketSize)
	c.w.PacketSize = c.packetSize

	sess, fail := c.authenticate(&l)
	if fail != nil {
		c.tok.Reset()
		for _, msg := range fail.client {
			c.tok.Message(msg)
		}
		c.tok.Done(tds.Done{Status: tds.DoneError})
		// The events first: they are in the log by the time the client sees the error.
		for _, e := range fail.before {
			c.srv.events.Emit(e)
		}
		c.srv.events.Emit(fail.event)
		c.sendTokens()
		c.srv.log.Info("login failed", "spid", c.spid, "client", c.addr, "number", fail.event.Code, "state", fail.event.State, "login", fail.event.Login, "reason", fail.event.Reason)
		return errClose
	}
	c.sess = sess
	// Mutual authentication: the AP-REP goes alone in its own message, then
	// the login response follows without waiting for the client (notes §4.4).
	// go-mssqldb never asks for it (and cannot verify an AP-REP).
	if len(sess.reply) > 0 {
		c.tok.Reset()
		c.tok.SSPI(sess.reply)
		if err := c.sendTokens(); err != nil {
			return err
		}
	}
	c.tok.Reset()
	c.loginResponse(&l)
	c.srv.events.Emit(c.successEvent())
	if err := c.sendTokens(); err != nil {
		return err
	}
	c.srv.log.Info("login succeeded", "spid", c.spid, "client", c.addr, "login", sess.login, "principal", sess.principal,
		"auth_scheme", sess.authScheme, "encryption", c.encryptOption(), "tds", fmt.Sprintf("%08x", c.clientTDS), "app", l.AppName, "library", l.CltIntName)
	c.lastRequest = c.srv.cfg.Now()
	return nil
}

// answerVersion picks the LOGINACK TDS version for a client's LOGIN7
// version and whether the TDS 7.0/7.1 token widths apply (notes §4.8).
func answerVersion(v uint32) (uint32, bool) {
	switch {
	case v == tds.Version80 || v >= tds.Version74:
		return tds.Version74, false
	case v >= tds.Version73B:
		return tds.Version73B, false
	case v >= tds.Version73A:
		return tds.Version73A, false
	case v >= 0x72000000:
		return tds.Version72, false
	}
	return tds.Version71A, true
}

// loginResponse writes the successful login token stream in SQL Server's
// order (notes §4.5): database, collation, language, LOGINACK, packet size, DONE.
func (c *conn) loginResponse(l *tds.Login7) {
	db := c.sess.database
	c.tok.EnvChange(tds.EnvChange{Type: tds.EnvDatabase, New: db, Old: "master"})
	c.info(5701, 2, fmt.Sprintf("Changed database context to '%s'.", db))
	c.tok.EnvChange(tds.EnvChange{Type: tds.EnvSQLCollation, NewBytes: tds.DefaultCollation[:]})
	c.tok.EnvChange(tds.EnvChange{Type: tds.EnvLanguage, New: "us_english"})
	c.info(5703, 1, "Changed language setting to us_english.")
	c.tok.LoginAck(tds.LoginAck{Interface: 1, TDSVersion: c.tdsVersion, ProgName: "Microsoft SQL Server",
		Major: prodMajor, Minor: prodMinor, BuildHi: prodBuild >> 8, BuildLow: prodBuild & 0xFF})
	req := strconv.Itoa(int(l.PacketSize))
	if l.PacketSize == 0 {
		req = strconv.Itoa(tds.DefaultPacketSize)
	}
	c.tok.EnvChange(tds.EnvChange{Type: tds.EnvPacketSize, New: strconv.Itoa(c.packetSize), Old: req})
	c.tok.Done(tds.Done{})
}

func (c *conn) info(number int32, state uint8, text string) {
	c.tok.Message(tds.ServerMessage{Number: number, State: state, Class: 0, Text: text, Server: c.srv.cfg.ServerName, Line: 1})
}

func (c *conn) errorMsg(number int32, state, class uint8, text string) tds.ServerMessage {
	return tds.ServerMessage{Error: true, Number: number, State: state, Class: class, Text: text, Server: c.srv.cfg.ServerName, Line: 1}
}

// send frames one message with a write deadline.
func (c *conn) send(t tds.PacketType, data []byte) error {
	c.nc.SetWriteDeadline(c.srv.cfg.Now().Add(30 * time.Second))
	return c.w.WriteMessage(t, data)
}

func (c *conn) sendTokens() error { return c.send(tds.PacketReply, c.tok.B) }

// encryptOption is sys.dm_exec_connections.encrypt_option, with the lab's
// finer distinction for login-only and TDS 8.0.
func (c *conn) encryptOption() string {
	switch {
	case c.strict:
		return "STRICT"
	case c.loginTLS != nil:
		return "LOGIN_ONLY"
	case c.tlsVersion != 0:
		return "TRUE"
	}
	return "FALSE"
}

// requests serves SQLBatch, RPC, TransMgr and ATTENTION messages until the
// client leaves (MS-TDS 3.3.5.4 Logged In). Every read has an idle deadline.
func (c *conn) requests(ctx context.Context) error {
	for {
		m, err := c.next(c.srv.cfg.IdleTimeout)
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
		c.lastRequest = c.srv.cfg.Now()
		c.tok.Reset()
		if m.Type != tds.PacketAttention && m.ResetConnection() {
			c.resetSession()
		}
		switch m.Type {
		case tds.PacketSQLBatch:
			err = c.sqlBatch(m)
		case tds.PacketRPC:
			err = c.rpc(m)
		case tds.PacketTransMgr:
			err = c.transMgr(m)
		case tds.PacketAttention:
			// The request already finished: acknowledge (MS-TDS 2.2.1.7).
			c.tok.Done(tds.Done{Status: tds.DoneAttn})
			err = c.sendTokens()
		default:
			return fmt.Errorf("%w: %v after login", tds.ErrUnexpectedType, m.Type)
		}
		if err != nil {
			return err
		}
	}
}

// next returns the next request, from a read started while a statement was
// running, or from the socket with an idle deadline.
func (c *conn) next(idle time.Duration) (*tds.Message, error) {
	if c.pending != nil {
		res := <-c.pending
		c.pending = nil
		return res.msg, res.err
	}
	c.nc.SetReadDeadline(c.srv.cfg.Now().Add(idle))
	return c.r.ReadMessage()
}

// startRead reads the next message in the background (to see an ATTENTION
// while a statement runs). The message data is copied: the reader's buffer
// is reused.
func (c *conn) startRead(deadline time.Time) chan readResult {
	ch := make(chan readResult, 1)
	c.nc.SetReadDeadline(deadline)
	go func() {
		m, err := c.r.ReadMessage()
		if err == nil {
			cp := *m
			cp.Data = append([]byte(nil), m.Data...)
			m = &cp
		}
		ch <- readResult{m, err}
	}()
	return ch
}

// resetSession is sp_reset_connection: back to the login's database (MS-TDS
// 2.2.3.1.2 RESETCONNECTION), acknowledged with ENVCHANGE 18.
func (c *conn) resetSession() {
	c.tok.EnvChange(tds.EnvChange{Type: tds.EnvResetConnection})
	if c.sess.database != c.sess.defaultDB {
		old := c.sess.database
		c.sess.database = c.sess.defaultDB
		c.tok.EnvChange(tds.EnvChange{Type: tds.EnvDatabase, New: c.sess.database, Old: old})
	}
	c.sess.tranID = 0
}
