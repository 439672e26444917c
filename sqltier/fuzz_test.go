package sqltier

import (
	"bytes"
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/doublehop/doublehop/krb/gss"
	"github.com/doublehop/doublehop/ntlm"
	"github.com/doublehop/doublehop/sqltier/tds"
)

// fakeConn is a net.Conn over a byte stream (the fuzzers' client).
type fakeConn struct {
	io.Reader
	io.Writer
}

func (fakeConn) Close() error                     { return nil }
func (fakeConn) LocalAddr() net.Addr              { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1433} }
func (fakeConn) RemoteAddr() net.Addr             { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 50000} }
func (fakeConn) SetDeadline(time.Time) error      { return nil }
func (fakeConn) SetReadDeadline(time.Time) error  { return nil }
func (fakeConn) SetWriteDeadline(time.Time) error { return nil }

// loggedIn is a connection past login (as LAB\bob, no Kerberos context),
// reading requests from in.
func loggedIn(s *Server, in []byte, out io.Writer) *conn {
	c := newConn(s, fakeConn{bytes.NewReader(in), out}, 51)
	c.sess = &session{login: `LAB\bob`, authScheme: schemeKerberos, database: "labdb", defaultDB: "labdb", app: "fuzz"}
	c.tdsVersion, c.clientTDS, c.packetSize = tds.Version74, tds.Version74, 4096
	c.r.MaxMessage = 1 << 20
	return c
}

// FuzzSQL runs arbitrary SQL through the parser and the executor; every
// response must be a well-formed token stream ending in a final DONE.
func FuzzSQL(f *testing.F) {
	for _, s := range []string{
		"SELECT SUSER_SNAME()", "SELECT auth_scheme FROM sys.dm_exec_connections WHERE session_id = @@SPID",
		"SELECT * FROM lab.connection_info", "SELECT TOP (2) id, amount AS a FROM labdb.dbo.orders o WHERE o.id >= 2 AND customer = N'LAB\\bob' ORDER BY a DESC",
		"SELECT COUNT(*), COUNT(id) FROM dbo.orders WHERE item IS NOT NULL", "SET NOCOUNT ON; USE master; SELECT DB_NAME()",
		"SELECT @p1, @@VERSION, -1.50, NULL", "INSERT INTO dbo.orders VALUES (1)", "EXEC sp_who", "WAITFOR DELAY '00:00:00.001'",
		"SELECT 'a''b' /* c /* nested */ */ -- x\n", "SELECT [a]]b] = 1 FROM [dbo].[orders] ORDER BY 1",
	} {
		f.Add(s)
	}
	s := New(Config{})
	f.Fuzz(func(t *testing.T, sql string) {
		c := loggedIn(s, nil, io.Discard)
		params := map[string]tds.Param{"@p1": {Name: "@p1", Type: tds.IntN(8), Value: int64(2)}}
		for _, rpc := range []bool{false, true} {
			c.tok.Reset()
			o := c.newOutput(rpc)
			err := c.runSQL(o, sql, params)
			o.finish(err == errAttention)
			toks, perr := tds.ParseTokens(c.tok.B, false)
			if perr != nil {
				t.Fatalf("%q (rpc=%v): response does not parse: %v", sql, rpc, perr)
			}
			last, ok := toks[len(toks)-1].(tds.Done)
			if !ok || last.Status&tds.DoneMore != 0 {
				t.Fatalf("%q: last token %#v", sql, toks[len(toks)-1])
			}
		}
	})
}

// FuzzRequests feeds arbitrary bytes to a logged-in connection: it must end
// (EOF or a protocol error) without a panic, and every reply it wrote before
// must be a well-formed token stream that ends in a final DONE.
func FuzzRequests(f *testing.F) {
	batch := tds.AppendPackets(nil, tds.PacketSQLBatch, 0, 4096, (&tds.SQLBatch{SQL: "SELECT * FROM dbo.orders"}).Marshal(true))
	rpc, _ := (&tds.RPCRequest{Calls: []tds.RPCCall{{ProcID: tds.ProcExecuteSQL, Params: []tds.Param{
		{Type: tds.NVarChar(40), Value: "SELECT @p1"}, {Type: tds.NVarChar(40), Value: "@p1 int"}, {Name: "@p1", Type: tds.IntN(4), Value: int64(7)}}}}}).Marshal(true)
	f.Add(append(batch, tds.AppendPackets(nil, tds.PacketRPC, 0, 4096, rpc)...))
	f.Add(tds.AppendPackets(nil, tds.PacketAttention, 0, 512, nil))
	f.Add(tds.AppendPackets(nil, tds.PacketTransMgr, 0, 512, append(tds.AllHeaders{}.Marshal(nil), 5, 0, 0, 0)))
	s := New(Config{})
	f.Fuzz(func(t *testing.T, in []byte) {
		var out bytes.Buffer
		c := loggedIn(s, in, &out)
		c.requests(context.Background())
		r := tds.NewReader(&out)
		r.MaxMessage = 1 << 22
		for {
			m, err := r.ReadMessage()
			if err == io.EOF {
				return
			}
			if err != nil {
				t.Fatalf("a reply that does not frame: %v", err)
			}
			toks, err := tds.ParseTokens(m.Data, false)
			if err != nil || len(toks) == 0 {
				t.Fatalf("a reply that does not parse: %v %x", err, m.Data)
			}
			if last, ok := toks[len(toks)-1].(tds.Done); !ok || last.Status&tds.DoneMore != 0 {
				t.Fatalf("a reply that does not end in a final DONE: %#v", toks[len(toks)-1])
			}
		}
	})
}

type panicReader struct{}

func (panicReader) Read([]byte) (int, error) { panic("boom") }

// TestPanicRecovered: a panic while serving one connection is recovered at
// the connection boundary and reported as SQL Server's 17310 event.
func TestPanicRecovered(t *testing.T) {
	mem := eventsMemory()
	s := New(Config{Events: mem})
	c := newConn(s, fakeConn{panicReader{}, io.Discard}, 77)
	c.serve(context.Background())
	evs := mem.Events()
	if len(evs) != 1 || evs[0].ID != 17310 || evs[0].Tier != "sql" || evs[0].Host != "sql.lab.local" {
		t.Errorf("events %+v", evs)
	}
}

// FuzzNTLMLogin starts an NTLM login (LOGIN7 with a NEGOTIATE, bare or in
// SPNEGO) and then sends arbitrary bytes as the client's next messages: the
// server answers with an SSPI token and then a login failure or closes the
// connection, never a panic, and never logs anyone in without the DC's
// consent.
func FuzzNTLMLogin(f *testing.F) {
	neg := ntlm.NewClientContext(ntlm.ClientConfig{User: "bob", Domain: "LAB", NTHash: ntlm.NTHash("x")}).Negotiate()
	spnego, _ := gss.MarshalNegTokenInitMechs([]gss.Mech{gss.MechNTLM}, neg)
	anon := ntlm.NewClientContext(ntlm.ClientConfig{Anonymous: true})
	anon.Negotiate()
	f.Add(false, tds.AppendPackets(nil, tds.PacketSSPI, 0, 4096, (&ntlm.Authenticate{Flags: ntlm.FlagUnicode | ntlm.FlagAnonymous, LmChallengeResponse: []byte{0}}).Marshal()))
	f.Add(true, tds.AppendPackets(nil, tds.PacketSSPI, 0, 4096, gss.MarshalNegTokenRespMIC(gss.NegAcceptIncomplete, gss.MechUnknown, []byte("NTLMSSP\x00\x03"), []byte{1})))
	f.Add(false, []byte{0x11, 1, 0, 8, 0, 0, 1, 0})
	s := New(Config{Validator: ntlm.LocalAccounts{Domain: "LAB", Hashes: map[string][]byte{"bob": ntlm.NTHash("Bob-Passw0rd!")}}})
	f.Fuzz(func(t *testing.T, inSPNEGO bool, rest []byte) {
		first := neg
		if inSPNEGO {
			first = spnego
		}
		l := tds.Login7{TDSVersion: tds.Version74, PacketSize: 4096, OptionFlags2: tds.Flag2IntegratedSecurity, HostName: "ws01", SSPI: first}
		in := append(tds.AppendPackets(nil, tds.PacketLogin7, 0, 4096, l.Marshal()), rest...)
		var out bytes.Buffer
		c := newConn(s, fakeConn{bytes.NewReader(in), &out}, 52)
		c.r.MaxMessage = loginMaxMessage
		c.login()
		if c.sess != nil {
			t.Fatalf("a session (%s) from a fuzzed AUTHENTICATE", c.sess.login)
		}
	})
}
