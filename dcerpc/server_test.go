package dcerpc

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"testing"
	"time"
)

// A server with one echo interface (opnum 0 returns its stub, opnum 1 is a
// handler fault), driven PDU by PDU over a pipe as a client would.

var echoSyntax = SyntaxID{UUID: MustUUID("12345678-1234-abcd-ef00-0123456789ab"), Major: 1}

func echoServer(minLevel byte) *Server {
	h := HandlerFunc(func(ctx context.Context, c *Call) ([]byte, error) {
		switch c.Opnum {
		case 0:
			return c.Stub, nil
		case 1:
			return nil, FaultAccessDenied
		}
		return nil, FaultOpRangeError
	})
	return New(Config{Interfaces: []*Interface{{Name: "echo", Syntax: echoSyntax, Handler: h, MinLevel: minLevel}}, Idle: 5 * time.Second})
}

type testClient struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dial(t *testing.T, s *Server) *testClient {
	t.Helper()
	cli, srv := net.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.serveConn(ctx, srv); srv.Close(); close(done) }()
	t.Cleanup(func() {
		cancel()
		cli.Close()
		<-done
	})
	return &testClient{t: t, c: cli, r: bufio.NewReader(cli)}
}

func (tc *testClient) send(b []byte) {
	tc.t.Helper()
	tc.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := tc.c.Write(b); err != nil {
		tc.t.Fatalf("write: %v", err)
	}
}

func (tc *testClient) recv() *pdu {
	tc.t.Helper()
	tc.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	p, err := readPDU(tc.r)
	if err != nil {
		tc.t.Fatalf("read: %v", err)
	}
	return p
}

// closed reports whether the server hung up.
func (tc *testClient) closed() bool {
	tc.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := tc.r.ReadByte()
	return err != nil
}

// bindBody proposes one context per abstract syntax, each with NDR 2.0.
func bindBody(maxRecv uint16, abstracts ...SyntaxID) []byte {
	b := binary.LittleEndian.AppendUint16(nil, MaxFrag)
	b = binary.LittleEndian.AppendUint16(b, maxRecv)
	b = binary.LittleEndian.AppendUint32(b, 0)
	b = append(b, byte(len(abstracts)), 0, 0, 0)
	for i, a := range abstracts {
		b = binary.LittleEndian.AppendUint16(b, uint16(i))
		b = append(b, 1, 0)
		b = a.append(b)
		b = NDR20.append(b)
	}
	return b
}

func requestBody(ctxID, opnum uint16, stub []byte) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(len(stub)))
	b = binary.LittleEndian.AppendUint16(b, ctxID)
	b = binary.LittleEndian.AppendUint16(b, opnum)
	return append(b, stub...)
}

// results reads a bind_ack's context results.
func results(t *testing.T, body []byte) []contextResult {
	t.Helper()
	secLen := int(binary.LittleEndian.Uint16(body[8:]))
	off := 10 + secLen
	for (headerLen+off)%4 != 0 {
		off++
	}
	n := int(body[off])
	off += 4
	var rs []contextResult
	for i := 0; i < n; i++ {
		rs = append(rs, contextResult{result: binary.LittleEndian.Uint16(body[off:]), reason: binary.LittleEndian.Uint16(body[off+2:]),
			transfer: parseSyntax(body[off+4:])})
		off += 24
	}
	return rs
}

func faultStatus(t *testing.T, p *pdu) Fault {
	t.Helper()
	if p.ptype != ptFault {
		t.Fatalf("got a %s, want a fault", ptNames[p.ptype])
	}
	return Fault(binary.LittleEndian.Uint32(p.body[8:]))
}

func TestBindAndCall(t *testing.T) {
	tc := dial(t, echoServer(LevelNone))
	unknown := SyntaxID{UUID: MustUUID("e3514235-4b06-11d1-ab04-00c04fc2dcd2"), Major: 4}
	tc.send(marshal(ptBind, pfcFirstFrag|pfcLastFrag, 1, bindBody(MaxFrag, echoSyntax, unknown), nil))
	ack := tc.recv()
	if ack.ptype != ptBindAck {
		t.Fatalf("got %s, want bind_ack", ptNames[ack.ptype])
	}
	rs := results(t, ack.body)
	if len(rs) != 2 || rs[0].result != resultAcceptance || rs[0].transfer != NDR20 ||
		rs[1].result != resultProviderRejec || rs[1].reason != reasonAbstractNotSupported {
		t.Fatalf("context results %+v: want echo accepted with NDR 2.0, the other refused (abstract syntax not supported)", rs)
	}

	tc.send(marshal(ptRequest, pfcFirstFrag|pfcLastFrag, 2, requestBody(0, 0, []byte("hello")), nil))
	resp := tc.recv()
	if resp.ptype != ptResponse || resp.callID != 2 || !bytes.Equal(resp.body[8:], []byte("hello")) {
		t.Fatalf("echo: %s call %d %q", ptNames[resp.ptype], resp.callID, resp.body)
	}
	// A handler's fault, an opnum out of range, a context never bound:
	// each a fault with its status, and the connection stays.
	for _, c := range []struct {
		ctx, op uint16
		want    Fault
	}{{0, 1, FaultAccessDenied}, {0, 9, FaultOpRangeError}, {1, 0, FaultUnknownIf}} {
		tc.send(marshal(ptRequest, pfcFirstFrag|pfcLastFrag, 3, requestBody(c.ctx, c.op, nil), nil))
		if got := faultStatus(t, tc.recv()); got != c.want {
			t.Errorf("context %d opnum %d: fault %s, want %s", c.ctx, c.op, got, c.want)
		}
	}
	// A second bind on a bound connection is refused and the connection closes.
	tc.send(marshal(ptBind, pfcFirstFrag|pfcLastFrag, 4, bindBody(MaxFrag, echoSyntax), nil))
	if nak := tc.recv(); nak.ptype != ptBindNak {
		t.Fatalf("second bind: %s, want bind_nak", ptNames[nak.ptype])
	}
	if !tc.closed() {
		t.Fatal("the connection stayed open after bind_nak")
	}
}

// Fragments both ways: a request in three fragments is one call, and a
// response longer than the client's max_recv_frag comes back in pieces.
func TestFragments(t *testing.T) {
	tc := dial(t, echoServer(LevelNone))
	tc.send(marshal(ptBind, pfcFirstFrag|pfcLastFrag, 1, bindBody(1432, echoSyntax), nil))
	tc.recv()
	stub := bytes.Repeat([]byte("0123456789abcdef"), 300) // 4800 bytes
	parts := [][]byte{stub[:1000], stub[1000:3000], stub[3000:]}
	for i, part := range parts {
		flags := byte(0)
		if i == 0 {
			flags |= pfcFirstFrag
		}
		if i == len(parts)-1 {
			flags |= pfcLastFrag
		}
		tc.send(marshal(ptRequest, flags, 7, requestBody(0, 0, part), nil))
	}
	var got []byte
	frags := 0
	for {
		p := tc.recv()
		if p.ptype != ptResponse || p.callID != 7 || int(p.fragLen) > 1432 {
			t.Fatalf("fragment %d: %s call %d of %d bytes", frags, ptNames[p.ptype], p.callID, p.fragLen)
		}
		got = append(got, p.body[8:]...)
		frags++
		if p.flags&pfcLastFrag != 0 {
			break
		}
	}
	if !bytes.Equal(got, stub) || frags < 4 {
		t.Fatalf("reassembled %d bytes in %d fragments, want the 4800-byte stub in at least 4", len(got), frags)
	}
	// A continuation with no first fragment is a protocol error.
	tc.send(marshal(ptRequest, pfcLastFrag, 8, requestBody(0, 0, []byte("x")), nil))
	if got := faultStatus(t, tc.recv()); got != FaultProtoError {
		t.Fatalf("orphan fragment: %s, want nca_proto_error", got)
	}
}

func TestRefusals(t *testing.T) {
	// An interface that wants authentication refuses an anonymous call.
	tc := dial(t, echoServer(LevelPacket))
	tc.send(marshal(ptBind, pfcFirstFrag|pfcLastFrag, 1, bindBody(MaxFrag, echoSyntax), nil))
	tc.recv()
	tc.send(marshal(ptRequest, pfcFirstFrag|pfcLastFrag, 2, requestBody(0, 0, []byte("x")), nil))
	if got := faultStatus(t, tc.recv()); got != FaultAccessDenied {
		t.Fatalf("anonymous call at packet level: %s, want access denied", got)
	}

	// A request before any bind: a fault, then the close.
	tc = dial(t, echoServer(LevelNone))
	tc.send(marshal(ptRequest, pfcFirstFrag|pfcLastFrag, 1, requestBody(0, 0, nil), nil))
	if got := faultStatus(t, tc.recv()); got != FaultProtoError {
		t.Fatalf("request before bind: %s", got)
	}
	if !tc.closed() {
		t.Fatal("still open after a request before bind")
	}

	// An unknown authentication type on bind: bind_nak, reason 8.
	tc = dial(t, echoServer(LevelNone))
	v := &authVerifier{authType: 0x44, level: LevelPrivacy, contextID: 1, value: []byte{1, 2, 3, 4}}
	tc.send(marshal(ptBind, pfcFirstFrag|pfcLastFrag, 1, bindBody(MaxFrag, echoSyntax), v))
	nak := tc.recv()
	if nak.ptype != ptBindNak || binary.LittleEndian.Uint16(nak.body) != nakAuthenticationTypeNotRec {
		t.Fatalf("unknown auth type: %s %x", ptNames[nak.ptype], nak.body)
	}

	// Wire lengths: a frag_length over MaxFrag, an auth_length larger than
	// its fragment, a big-endian PDU — each closes the connection.
	for name, raw := range map[string][]byte{
		"frag_length": func() []byte {
			b := marshal(ptBind, pfcFirstFrag|pfcLastFrag, 1, bindBody(MaxFrag, echoSyntax), nil)
			binary.LittleEndian.PutUint16(b[8:], MaxFrag+1)
			return b
		}(),
		"auth_length": func() []byte {
			b := marshal(ptBind, pfcFirstFrag|pfcLastFrag, 1, bindBody(MaxFrag, echoSyntax), nil)
			binary.LittleEndian.PutUint16(b[10:], 4000)
			return b
		}(),
		"big-endian": func() []byte {
			b := marshal(ptBind, pfcFirstFrag|pfcLastFrag, 1, bindBody(MaxFrag, echoSyntax), nil)
			b[4] = 0
			return b
		}(),
	} {
		tc := dial(t, echoServer(LevelNone))
		tc.send(raw)
		if !tc.closed() {
			t.Errorf("%s: the connection stayed open", name)
		}
	}
}

// A reassembled request is bounded (MaxStub): the call is refused, not
// buffered without end.
func TestStubBound(t *testing.T) {
	tc := dial(t, echoServer(LevelNone))
	tc.send(marshal(ptBind, pfcFirstFrag|pfcLastFrag, 1, bindBody(MaxFrag, echoSyntax), nil))
	tc.recv()
	chunk := make([]byte, MaxFrag-headerLen-8)
	flags := byte(pfcFirstFrag)
	for sent := 0; ; sent += len(chunk) {
		tc.send(marshal(ptRequest, flags, 2, requestBody(0, 0, chunk), nil))
		flags = 0
		if sent+len(chunk) > MaxStub {
			if got := faultStatus(t, tc.recv()); got != FaultProtoError {
				t.Fatalf("over MaxStub: %s", got)
			}
			return
		}
	}
}

// The fault's name is what logs and tools show.
func TestFaultString(t *testing.T) {
	if s := FaultOpRangeError.String(); s != "nca_op_rng_error (0x1c010002)" {
		t.Fatalf("%q", s)
	}
	if s := Fault(0x1234).String(); s == "" {
		t.Fatal("an unknown fault has no text")
	}
}
