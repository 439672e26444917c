package sqltier

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/doublehop/doublehop/events"
	"github.com/doublehop/doublehop/krb/ccache"
	"github.com/doublehop/doublehop/krb/gss"
	"github.com/doublehop/doublehop/krb/kcrypto"
	"github.com/doublehop/doublehop/krb/kmsg"
	"github.com/doublehop/doublehop/sqltier/tds"
)

// rawClient speaks TDS with the tds package, to send what real clients
// never send (garbage, TDS 7.1, Impacket-shaped tokens) and to read the
// replies token by token.
type rawClient struct {
	t      testing.TB
	nc     net.Conn
	r      *tds.Reader
	w      *tds.Writer
	legacy bool
}

func dialRaw(t testing.TB, addr string) *rawClient {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	nc.SetDeadline(time.Now().Add(20 * time.Second))
	t.Cleanup(func() { nc.Close() })
	return &rawClient{t: t, nc: nc, r: tds.NewReader(nc), w: tds.NewWriter(nc)}
}

// roundTrip sends one message and parses the reply's tokens.
func (c *rawClient) roundTrip(typ tds.PacketType, data []byte) ([]any, error) {
	if err := c.w.WriteMessage(typ, data); err != nil {
		return nil, err
	}
	return c.reply()
}

func (c *rawClient) reply() ([]any, error) {
	m, err := c.r.ReadMessage()
	if err != nil {
		return nil, err
	}
	if m.Type != tds.PacketReply {
		return nil, fmt.Errorf("reply of type %v", m.Type)
	}
	return tds.ParseTokens(m.Data, c.legacy)
}

func (c *rawClient) prelogin() tds.Prelogin {
	c.t.Helper()
	m := (&tds.Prelogin{HasVersion: true, Major: 1, HasEncryption: true, Encryption: tds.EncryptNotSup, HasInstance: true, HasThreadID: true, HasMARS: true}).Marshal()
	if err := c.w.WriteMessage(tds.PacketPrelogin, m); err != nil {
		c.t.Fatal(err)
	}
	rm, err := c.r.ReadMessage()
	if err != nil {
		c.t.Fatal(err)
	}
	var p tds.Prelogin
	if err := p.Unmarshal(rm.Data); err != nil {
		c.t.Fatal(err)
	}
	return p
}

// login sends LOGIN7 with token as the SSPI blob.
func (c *rawClient) login(version uint32, token []byte) []any {
	c.t.Helper()
	toks := c.login7(version, token)
	// An SSPI token (mutual authentication) comes alone; the login response follows.
	if len(toks) == 1 {
		if _, ok := toks[0].(tds.SSPIToken); ok {
			more, err := c.reply()
			if err != nil {
				c.t.Fatal(err)
			}
			toks = append(toks, more...)
		}
	}
	return toks
}

// login7 sends LOGIN7 and returns the first reply's tokens.
func (c *rawClient) login7(version uint32, token []byte) []any {
	c.t.Helper()
	c.legacy = version < 0x72000000 && version != tds.Version80
	l := tds.Login7{TDSVersion: version, PacketSize: 4096, OptionFlags1: 0xE0, OptionFlags2: 0x83, HostName: "ws01",
		AppName: "raw", ServerName: "sql.lab.local", CltIntName: "raw-tds", SSPI: token}
	toks, err := c.roundTrip(tds.PacketLogin7, l.Marshal())
	if err != nil {
		c.t.Fatal(err)
	}
	return toks
}

func (c *rawClient) batch(sql string) []any {
	c.t.Helper()
	toks, err := c.roundTrip(tds.PacketSQLBatch, (&tds.SQLBatch{SQL: sql}).Marshal(!c.legacy))
	if err != nil {
		c.t.Fatal(err)
	}
	return toks
}

func findMessages(toks []any) []tds.ServerMessage {
	var out []tds.ServerMessage
	for _, t := range toks {
		if m, ok := t.(tds.ServerMessage); ok {
			out = append(out, m)
		}
	}
	return out
}

func findRows(toks []any) []tds.Row {
	var out []tds.Row
	for _, t := range toks {
		if r, ok := t.(tds.Row); ok {
			out = append(out, r)
		}
	}
	return out
}

func hasLoginAck(toks []any) bool {
	for _, t := range toks {
		if _, ok := t.(tds.LoginAck); ok {
			return true
		}
	}
	return false
}

// token builds an initial context token for user's MSSQLSvc ticket from the
// MIT ccache. shape: "spnego", "krb5" (raw GSS), "apreq" (bare),
// "impacket" (SPNEGO with the MS-KRB5 OID and a bare AP-REQ mechToken).
func (r *testRealm) token(t testing.TB, user, shape string, now time.Time) []byte {
	t.Helper()
	cc, err := ccache.Load(r.ccache(t, user, spnPort))
	if err != nil {
		t.Fatal(err)
	}
	pn, realm := kmsg.ParsePrincipal(spnPort + "@LAB.LOCAL")
	entry, ok := cc.Find(kmsg.NewPrincipal(pn, realm))
	if !ok {
		t.Fatalf("no %s ticket in the ccache", spnPort)
	}
	cred, err := entry.Credential()
	if err != nil {
		t.Fatal(err)
	}
	switch shape {
	case "spnego", "krb5":
		tok, _, err := gss.InitiatorToken(cred, gss.InitiatorOptions{Flags: 0x30, SPNEGO: shape == "spnego", Now: now})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	auth := kmsg.NewAuthenticator(cred.Info.PName, cred.Info.PRealm, now)
	ap, err := kmsg.MarshalAPReq(cred.Ticket, cred.Info.Key, auth, kcrypto.UsageAPReqAuthenticator, nil)
	if err != nil {
		t.Fatal(err)
	}
	if shape == "impacket" {
		return gss.MarshalNegTokenInit(ap, true)
	}
	return ap
}

func TestRawTokenShapesAndTDS71(t *testing.T) {
	r := labRealm(t)
	ts := startServer(t, r.keytab, nil)
	for _, shape := range []string{"spnego", "krb5", "apreq", "impacket"} {
		for _, v := range []uint32{tds.Version74, tds.Version71} {
			c := dialRaw(t, ts.addr)
			if p := c.prelogin(); p.Encryption != tds.EncryptNotSup {
				t.Fatalf("PRELOGIN answer %v", tds.EncryptionName(p.Encryption))
			}
			toks := c.login(v, r.token(t, "bob", shape, time.Now()))
			if !hasLoginAck(toks) {
				t.Fatalf("%s/%08x: no LOGINACK: %v", shape, v, toks)
			}
			for _, tk := range toks {
				if a, ok := tk.(tds.LoginAck); ok {
					want := tds.Version74
					if v == tds.Version71 {
						want = tds.Version71A
					}
					if a.TDSVersion != want {
						t.Errorf("LOGINACK version %08x, want %08x", a.TDSVersion, want)
					}
				}
			}
			rows := findRows(c.batch("SELECT SUSER_SNAME(), gss_mech FROM lab.connection_info; SELECT auth_scheme FROM sys.dm_exec_connections"))
			if len(rows) != 2 || rows[0][0] != `LAB\bob` || rows[1][0] != "KERBEROS" {
				t.Errorf("%s/%08x: rows %v", shape, v, rows)
			}
			t.Logf("%s/%08x: gss_mech %v", shape, v, rows[0][1])
		}
	}
}

// TestRawReplayAndSkew: the same AP-REQ twice is a replay; a client clock
// ten minutes off is KRB_AP_ERR_SKEW; both reach the event with their code.
func TestRawReplayAndSkew(t *testing.T) {
	r := labRealm(t)
	ts := startServer(t, r.keytab, nil)
	tok := r.token(t, "bob", "spnego", time.Now())
	for i, want := range []string{"", "KRB_AP_ERR_REPEAT"} {
		c := dialRaw(t, ts.addr)
		c.prelogin()
		toks := c.login(tds.Version74, tok)
		if (want == "") != hasLoginAck(toks) {
			t.Fatalf("attempt %d: %v", i, toks)
		}
	}
	c := dialRaw(t, ts.addr)
	c.prelogin()
	toks := c.login(tds.Version74, r.token(t, "bob", "spnego", time.Now().Add(-10*time.Minute)))
	if ms := findMessages(toks); len(ms) != 1 || ms[0].Number != 18452 {
		t.Errorf("skew: %v", toks)
	}
	var codes []string
	for _, e := range ts.waitEvents(t, events.SQLUntrustedDomain, 2) {
		codes = append(codes, e.CodeName)
	}
	if strings.Join(codes, ",") != "KRB_AP_ERR_REPEAT,KRB_AP_ERR_SKEW" {
		t.Errorf("event codes %v", codes)
	}
}

// TestRawGarbage: garbage, truncated and oversized input closes that
// connection, without a panic, while another connection keeps working.
func TestRawGarbage(t *testing.T) {
	r := labRealm(t)
	ts := startServer(t, r.keytab, func(c *Config) { c.LoginTimeout = 500 * time.Millisecond; c.MaxMessage = 1 << 20 })
	good := dialRaw(t, ts.addr)
	good.prelogin()
	if !hasLoginAck(good.login(tds.Version74, r.token(t, "bob", "spnego", time.Now()))) {
		t.Fatal("login")
	}
	hdr := func(typ tds.PacketType, status uint8, n int) []byte {
		return tds.Header{Type: typ, Status: status, Length: uint16(n)}.Marshal(nil)
	}
	prelogin := tds.AppendPackets(nil, tds.PacketPrelogin, 0, 4096, (&tds.Prelogin{HasEncryption: true, Encryption: tds.EncryptNotSup}).Marshal())
	cases := map[string][]byte{
		"http":                 []byte("GET / HTTP/1.1\r\nHost: sql\r\n\r\n"),
		"zeros":                make([]byte, 64),
		"short header length":  hdr(tds.PacketPrelogin, 1, 4),
		"oversized packet":     append(hdr(tds.PacketPrelogin, 1, 0xFFFF), make([]byte, 100)...),
		"truncated packet":     append(hdr(tds.PacketPrelogin, 1, 1000), make([]byte, 10)...),
		"bad prelogin":         append(hdr(tds.PacketPrelogin, 1, 12), 1, 0, 50, 0, 0xFF),
		"login before prelog":  tds.AppendPackets(nil, tds.PacketLogin7, 0, 4096, (&tds.Login7{TDSVersion: tds.Version74}).Marshal()),
		"garbage login":        append(prelogin, tds.AppendPackets(nil, tds.PacketLogin7, 0, 4096, bytes.Repeat([]byte{0xFF}, 200))...),
		"login offsets":        append(prelogin, tds.AppendPackets(nil, tds.PacketLogin7, 0, 4096, badOffsets())...),
		"login too big":        append(prelogin, manyPackets(tds.PacketLogin7, 300<<10)...),
		"tls hello, no tls":    {0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5},
		"spnego garbage token": append(prelogin, tds.AppendPackets(nil, tds.PacketLogin7, 0, 4096, (&tds.Login7{TDSVersion: tds.Version74, OptionFlags2: 0x80, SSPI: []byte{0x60, 0x82, 0xFF, 0xFF, 6, 6, 0x2b, 6, 1, 5, 5, 2, 0xa0}}).Marshal())...),
		"ap-req garbage":       append(prelogin, tds.AppendPackets(nil, tds.PacketLogin7, 0, 4096, (&tds.Login7{TDSVersion: tds.Version74, OptionFlags2: 0x80, SSPI: bytes.Repeat([]byte{0x6e}, 300)}).Marshal())...),
		"silent client":        nil,
	}
	var wg sync.WaitGroup
	for name, in := range cases {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nc, err := net.Dial("tcp", ts.addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer nc.Close()
			nc.SetDeadline(time.Now().Add(10 * time.Second))
			nc.Write(in)
			// The server answers what it can (a PRELOGIN reply, an 18452)
			// and then closes: reading ends with EOF, not a timeout.
			_, err = io.Copy(io.Discard, nc)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Errorf("%s: connection not closed by the server", name)
			}
		}()
	}
	wg.Wait()
	// The good connection is unaffected.
	if rows := findRows(good.batch("SELECT SUSER_SNAME()")); len(rows) != 1 || rows[0][0] != `LAB\bob` {
		t.Errorf("good connection: %v", rows)
	}
	for _, e := range ts.events.Events() {
		if e.ID == 17310 {
			t.Errorf("panic event: %s", e.Message)
		}
	}
	// Garbage after login closes only that connection too.
	c := dialRaw(t, ts.addr)
	c.prelogin()
	c.login(tds.Version74, r.token(t, "bob", "krb5", time.Now()))
	c.nc.Write(append(hdr(tds.PacketSQLBatch, 1, 9), 0xFF))
	if _, err := io.Copy(io.Discard, c.nc); err != nil {
		t.Errorf("after garbage batch: %v", err)
	}
	for _, typ := range []tds.PacketType{tds.PacketRPC, tds.PacketLogin7, 0x55} {
		c := dialRaw(t, ts.addr)
		c.prelogin()
		c.login(tds.Version74, r.token(t, "bob", "krb5", time.Now()))
		c.nc.Write(tds.AppendPackets(nil, typ, 0, 512, []byte{1, 2, 3}))
		if _, err := io.Copy(io.Discard, c.nc); err != nil {
			t.Errorf("after %v: %v", typ, err)
		}
	}
	if rows := findRows(good.batch("SELECT 1")); len(rows) != 1 {
		t.Errorf("good connection after all: %v", rows)
	}
}

func badOffsets() []byte {
	b := (&tds.Login7{TDSVersion: tds.Version74, HostName: "ws01", OptionFlags2: 0x80, SSPI: []byte{1, 2, 3}}).Marshal()
	b[78], b[79] = 0xF0, 0xFF // ibSSPI far outside the message
	return b
}

func manyPackets(typ tds.PacketType, total int) []byte {
	var out []byte
	chunk := make([]byte, 4000)
	for n := 0; n < total; n += len(chunk) {
		out = append(out, tds.Header{Type: typ, Length: uint16(tds.HeaderSize + len(chunk))}.Marshal(nil)...)
		out = append(out, chunk...)
	}
	return out
}

func TestIdleAndShutdown(t *testing.T) {
	r := labRealm(t)
	ts := startServer(t, r.keytab, func(c *Config) { c.IdleTimeout = 300 * time.Millisecond; c.LoginTimeout = 300 * time.Millisecond })
	// Silent before login: closed by the login timeout.
	nc, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	if _, err := io.Copy(io.Discard, nc); err != nil || time.Since(start) > 3*time.Second {
		t.Errorf("silent client: %v after %v", err, time.Since(start))
	}
	nc.Close()
	// Idle after login: closed by the idle timeout.
	c := dialRaw(t, ts.addr)
	c.prelogin()
	c.login(tds.Version74, r.token(t, "bob", "spnego", time.Now()))
	time.Sleep(600 * time.Millisecond)
	if _, err := c.roundTrip(tds.PacketSQLBatch, (&tds.SQLBatch{SQL: "SELECT 1"}).Marshal(true)); err == nil {
		t.Error("idle connection still open")
	}

	// Cancelling Serve's context closes live connections and returns.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	s := New(Config{Keytab: r.keytab})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	c2 := dialRaw(t, ln.Addr().String())
	c2.prelogin()
	c2.login(tds.Version74, r.token(t, "bob", "spnego", time.Now()))
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
	if _, err := io.Copy(io.Discard, c2.nc); err != nil {
		t.Errorf("connection after shutdown: %v", err)
	}
	if s.ActiveConnections() != 0 {
		t.Errorf("%d connections left", s.ActiveConnections())
	}
}

func TestRawAttentionAndBatches(t *testing.T) {
	r := labRealm(t)
	ts := startServer(t, r.keytab, nil)
	c := dialRaw(t, ts.addr)
	c.prelogin()
	c.login(tds.Version74, r.token(t, "bob", "spnego", time.Now()))
	// Several statements, one response; DONE MORE on all but the last.
	toks := c.batch("SET NOCOUNT ON; SELECT 1 AS a SELECT 'x' b\nUSE master SELECT DB_NAME() USE labdb")
	var dones []tds.Done
	for _, tk := range toks {
		if d, ok := tk.(tds.Done); ok {
			dones = append(dones, d)
		}
	}
	if len(dones) != 6 || dones[5].Status&tds.DoneMore != 0 || dones[4].Status&tds.DoneMore == 0 {
		t.Errorf("dones %+v", dones)
	}
	if rows := findRows(toks); len(rows) != 3 || rows[2][0] != "master" {
		t.Errorf("rows %v", rows)
	}
	// ATTENTION during WAITFOR: DONE with DONE_ATTN, then the connection goes on.
	if err := c.w.WriteMessage(tds.PacketSQLBatch, (&tds.SQLBatch{SQL: "SELECT 1; WAITFOR DELAY '00:00:30'; SELECT 2"}).Marshal(true)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	if err := c.w.WriteMessage(tds.PacketAttention, nil); err != nil {
		t.Fatal(err)
	}
	toks, err := c.reply()
	if err != nil {
		t.Fatal(err)
	}
	last, _ := toks[len(toks)-1].(tds.Done)
	if last.Status&tds.DoneAttn == 0 || time.Since(start) > 5*time.Second || len(findRows(toks)) != 1 {
		t.Errorf("attention reply %v", toks)
	}
	// ATTENTION with nothing running: acknowledged at once.
	toks, err = c.roundTrip(tds.PacketAttention, nil)
	if err != nil || len(toks) != 1 || toks[0].(tds.Done).Status != tds.DoneAttn {
		t.Errorf("idle attention: %v %v", toks, err)
	}
	if rows := findRows(c.batch("WAITFOR DELAY '00:00:00.050'; SELECT 3")); len(rows) != 1 || rows[0][0] != int64(3) {
		t.Errorf("after waitfor: %v", rows)
	}
	// RESETCONNECTION: ENVCHANGE 18 first, the database back to the login's.
	c.batch("USE master")
	raw := tds.AppendPackets(nil, tds.PacketSQLBatch, 0, 4096, (&tds.SQLBatch{SQL: "SELECT DB_NAME()"}).Marshal(true))
	raw[1] |= tds.StatusResetConnection
	c.nc.Write(raw)
	toks, err = c.reply()
	if err != nil {
		t.Fatal(err)
	}
	if e, ok := toks[0].(tds.EnvChange); !ok || e.Type != tds.EnvResetConnection {
		t.Errorf("reset reply %v", toks)
	}
	if rows := findRows(toks); len(rows) != 1 || rows[0][0] != "labdb" {
		t.Errorf("reset rows %v", rows)
	}
}
