package ntlm

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"github.com/doublehop/doublehop/dtyp"
	"os/exec"
	"strings"
	"testing"

	"github.com/doublehop/doublehop/internal/peer"
	"github.com/doublehop/doublehop/ntstatus"
)

func unhex(s string) []byte { b, _ := hex.DecodeString(strings.ReplaceAll(s, " ", "")); return b }

// MS-NLMP 4.2.4 (NTLMv2 authentication): User, Domain, Password.
func TestNTLMv2SpecVectors(t *testing.T) {
	h := NTHash("Password")
	if got := hex.EncodeToString(NTOWFv2(h, "User", "Domain")); got != "0c868a403bfd7a93a3001ef22ef02e3f" {
		t.Fatalf("NTOWFv2 %s", got)
	}
	var sc, cc [8]byte
	copy(sc[:], unhex("0123456789abcdef"))
	copy(cc[:], bytes.Repeat([]byte{0xaa}, 8))
	info := AvPairs{{AvNbDomainName, Str("Domain")}, {AvNbComputerName, Str("Server")}}.Marshal()
	nt, lm, base := ResponseV2(NTOWFv2(h, "User", "Domain"), sc, cc, 0, info)
	if got := hex.EncodeToString(nt[:16]); got != "68cd0ab851e51c96aabc927bebef6a1c" {
		t.Errorf("NTProofStr %s", got)
	}
	if got := hex.EncodeToString(lm); got != "86c35097ac9cec102554764a57cccc19aaaaaaaaaaaaaaaa" {
		t.Errorf("LMv2 %s", got)
	}
	if got := hex.EncodeToString(base); got != "8de40ccadbc14a82f15cb0ad0de95ca3" {
		t.Errorf("SessionBaseKey %s", got)
	}
	// KEY_EXCH: RC4(KeyExchangeKey, RandomSessionKey 0x55 * 16) = c5dad254...
	if got := hex.EncodeToString(rc4K(base, bytes.Repeat([]byte{0x55}, 16))); got != "c5dad2544fc9799094ce1ce90bc9d03e" {
		t.Errorf("EncryptedRandomSessionKey %s", got)
	}
}

// dc validates with a directory of NT hashes, as the DC's Netlogon does.
func dc(h map[string][]byte) LocalAccounts { return LocalAccounts{Domain: "LAB", Hashes: h} }

var labServer = ServerConfig{NetBIOSDomain: "LAB", NetBIOSComputer: "WEB", DNSDomain: "lab.local", DNSComputer: "web.lab.local"}

func handshake(t *testing.T, cfg ClientConfig, tamper func([]byte) []byte) (*ServerResult, error) {
	t.Helper()
	cl, srv := NewClientContext(cfg), NewServerContext(labServer)
	ch, err := srv.Challenge(cl.Negotiate())
	if err != nil {
		t.Fatal(err)
	}
	auth, err := cl.Authenticate(ch)
	if err != nil {
		t.Fatal(err)
	}
	if tamper != nil {
		auth = tamper(auth)
	}
	return srv.Authenticate(context.Background(), auth, dc(map[string][]byte{"bob": NTHash("Bob-Passw0rd!")}))
}

func status(err error) ntstatus.Status {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

func TestHandshake(t *testing.T) {
	bob := ClientConfig{User: "bob", Domain: "LAB", Workstation: "WS01", NTHash: NTHash("Bob-Passw0rd!")}
	r, err := handshake(t, bob, nil)
	if err != nil || r.Validation.Account != "bob" || !r.MICPresent || !r.V2 || r.Session == nil {
		t.Fatalf("%+v %v", r, err)
	}
	// The MIC covers the whole exchange: a changed workstation name is caught.
	_, err = handshake(t, bob, func(b []byte) []byte { return bytes.Replace(b, dtyp.UTF16LE("WS01"), dtyp.UTF16LE("EVIL"), 1) })
	if e, ok := err.(*Error); !ok || e.Reason != "MIC_MISMATCH" {
		t.Fatalf("tampered: %v", err)
	}
	wrong := bob
	wrong.NTHash = NTHash("not-bobs")
	if _, err := handshake(t, wrong, nil); status(err) != ntstatus.WrongPassword {
		t.Fatalf("wrong password: %v", err)
	}
	v1 := bob
	v1.V1 = true
	if _, err := handshake(t, v1, nil); status(err) != ntstatus.WrongPassword || err.(*Error).Reason != ReasonV1Refused {
		t.Fatalf("NTLMv1: %v", err)
	}
	nobody := bob
	nobody.User = "mallory"
	if _, err := handshake(t, nobody, nil); status(err) != ntstatus.NoSuchUser {
		t.Fatalf("unknown user: %v", err)
	}
	old := bob
	old.NoMIC = true
	if r, err := handshake(t, old, nil); err != nil || r.MICPresent {
		t.Fatalf("a client without MIC: %+v %v", r, err)
	}
}

// An AUTHENTICATE is good for its own challenge only.
func TestReplayRefused(t *testing.T) {
	cl := NewClientContext(ClientConfig{User: "bob", Domain: "LAB", NTHash: NTHash("Bob-Passw0rd!")})
	srv := NewServerContext(labServer)
	ch, _ := srv.Challenge(cl.Negotiate())
	auth, _ := cl.Authenticate(ch)
	d := dc(map[string][]byte{"bob": NTHash("Bob-Passw0rd!")})
	if _, err := srv.Authenticate(context.Background(), auth, d); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Authenticate(context.Background(), auth, d); err == nil || err.(*Error).Reason != "NO_CHALLENGE" {
		t.Fatalf("replay on the same connection: %v", err)
	}
	other := NewServerContext(labServer)
	other.Challenge(NewClientContext(ClientConfig{}).Negotiate())
	if _, err := other.Authenticate(context.Background(), auth, d); status(err) != ntstatus.WrongPassword {
		t.Fatalf("replay on another connection: %v", err)
	}
}

func TestAnonymous(t *testing.T) {
	srv := NewServerContext(labServer)
	srv.Challenge((&Negotiate{Flags: ClientFlags | FlagAnonymous}).Marshal())
	r, err := srv.Authenticate(context.Background(), (&Authenticate{Flags: FlagUnicode | FlagAnonymous, LmChallengeResponse: []byte{0}}).Marshal(), dc(nil))
	if err != nil || !r.Anonymous || r.Validation != nil {
		t.Fatalf("%+v %v", r, err)
	}
}

// The session keys sign in both directions (MS-NLMP 3.4.4, SPNEGO's mechListMIC).
func TestSessionSigning(t *testing.T) {
	cl := NewClientContext(ClientConfig{User: "bob", Domain: "LAB", NTHash: NTHash("Bob-Passw0rd!")})
	srv := NewServerContext(labServer)
	ch, _ := srv.Challenge(cl.Negotiate())
	auth, _ := cl.Authenticate(ch)
	r, err := srv.Authenticate(context.Background(), auth, dc(map[string][]byte{"bob": NTHash("Bob-Passw0rd!")}))
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("mechTypes")
	if !r.Session.VerifyClientMAC(0, msg, cl.Session.ClientMAC(0, msg)) {
		t.Fatal("the server does not verify the client's MAC")
	}
	if !cl.Session.VerifyServerMAC(0, msg, r.Session.ServerMAC(0, msg)) {
		t.Fatal("the client does not verify the server's MAC")
	}
}

// impacket (a third-party NTLM client, Debian python3-impacket) answers our
// CHALLENGE; our DC check accepts its NTLMv2 response and MIC-less message,
// and refuses its NTLMv1 response (LmCompatibilityLevel 5) and a wrong password.
func TestImpacketAnswersOurChallenge(t *testing.T) {
	bob := dc(map[string][]byte{"bob": NTHash("Bob-Passw0rd!")})
	srv := NewServerContext(labServer)
	r, err := srv.Authenticate(context.Background(), impacketAuthenticate(t, srv, "Bob-Passw0rd!", true), bob)
	if err != nil || r.Validation.Account != "bob" || !r.V2 {
		t.Fatalf("impacket's AUTHENTICATE: %+v %v", r, err)
	}
	for _, tc := range []struct {
		password string
		v2       bool
		status   ntstatus.Status
		reason   string
	}{
		{"Bob-Passw0rd!", false, ntstatus.WrongPassword, ReasonV1Refused},
		{"not-bobs", true, ntstatus.WrongPassword, ""},
	} {
		srv := NewServerContext(labServer)
		_, err := srv.Authenticate(context.Background(), impacketAuthenticate(t, srv, tc.password, tc.v2), bob)
		var e *Error
		if !errors.As(err, &e) || e.Status != tc.status || (tc.reason != "" && e.Reason != tc.reason) {
			t.Errorf("impacket v2=%v password %q: %v, want %v %s", tc.v2, tc.password, err, tc.status, tc.reason)
		}
	}
}

// impacketAuthenticate has impacket negotiate with srv and returns its AUTHENTICATE.
func impacketAuthenticate(t *testing.T, srv *ServerContext, password string, v2 bool) []byte {
	t.Helper()
	py := peer.Need1(t, "/usr/bin/python3")
	if out, err := exec.Command(py, "-c", "import impacket.ntlm").CombinedOutput(); err != nil {
		peer.Missing(t, "python3-impacket: "+string(out))
	}
	script := `
import sys, binascii
from impacket import ntlm
t1 = ntlm.getNTLMSSPType1('WS01', 'LAB', signingRequired=True)
sys.stdout.write(binascii.hexlify(t1.getData()).decode() + "\n"); sys.stdout.flush()
ch = binascii.unhexlify(sys.stdin.readline().strip())
t3, key = ntlm.getNTLMSSPType3(t1, ch, 'bob', sys.argv[1], 'LAB', use_ntlmv2=(sys.argv[2] == '1'))
sys.stdout.write(binascii.hexlify(t3.getData()).decode() + "\n")
`
	v := "0"
	if v2 {
		v = "1"
	}
	cmd := exec.Command(py, "-c", script, password, v)
	in, _ := cmd.StdinPipe()
	pipe, _ := cmd.StdoutPipe()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	rd := bufio.NewReader(pipe)
	line, err := rd.ReadString('\n')
	if err != nil {
		t.Fatalf("impacket: %v %s", err, stderr.String())
	}
	ch, err := srv.Challenge(unhex(strings.TrimSpace(line)))
	if err != nil {
		t.Fatalf("impacket's NEGOTIATE: %v", err)
	}
	in.Write([]byte(hex.EncodeToString(ch) + "\n"))
	in.Close()
	last, _ := rd.ReadString('\n')
	if err := cmd.Wait(); err != nil {
		t.Fatalf("impacket: %v\n%s", err, stderr.String())
	}
	return unhex(strings.TrimSpace(last))
}

func FuzzParseMessages(f *testing.F) {
	cl := NewClientContext(ClientConfig{User: "bob", Domain: "LAB", Workstation: "WS01", NTHash: NTHash("x")})
	n := cl.Negotiate()
	srv := NewServerContext(labServer)
	ch, _ := srv.Challenge(n)
	a, _ := cl.Authenticate(ch)
	f.Add(n)
	f.Add(ch)
	f.Add(a)
	f.Fuzz(func(t *testing.T, b []byte) {
		switch TypeOf(b) {
		case TypeNegotiate:
			if m, err := ParseNegotiate(b); err == nil {
				if _, err := ParseNegotiate((&Negotiate{Flags: m.Flags &^ FlagVersion, Domain: m.Domain, Workstation: m.Workstation, Version: m.Version}).Marshal()); err != nil {
					t.Fatalf("re-encoded NEGOTIATE: %v", err)
				}
			}
		case TypeChallenge:
			if m, err := ParseChallenge(b); err == nil {
				again, err := ParseChallenge(m.Marshal())
				if err != nil || again.ServerChallenge != m.ServerChallenge || len(again.TargetInfo) != len(m.TargetInfo) {
					t.Fatalf("re-encoded CHALLENGE: %v", err)
				}
			}
		case TypeAuthenticate:
			if m, err := ParseAuthenticate(b); err == nil {
				again, err := ParseAuthenticate(m.Marshal())
				if err != nil || again.User != m.User || !bytes.Equal(again.NtChallengeResponse, m.NtChallengeResponse) {
					t.Fatalf("re-encoded AUTHENTICATE: %v", err)
				}
				// The DC check never panics on what a client sent.
				var sc [8]byte
				Verify(NTHash("x"), m.User, m.Domain, sc, m.NtChallengeResponse, m.LmChallengeResponse)
			}
		default:
			ParseAvPairs(b)
		}
	})
}
