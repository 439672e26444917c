package dcerpc

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/doublehop/doublehop/ntlm"
	"github.com/doublehop/doublehop/ntstatus"
)

// refuseAll is a DC that validates no NTLM logon (the fuzzer reaches the
// NTLM handshake and its refusal without a directory).
type refuseAll struct{}

func (refuseAll) ValidateNTLM(context.Context, ntlm.ValidationRequest) (*ntlm.ValidationResult, error) {
	return nil, &ntlm.Error{Status: ntstatus.LogonFailure, Reason: "LOGON_FAILURE"}
}

// FuzzConn feeds a byte stream to a connection of a server with the echo
// interface and NTLM: it must end (answered or closed), never panic or hang.
func FuzzConn(f *testing.F) {
	bind := marshal(ptBind, pfcFirstFrag|pfcLastFrag, 1, bindBody(MaxFrag, echoSyntax), nil)
	req := marshal(ptRequest, pfcFirstFrag|pfcLastFrag, 2, requestBody(0, 0, []byte("hello")), nil)
	neg := ntlm.NewClientContext(ntlm.ClientConfig{User: "bob", Domain: "LAB", NTHash: ntlm.NTHash("x")}).Negotiate()
	ntlmBind := marshal(ptBind, pfcFirstFrag|pfcLastFrag|pfcSupportHdrSign, 1, bindBody(MaxFrag, echoSyntax),
		&authVerifier{authType: AuthNTLM, level: LevelPrivacy, contextID: 7, value: neg})
	f.Add(append(append([]byte(nil), bind...), req...))
	f.Add(ntlmBind)
	f.Add(append(append([]byte(nil), bind...), marshal(ptRequest, pfcFirstFrag, 2, requestBody(0, 0, []byte("part")), nil)...))
	s := echoServer(LevelNone)
	s.cfg.Security.NTLM = refuseAll{}
	s.cfg.Idle = time.Second
	f.Fuzz(func(t *testing.T, in []byte) {
		a, b := net.Pipe()
		done := make(chan struct{})
		go func() { s.serveConn(context.Background(), a); a.Close(); close(done) }()
		go io.Copy(io.Discard, b)
		go func() { b.Write(in); b.Close() }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("the stream %x hangs the server", in)
		}
	})
}
