package epm_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/doublehop/doublehop/dcerpc"
	"github.com/doublehop/doublehop/epm"
	"github.com/doublehop/doublehop/internal/peer"
)

var drsuapi = dcerpc.SyntaxID{UUID: dcerpc.MustUUID("e3514235-4b06-11d1-ab04-00c04fc2dcd2"), Major: 4}

func serve(t *testing.T, m *epm.Mapper) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv := dcerpc.New(dcerpc.Config{Interfaces: []*dcerpc.Interface{m.Interface()}, Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil))})
	done := make(chan struct{})
	go func() { srv.Serve(ctx, ln); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return ln.Addr().String()
}

// impacket's hept_map, what secretsdump and every impacket tool call first,
// finds DRSUAPI's port through our mapper.
func TestImpacketMapsDRSUAPI(t *testing.T) {
	py := peer.Python(t, "impacket", "python3-impacket")
	m := &epm.Mapper{}
	m.Register(epm.Endpoint{Syntax: drsuapi, Port: 49667, Annotation: "MS NT Directory DRS Interface"})
	addr := serve(t, m)
	host, port, _ := net.SplitHostPort(addr)
	script := fmt.Sprintf(`
from impacket.dcerpc.v5 import transport, epm, drsuapi
t = transport.DCERPCTransportFactory('ncacn_ip_tcp:%s[%s]')
dce = t.get_dce_rpc(); dce.connect()
print(epm.hept_map('%s', drsuapi.MSRPC_UUID_DRSUAPI, protocol='ncacn_ip_tcp', dce=dce))
dce = t.get_dce_rpc(); dce.connect()
try:
    epm.hept_map('%s', epm.MSRPC_UUID_PORTMAP[:16] + b'\x09\x00\x00\x00', protocol='ncacn_ip_tcp', dce=dce)
except Exception as e:
    print('unknown:', e)
`, host, port, host, host)
	out, err := peer.RunErr(nil, "", py, "-c", script)
	if err != nil {
		t.Fatalf("impacket: %v\n%s", err, out)
	}
	if !strings.Contains(out, "ncacn_ip_tcp:127.0.0.1[49667]") {
		t.Errorf("hept_map answered:\n%s", out)
	}
	if !strings.Contains(out, "unknown:") || !strings.Contains(out, "not_registered") && !strings.Contains(out, "16c9a0d6") {
		t.Errorf("an unregistered interface:\n%s", out)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// FuzzServeRPC gives the mapper any call (seeded with impacket's ept_map
// requests): a reply or a fault, never a panic.
func FuzzServeRPC(f *testing.F) {
	m := &epm.Mapper{}
	m.Register(epm.Endpoint{Syntax: drsuapi, Port: 49667, Annotation: "MS NT Directory DRS Interface"})
	f.Fuzz(func(t *testing.T, opnum uint16, stub []byte) {
		m.ServeRPC(context.Background(), &dcerpc.Call{Opnum: opnum, Stub: stub, Remote: "127.0.0.1:1", Local: "127.0.0.1:135",
			Assoc: dcerpc.NewAssociation(1)})
	})
}
