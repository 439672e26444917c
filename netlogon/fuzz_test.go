package netlogon

import (
	"bytes"
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/doublehop/doublehop/directory"
	"github.com/doublehop/doublehop/krb/kcrypto"
)

// FuzzChannel feeds the DC's Netlogon service what an unauthenticated
// caller may send (the handshake frame) and what an authenticated member may
// send (a sealed request, then the DC's check on whatever it decodes to):
// a refusal or a closed connection, never a panic or a hang.
func FuzzChannel(f *testing.F) {
	store, err := directory.Open(f.TempDir(), nil)
	if err != nil {
		f.Fatal(err)
	}
	s := New(Config{Directory: store})
	key, _ := kcrypto.NewSessionKey(kcrypto.ETypeAES256SHA1)
	var sealed bytes.Buffer
	writeSealed(&sealed, key, usageRequest, SamLogonRequest{Seq: 1, User: "bob", Domain: "LAB", Workstation: "WS01",
		ServerChallenge: make([]byte, 8), NtResponse: make([]byte, 64), Package: "NTLM"})
	f.Add(sealed.Bytes(), []byte{0, 0, 0, 4, 0x60, 2, 5, 0})
	f.Add([]byte{0, 0, 0, 1, 0}, []byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, frame, handshake []byte) {
		a, b := net.Pipe()
		done := make(chan struct{})
		go func() { s.serveConn(context.Background(), a); a.Close(); close(done) }()
		go io.Copy(io.Discard, b) // the caller reads what the DC answers
		go func() { b.Write(handshake); b.Close() }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("the handshake %x hangs the server", handshake)
		}
		var req SamLogonRequest
		if readSealed(bytes.NewReader(frame), key, usageRequest, &req) == nil {
			resp := s.samLogon("svc_iispool@LAB.LOCAL", "127.0.0.1:1", &req)
			if resp.Status == 0 && req.User != "bob" && req.User != "alice" {
				t.Fatalf("a logon for %q validated", req.User)
			}
		}
	})
}
