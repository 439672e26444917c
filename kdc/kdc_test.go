package kdc

import (
	"context"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/doublehop/doublehop/directory"
	"github.com/doublehop/doublehop/events"
	"github.com/doublehop/doublehop/krb/gss"
	"github.com/doublehop/doublehop/krb/kcrypto"
	"github.com/doublehop/doublehop/krb/kerr"
	"github.com/doublehop/doublehop/krb/keytab"
	"github.com/doublehop/doublehop/krb/kmsg"
	"github.com/jcmturner/gokrb5/v8/client"
	"github.com/jcmturner/gokrb5/v8/config"
	gokeytab "github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/service"
	"github.com/jcmturner/gokrb5/v8/spnego"
)

type testKDC struct {
	addr   string
	store  *directory.Store
	ev     *events.Memory
	k      *Server
	offset atomic.Int64 // moves the KDC's clock (nanoseconds)
}

func startKDC(t testing.TB) *testKDC {
	t.Helper()
	store, err := directory.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ev := events.NewMemory(0)
	tk := &testKDC{store: store, ev: ev}
	k := New(Config{Directory: store, Events: ev, Now: func() time.Time { return time.Now().Add(time.Duration(tk.offset.Load())) }})
	tk.k = k
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go k.Serve(ctx, ln)
	go k.ServePacket(ctx, pc)
	t.Cleanup(cancel)
	tk.addr = ln.Addr().String()
	return tk
}

func (tk *testKDC) gokrbConfig(t testing.TB) *config.Config {
	cfg, err := config.NewFromString(`[libdefaults]
 default_realm = LAB.LOCAL
 dns_lookup_kdc = false
 forwardable = true
 default_tkt_enctypes = aes256-cts-hmac-sha1-96 aes128-cts-hmac-sha1-96
 default_tgs_enctypes = aes256-cts-hmac-sha1-96 aes128-cts-hmac-sha1-96
 permitted_enctypes = aes256-cts-hmac-sha1-96 aes128-cts-hmac-sha1-96
[realms]
 LAB.LOCAL = {
  kdc = ` + tk.addr + `
 }
`)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func keytabFor(t testing.TB, s *directory.Store, account string) *gokeytab.Keytab {
	t.Helper()
	entries, err := s.View().KeytabEntries(account)
	if err != nil {
		t.Fatal(err)
	}
	kt, err := keytab.Gokrb5(entries)
	if err != nil {
		t.Fatal(err)
	}
	return kt
}

// gokrb5's client logs in and gets a service ticket that gokrb5's SPNEGO
// service accepts with DecodePAC(true): the PAC we issue verifies.
func TestGokrb5ClientAndServiceWithPAC(t *testing.T) {
	tk := startKDC(t)
	cl := client.NewWithPassword("bob", "LAB.LOCAL", tk.store.View().Lab.Account("bob").Password, tk.gokrbConfig(t), client.DisablePAFXFAST(true))
	if err := cl.Login(); err != nil {
		t.Fatalf("login: %v", err)
	}
	kt := keytabFor(t, tk.store, "svc_mssqlserver")
	tkt, _, err := cl.GetServiceTicket("MSSQLSvc/sql.lab.local:1433")
	if err != nil {
		t.Fatalf("service ticket: %v", err)
	}
	if tkt.EncPart.EType != kcrypto.ETypeAES256SHA1 || tkt.EncPart.KVNO != 1 {
		t.Fatalf("ticket etype %d kvno %d", tkt.EncPart.EType, tkt.EncPart.KVNO)
	}
	srv := httptest.NewServer(spnego.SPNEGOKRB5Authenticate(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}), kt, service.DecodePAC(true), service.Logger(log.New(io.Discard, "", 0)), service.KeytabPrincipal("MSSQLSvc/sql.lab.local:1433")))
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL, nil)
	if err := spnego.SetSPNEGOHeader(cl, req, "MSSQLSvc/sql.lab.local:1433"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != "ok" {
		t.Fatalf("gokrb5 service with DecodePAC(true) refused our ticket: %d %s", resp.StatusCode, body)
	}
	evs := tk.ev.Events()
	var saw4768, saw4769 bool
	for _, e := range evs {
		saw4768 = saw4768 || (e.ID == events.TGTRequested && e.Outcome == events.Success && e.Client == "bob@LAB.LOCAL")
		saw4769 = saw4769 || (e.ID == events.ServiceTicket && e.Outcome == events.Success && e.Account == "svc_mssqlserver" && e.EType == 18)
	}
	if !saw4768 || !saw4769 {
		t.Fatalf("events: %+v", evs)
	}
}

// The seed's mechanism: with HTTP/web.lab.local on nobody, the ticket is
// encrypted with WEB$'s key (via HOST), svc_iispool's keys cannot decrypt it;
// after setspn -S it can, with no restart.
func TestSeedHostMappingAndLiveSetSPN(t *testing.T) {
	tk := startKDC(t)
	var out strings.Builder
	if err := directory.SetSPN(tk.store, []string{"-D", "HTTP/web.lab.local", "svc_iispool"}, &out); err != nil {
		t.Fatal(err)
	}
	cl := client.NewWithPassword("bob", "LAB.LOCAL", tk.store.View().Lab.Account("bob").Password, tk.gokrbConfig(t), client.DisablePAFXFAST(true))
	if err := cl.Login(); err != nil {
		t.Fatal(err)
	}
	web := gss.NewAcceptor(gss.AcceptorConfig{Keytab: keytabFor(t, tk.store, "svc_iispool"), Realm: "LAB.LOCAL"})
	tok := func() []byte {
		tkt, key, err := cl.GetServiceTicket("HTTP/web.lab.local")
		if err != nil {
			t.Fatal(err)
		}
		b, err := kmsg.MarshalAPReq(tkt, key, kmsg.NewAuthenticator(cl.Credentials.CName(), "LAB.LOCAL", time.Now()), kcrypto.UsageAPReqAuthenticator, nil)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	_, err := web.Accept(tok())
	if c, _ := kerr.CodeOf(err); c != kerr.KRB_AP_ERR_MODIFIED {
		t.Fatalf("before setspn: want KRB_AP_ERR_MODIFIED, got %v", err)
	}
	var e4769 events.Event
	for _, e := range tk.ev.Events() {
		if e.ID == events.ServiceTicket && e.Service == "HTTP/web.lab.local" {
			e4769 = e
		}
	}
	if e4769.Account != "WEB$" || e4769.Reason != "SPN_MAPPED_TO_HOST" {
		t.Fatalf("4769 should name WEB$ via the HOST mapping: %+v", e4769)
	}
	if err := directory.SetSPN(tk.store, []string{"-S", "HTTP/web.lab.local", "svc_iispool"}, &out); err != nil {
		t.Fatal(err)
	}
	// gokrb5 caches the old ticket by SPN: a fresh client asks the KDC again.
	cl = client.NewWithPassword("bob", "LAB.LOCAL", tk.store.View().Lab.Account("bob").Password, tk.gokrbConfig(t), client.DisablePAFXFAST(true))
	if err := cl.Login(); err != nil {
		t.Fatal(err)
	}
	ctx, err := web.Accept(tok())
	if err != nil {
		t.Fatalf("after setspn: %v", err)
	}
	if ctx.ClientPrincipal() != "bob@LAB.LOCAL" || ctx.PAC == nil || ctx.PAC.Info.EffectiveName != "bob" {
		t.Fatalf("context: %s pac=%+v", ctx.ClientPrincipal(), ctx.PAC)
	}
}
