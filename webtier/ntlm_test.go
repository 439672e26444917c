package webtier

import (
	"context"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/doublehop/doublehop/events"
	"github.com/doublehop/doublehop/ntlm"
)

// The site's NTLM as IIS runs it, against a DC stand-in that checks real
// NTLMv2 responses (ntlm.LocalAccounts): bound to the TCP connection, one
// use per challenge, MIC checked, NTLMv1 and LM refused.

type ntlmSite struct {
	url string
	ev  *events.Memory
}

func startNTLMSite(t *testing.T) *ntlmSite {
	t.Helper()
	kt := siteKeytab(t)
	ev := events.NewMemory(256)
	dc := ntlm.LocalAccounts{Domain: "LAB", Hashes: map[string][]byte{"bob": ntlm.NTHash("Bob-Passw0rd!")}}
	s := New(Config{Keytab: kt, Realm: "LAB.LOCAL", NetBIOS: "LAB", Host: "web.lab.local", ServiceAccount: "svc_iispool", KDC: "127.0.0.1:1",
		Events: ev, Validator: dc, SQLSPN: "MSSQLSvc/127.0.0.1:1"})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Serve(ctx, ln); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return &ntlmSite{url: "http://" + ln.Addr().String() + "/", ev: ev}
}

// conn is one kept-alive TCP connection to the site.
func oneConn() *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1}}
}

func (st *ntlmSite) send(t *testing.T, hc *http.Client, scheme string, msg []byte) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", st.url, nil)
	req.Header.Set("Authorization", scheme+" "+base64.StdEncoding.EncodeToString(msg))
	req.Header.Set("Accept", "application/json")
	r, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
	r.Body.Close()
	var tok []byte
	for _, v := range r.Header.Values("WWW-Authenticate") {
		if s, b64, ok := strings.Cut(v, " "); ok && strings.EqualFold(s, scheme) {
			tok, _ = base64.StdEncoding.DecodeString(b64)
		}
	}
	return r, tok
}

// handshake runs NEGOTIATE/CHALLENGE on hc and returns the AUTHENTICATE.
func (st *ntlmSite) handshake(t *testing.T, hc *http.Client, cfg ntlm.ClientConfig) []byte {
	t.Helper()
	cl := ntlm.NewClientContext(cfg)
	r, ch := st.send(t, hc, "NTLM", cl.Negotiate())
	if r.StatusCode != 401 || ntlm.TypeOf(ch) != ntlm.TypeChallenge {
		t.Fatalf("NEGOTIATE: HTTP %d, token %x", r.StatusCode, ch)
	}
	a, err := cl.Authenticate(ch)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func (st *ntlmSite) lastFailure(t *testing.T) events.Event {
	t.Helper()
	evs := st.ev.Events()
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].ID == events.LogonFailure {
			return evs[i]
		}
	}
	t.Fatal("no 4625")
	return events.Event{}
}

var bob = ntlm.ClientConfig{User: "bob", Domain: "LAB", Workstation: "WS01", NTHash: ntlm.NTHash("Bob-Passw0rd!")}

func TestNTLMBoundToConnection(t *testing.T) {
	st := startNTLMSite(t)
	hc := oneConn()
	a := st.handshake(t, hc, bob)
	// The AUTHENTICATE on another TCP connection finds no challenge.
	if r, _ := st.send(t, oneConn(), "NTLM", a); r.StatusCode != 401 || st.lastFailure(t).Reason != "NO_CHALLENGE" {
		t.Fatalf("AUTHENTICATE on another connection: HTTP %d, %+v", r.StatusCode, st.lastFailure(t))
	}
	// On its own connection a fresh handshake works, and the connection
	// stays authenticated (no header needed for the next request).
	a = st.handshake(t, hc, bob)
	if r, _ := st.send(t, hc, "NTLM", a); r.StatusCode != 200 {
		t.Fatalf("AUTHENTICATE: HTTP %d", r.StatusCode)
	}
	req, _ := http.NewRequest("GET", st.url, nil)
	r, err := hc.Do(req)
	if err != nil || r.StatusCode != 200 {
		t.Fatalf("the authenticated connection: %v %v", r, err)
	}
	io.Copy(io.Discard, r.Body)
	r.Body.Close()
	// The same AUTHENTICATE again: its challenge is spent.
	if r, _ := st.send(t, hc, "NTLM", a); r.StatusCode != 401 || st.lastFailure(t).Reason != "NO_CHALLENGE" {
		t.Fatalf("replayed AUTHENTICATE: HTTP %d, %+v", r.StatusCode, st.lastFailure(t))
	}
}

func TestNTLMRefusals(t *testing.T) {
	st := startNTLMSite(t)
	for _, tc := range []struct {
		name   string
		cfg    ntlm.ClientConfig
		tamper func([]byte) []byte
		reason string
		status string
	}{
		{"wrong password", ntlm.ClientConfig{User: "bob", Domain: "LAB", NTHash: ntlm.NTHash("nope")}, nil, "", "0xC000006A"},
		{"unknown user", ntlm.ClientConfig{User: "mallory", Domain: "LAB", NTHash: ntlm.NTHash("x")}, nil, "NO_SUCH_USER", "0xC0000064"},
		{"NTLMv1", ntlm.ClientConfig{User: "bob", Domain: "LAB", NTHash: bob.NTHash, V1: true}, nil, ntlm.ReasonV1Refused, ""},
		{"MIC tampered", bob, func(a []byte) []byte {
			p, _ := ntlm.ParseAuthenticate(a)
			p.MIC[0] ^= 1
			return p.Marshal()
		}, "MIC_MISMATCH", ""},
	} {
		hc := oneConn()
		a := st.handshake(t, hc, tc.cfg)
		if tc.tamper != nil {
			a = tc.tamper(a)
		}
		if r, _ := st.send(t, hc, "NTLM", a); r.StatusCode != 401 {
			t.Errorf("%s: HTTP %d", tc.name, r.StatusCode)
			continue
		}
		e := st.lastFailure(t)
		if (tc.reason != "" && e.Reason != tc.reason) || (tc.status != "" && !strings.Contains(e.Status, tc.status)) || e.Package != "NTLM" {
			t.Errorf("%s: 4625 %+v", tc.name, e)
		}
	}
}
