package netlogon_test

import (
	"context"
	"errors"
	"net"
	"testing"

	"github.com/doublehop/doublehop/directory"
	"github.com/doublehop/doublehop/events"
	"github.com/doublehop/doublehop/kdc"
	"github.com/doublehop/doublehop/krb/kdcclient"
	"github.com/doublehop/doublehop/krb/kmsg"
	"github.com/doublehop/doublehop/netlogon"
	"github.com/doublehop/doublehop/ntlm"
	"github.com/doublehop/doublehop/ntstatus"
)

type dcFixture struct {
	store   *directory.Store
	events  *events.Memory
	kdcAddr string
	nlAddr  string
}

func startDC(t testing.TB) *dcFixture {
	t.Helper()
	store, err := directory.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	f := &dcFixture{store: store, events: &events.Memory{}}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go kdc.New(kdc.Config{Directory: store}).Serve(ctx, ln)
	nl, _ := net.Listen("tcp", "127.0.0.1:0")
	go netlogon.New(netlogon.Config{Directory: store, Events: f.events}).Serve(ctx, nl)
	f.kdcAddr, f.nlAddr = ln.Addr().String(), nl.Addr().String()
	return f
}

// member is a secure channel opened with an account's own key.
func (f *dcFixture) member(account string) *netlogon.Client {
	return netlogon.NewClient(netlogon.ClientConfig{Addr: f.nlAddr, Ticket: func(ctx context.Context) (kmsg.Credential, error) {
		e, _ := f.store.View().Account(account)
		k := &kdcclient.Client{Addr: f.kdcAddr, Realm: "LAB.LOCAL"}
		tgt, err := k.LoginWithKey(ctx, account, e.Keys[e.ETypes[0]], e.KVNO, nil)
		if err != nil {
			return kmsg.Credential{}, err
		}
		st, err := k.ServiceTicket(ctx, tgt.Credential(), "HOST/dc.lab.local")
		if err != nil {
			return kmsg.Credential{}, err
		}
		return st.Credential(), nil
	}})
}

func logon(t testing.TB, v ntlm.Validator, user, password string) (*ntlm.ServerResult, error) {
	t.Helper()
	cl := ntlm.NewClientContext(ntlm.ClientConfig{User: user, Domain: "LAB", Workstation: "WS01", NTHash: ntlm.NTHash(password)})
	srv := ntlm.NewServerContext(ntlm.ServerConfig{NetBIOSDomain: "LAB", NetBIOSComputer: "WEB", DNSDomain: "lab.local", DNSComputer: "web.lab.local"})
	ch, err := srv.Challenge(cl.Negotiate())
	if err != nil {
		t.Fatal(err)
	}
	a, err := cl.Authenticate(ch)
	if err != nil {
		t.Fatal(err)
	}
	return srv.Authenticate(context.Background(), a, v)
}

func statusOf(err error) ntstatus.Status {
	var e *ntlm.Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// The web tier's account passes Bob's response to the DC, which answers
// with Bob's identity and the session key; the MIC then checks out.
func TestPassThrough(t *testing.T) {
	f := startDC(t)
	web := f.member("svc_iispool")
	defer web.Close()
	bob := f.store.View().Lab.Account("bob")
	r, err := logon(t, web, "bob", bob.Password)
	if err != nil || r.Validation.Account != "bob" || r.Validation.SID == "" || !r.MICPresent {
		t.Fatalf("%+v %v", r, err)
	}
	// The channel is reused: a second logon, and the failures with Windows' codes.
	if _, err := logon(t, web, "bob", "not-bobs"); statusOf(err) != ntstatus.WrongPassword {
		t.Fatalf("wrong password: %v", err)
	}
	if _, err := logon(t, web, "mallory", "x"); statusOf(err) != ntstatus.NoSuchUser {
		t.Fatalf("unknown user: %v", err)
	}
	directory.Modify(f.store, "alice", func(_ *directory.Lab, a *directory.Account) error { a.Disabled = true; return nil })
	if _, err := logon(t, web, "alice", f.store.View().Lab.Account("alice").Password); statusOf(err) != ntstatus.AccountDisabled {
		t.Fatalf("disabled: %v", err)
	}
	var got []string
	for _, e := range f.events.Events() {
		if e.ID == events.CredentialValidation {
			got = append(got, e.Status)
		}
	}
	if want := "0x00000000 0xC000006A 0xC0000064 0xC0000072"; joined(got) != want {
		t.Fatalf("4776 statuses %q, want %q", joined(got), want)
	}
}

func joined(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += " "
		}
		out += x
	}
	return out
}

// The DC is no password oracle: a user's own ticket does not open the channel.
func TestUsersCannotAskTheDC(t *testing.T) {
	f := startDC(t)
	bobChannel := f.member("bob")
	_, err := logon(t, bobChannel, "alice", "guess")
	if statusOf(err) != ntstatus.AccessDenied {
		t.Fatalf("bob's channel: %v", err)
	}
	found := false
	for _, e := range f.events.Events() {
		if e.ID == events.NetlogonSessionFailed && e.Client == "bob@LAB.LOCAL" {
			found = true
		}
		if e.ID == events.CredentialValidation {
			t.Fatalf("the DC validated for an unauthorised caller: %+v", e)
		}
	}
	if !found {
		t.Fatal("no 5805 for bob's attempt")
	}
}

// Garbage instead of a ticket: the connection is closed, nothing validated.
func TestUnauthenticatedCallerRefused(t *testing.T) {
	f := startDC(t)
	c, err := net.Dial("tcp", f.nlAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	kmsg.WriteFrame(c, []byte("NTLMSSP\x00\x03\x00\x00\x00 not a ticket"))
	b, err := kmsg.ReadFrame(c, 1024)
	if err != nil || len(b) == 0 || b[0] != 1 {
		t.Fatalf("reply %q %v", b, err)
	}
	if _, err := kmsg.ReadFrame(c, 1024); err == nil {
		t.Fatal("the connection stayed open")
	}
}

// Restrict NTLM: deny all — the DC refuses and says so (8004, 4776).
func TestRestrictNTLM(t *testing.T) {
	f := startDC(t)
	f.store.Update(func(l *directory.Lab) error { l.Policy.RestrictNTLM = directory.RestrictNTLMDenyAll; return nil })
	if _, err := logon(t, f.member("svc_iispool"), "bob", f.store.View().Lab.Account("bob").Password); statusOf(err) != ntstatus.NTLMBlocked {
		t.Fatalf("%v", err)
	}
}

// One NTLM logon passed through to the DC over an open secure channel: the
// member's CHALLENGE, the client's NTLMv2 AUTHENTICATE, the DC's check and
// answer, the MIC (what a site pays per NTLM logon).
func BenchmarkPassThrough(b *testing.B) {
	f := startDC(b)
	web := f.member("svc_iispool")
	defer web.Close()
	pw := f.store.View().Lab.Account("bob").Password
	if _, err := logon(b, web, "bob", pw); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := logon(b, web, "bob", pw); err != nil {
			b.Fatal(err)
		}
	}
}
