package lab

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/doublehop/doublehop/client"
	"github.com/doublehop/doublehop/directory"
	"github.com/doublehop/doublehop/events"
	"github.com/doublehop/doublehop/krb/kdcclient"
	"github.com/doublehop/doublehop/krb/kerr"
	"github.com/doublehop/doublehop/krb/kmsg"
	"github.com/doublehop/doublehop/ntlm"
	"github.com/jcmturner/gokrb5/v8/types"
	mssql "github.com/microsoft/go-mssqldb"
)

// No password, long-term key or session key appears in any log line or
// event the lab writes, even at debug level, across a run with failures.
func TestNoSecretsInLogsOrEvents(t *testing.T) {
	var logs bytes.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	l, err := Start(ctx, Options{StateDir: t.TempDir(), Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	c := bobClient(t, l, 0)
	c.Kinit(ctx, "bob", "wrong password")
	if _, err := c.Kinit(ctx, "bob", l.Password("bob")); err != nil {
		t.Fatal(err)
	}
	for _, opt := range []client.GetOptions{{}, {Delegate: client.DelegateAlways}} {
		if _, err := c.Get(ctx, l.WebURL, opt); err != nil {
			t.Fatal(err)
		}
	}
	// NTLM: the fallback by IP address (validated by the DC over Netlogon for
	// the site), and a wrong NTLM password at SQL Server.
	if r, err := c.Get(ctx, "http://"+l.WebAddr+"/", client.GetOptions{}); err != nil || r.Mechanism != "NTLM" {
		t.Fatalf("NTLM by IP: %v %v", r, err)
	}
	if c, err := mssql.NewConnector("sqlserver://" + l.SQLAddr + "?authenticator=ntlm&user+id=LAB%5Cbob&password=wrong&dial+timeout=5"); err == nil {
		sql.OpenDB(c).PingContext(ctx)
	}
	directory.Modify(l.Store, "svc_iispool", func(_ *directory.Lab, a *directory.Account) error { a.Delegation.Mode = "none"; return nil })
	c.Get(ctx, l.WebURL, client.GetOptions{})
	cc, err := c.Cache()
	if err != nil {
		t.Fatal(err)
	}
	var secrets []string
	add := func(b []byte) {
		secrets = append(secrets, hex.EncodeToString(b), strings.ToUpper(hex.EncodeToString(b)), base64.StdEncoding.EncodeToString(b))
	}
	v := l.Store.View()
	for _, a := range v.Lab.Accounts {
		secrets = append(secrets, a.Password)
		add(ntlm.NTHash(a.Password)) // what NTLM proves knowledge of
		e, _ := v.Account(a.Name)
		for _, k := range e.Keys {
			add(k.KeyValue)
		}
	}
	for _, cr := range cc.Credentials {
		add(cr.Key.KeyValue) // session keys the KDC issued to Bob
	}
	l.Close()
	written := logs.String()
	files, _ := filepath.Glob(filepath.Join(l.StateDir, EventsDir, "*.jsonl"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		written += string(b)
	}
	if len(written) < 1000 {
		t.Fatalf("the run wrote almost nothing (%d bytes): the test would prove nothing", len(written))
	}
	for _, s := range secrets {
		if len(s) >= 8 && strings.Contains(written, s) {
			t.Errorf("a secret appears in the logs or events: %.12s…", s)
		}
	}
}

// AS-REP without pre-authentication only when the lab file says so, and the
// event says why that is dangerous.
func TestNoPreauthOnlyWhenConfigured(t *testing.T) {
	l := startLab(t, nil)
	kc := &kdcclient.Client{Addr: l.KDCAddr, Realm: "LAB.LOCAL"}
	ask := func() ([]byte, error) {
		b, _, _ := kmsg.ASRequest{Realm: "LAB.LOCAL", Client: types.PrincipalName{NameType: 1, NameString: []string{"bob"}}}.Marshal()
		return kdcclient.SendTCP(context.Background(), nil, kc.Addr, b)
	}
	if _, err := ask(); !isCode(err, kerr.KDC_ERR_PREAUTH_REQUIRED) {
		t.Fatalf("default: want KDC_ERR_PREAUTH_REQUIRED, got %v", err)
	}
	directory.Modify(l.Store, "bob", func(_ *directory.Lab, a *directory.Account) error { a.DontRequirePreauth = true; return nil })
	rep, err := ask()
	if err != nil || len(rep) == 0 || rep[0] != 0x6b {
		t.Fatalf("DONT_REQ_PREAUTH: want an AS-REP, got %v", err)
	}
	if e, ok := findEvent(t, l, func(e events.Event) bool { return e.ID == 4768 && e.Reason == "NO_PREAUTH" }); !ok || !strings.Contains(e.Message, "crackable") {
		t.Fatalf("the 4768 event must name the danger: %+v", e)
	}
}

func isCode(err error, c kerr.Code) bool {
	got, ok := kerr.CodeOf(err)
	return ok && got == c
}
