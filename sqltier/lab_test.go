package sqltier

import (
	"context"
	"database/sql"
	"fmt"
	"github.com/doublehop/doublehop/ntlm"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/doublehop/doublehop/events"
	"github.com/doublehop/doublehop/internal/mitkdc"
	"github.com/doublehop/doublehop/internal/peer"
	"github.com/jcmturner/gokrb5/v8/keytab"
	mssql "github.com/microsoft/go-mssqldb"
	_ "github.com/microsoft/go-mssqldb/integratedauth/krb5"
)

// The tests run against a real MIT KDC (internal/mitkdc) holding the lab's
// principals: bob, alice and carol (no login), svc_mssqlserver's two SPNs,
// and an SPN on another account (the "ticket for the wrong account" case).
// Clients are real: go-mssqldb's stock krb5 authenticator reading an MIT
// ccache, and FreeTDS tsql.

const (
	spnPort = "MSSQLSvc/sql.lab.local:1433"
	spnHost = "MSSQLSvc/sql.lab.local"
	spnElse = "MSSQLSvc/other.lab.local:1433" // registered on another account
)

var passwords = map[string]string{"bob": "BobPassw0rd!", "alice": "AlicePassw0rd!", "carol": "CarolPassw0rd!"}

type testRealm struct {
	kdc    *mitkdc.KDC
	dir    string
	keytab *keytab.Keytab
	ccMu   sync.Mutex
	cc     map[string]string
}

var (
	realmOnce sync.Once
	realm     *testRealm
	realmErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if realm != nil {
		realm.kdc.Stop()
		os.RemoveAll(realm.dir)
	}
	os.Exit(code)
}

// labRealm starts the shared MIT realm once, or skips when MIT is missing.
func labRealm(t testing.TB) *testRealm {
	t.Helper()
	peer.Need(t, "krb5kdc", "kdb5_util", "kadmin.local", "kinit")
	realmOnce.Do(func() {
		dir, err := os.MkdirTemp("", "sqltier-test-")
		if err != nil {
			realmErr = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		var ps []mitkdc.Principal
		for u, pw := range passwords {
			ps = append(ps, mitkdc.Principal{Name: u, Password: pw, RequiresPreauth: true})
		}
		ps = append(ps, mitkdc.Principal{Name: spnPort}, mitkdc.Principal{Name: spnHost}, mitkdc.Principal{Name: spnElse})
		k, err := mitkdc.Start(ctx, mitkdc.Options{Realm: "LAB.LOCAL", Dir: filepath.Join(dir, "kdc"), Principals: ps, DisableLastSuccess: true})
		if err != nil {
			realmErr = err
			return
		}
		ktPath := filepath.Join(dir, "mssql.keytab")
		if err := k.Keytab(ktPath, spnPort, spnHost); err != nil {
			realmErr = err
			return
		}
		kt, err := keytab.Load(ktPath)
		if err != nil {
			realmErr = err
			return
		}
		realm = &testRealm{kdc: k, dir: dir, keytab: kt, cc: map[string]string{}}
	})
	if realmErr != nil {
		t.Fatalf("lab realm: %v", realmErr)
	}
	return realm
}

// ccache returns an MIT ccache holding user's TGT and service tickets for
// spns (kinit + kvno), made once per (user, spns).
func (r *testRealm) ccache(t testing.TB, user string, spns ...string) string {
	t.Helper()
	key := user + "|" + strings.Join(spns, ",")
	r.ccMu.Lock()
	defer r.ccMu.Unlock()
	if p, ok := r.cc[key]; ok {
		return p
	}
	p := filepath.Join(r.dir, fmt.Sprintf("cc-%s-%d", user, len(r.cc)))
	env := append(os.Environ(), r.kdc.Env()...)
	env = append(env, "KRB5CCNAME=FILE:"+p)
	run := func(stdin string, name string, args ...string) {
		cmd := exec.Command(name, args...)
		cmd.Env = env
		cmd.Stdin = strings.NewReader(stdin)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
	}
	run(passwords[user]+"\n", "kinit", user)
	if len(spns) > 0 {
		run("", "kvno", spns...)
	}
	r.cc[key] = p
	return p
}

// env is the environment for MIT and FreeTDS tools using ccache.
func (r *testRealm) env(ccache string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KRB5") {
			out = append(out, kv)
		}
	}
	out = append(out, r.kdc.Env()...)
	return append(out, "KRB5CCNAME=FILE:"+ccache)
}

// testServer is a running sqltier.Server on loopback.
type testServer struct {
	srv    *Server
	addr   string
	port   string
	events *events.Memory
	cancel context.CancelFunc
	done   chan error
}

func startServer(t testing.TB, kt *keytab.Keytab, mod func(*Config)) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mem := events.NewMemory(0)
	hashes := map[string][]byte{}
	for u, pw := range passwords {
		hashes[u] = ntlm.NTHash(pw)
	}
	cfg := Config{Keytab: kt, Events: mem, Validator: ntlm.LocalAccounts{Domain: "LAB", Hashes: hashes}}
	if testing.Verbose() && os.Getenv("SQLTIER_LOG") != "" {
		cfg.Logger = testLogger(t)
	}
	if mod != nil {
		mod(&cfg)
	}
	s := New(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{srv: s, addr: ln.Addr().String(), events: mem, cancel: cancel, done: make(chan error, 1)}
	_, ts.port, _ = net.SplitHostPort(ts.addr)
	go func() { ts.done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-ts.done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Serve did not return after cancel")
		}
	})
	return ts
}

// dsn is a go-mssqldb DSN using the stock krb5 authenticator and ccache.
// The SPN host is dotted and does not resolve, so the provider's
// canonicalize step leaves it alone (notes §1.2).
func (ts *testServer) dsn(r *testRealm, ccache, spn, extra string) string {
	q := fmt.Sprintf("sqlserver://%s?authenticator=krb5&krb5-configfile=%s&krb5-credcachefile=%s&krb5-dnslookupkdc=false&serverspn=%s&dial+timeout=5&connection+timeout=20",
		ts.addr, r.kdc.Krb5Conf, ccache, spn)
	if extra != "" {
		q += "&" + extra
	}
	return q
}

func openDB(t testing.TB, dsn string) *sql.DB {
	t.Helper()
	c, err := mssql.NewConnector(dsn)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	t.Cleanup(func() { db.Close() })
	return db
}

// waitEvent waits until an event with id shows up (events are emitted after
// the response is written, so the client may see the result first).
func (ts *testServer) waitEvent(t testing.TB, id int) events.Event {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, e := range ts.events.Events() {
			if e.ID == id {
				return e
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no event %d; have %v", id, ts.events.Events())
	return events.Event{}
}

// nextEvent waits for the first event after *cursor (one of ids, or any when
// none are given) and moves the cursor past it.
func (ts *testServer) nextEvent(t testing.TB, cursor *int, ids ...int) events.Event {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		evs := ts.events.Events()
		for ; *cursor < len(evs); *cursor++ {
			if len(ids) == 0 || slices.Contains(ids, evs[*cursor].ID) {
				e := evs[*cursor]
				*cursor++
				return e
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no event %v after #%d; have %v", ids, *cursor, ts.events.Events())
	return events.Event{}
}

// waitEvents waits until n events with id are there and returns them.
func (ts *testServer) waitEvents(t testing.TB, id, n int) []events.Event {
	t.Helper()
	var got []events.Event
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		got = got[:0]
		for _, e := range ts.events.Events() {
			if e.ID == id {
				got = append(got, e)
			}
		}
		if len(got) >= n {
			return got
		}
	}
	t.Fatalf("%d events %d, want %d; have %v", len(got), id, n, ts.events.Events())
	return nil
}
