package sqltier

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/doublehop/doublehop/events"
	mssql "github.com/microsoft/go-mssqldb"
)

func TestGoMSSQLBob(t *testing.T) {
	r := labRealm(t)
	ts := startServer(t, r.keytab, nil)
	db := openDB(t, ts.dsn(r, r.ccache(t, "bob", spnPort), spnPort, "database=labdb"))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	var who, user, scheme string
	var one int
	if err := db.QueryRowContext(ctx, "SELECT SUSER_SNAME()").Scan(&who); err != nil {
		t.Fatalf("SUSER_SNAME: %v", err)
	}
	if who != `LAB\bob` {
		t.Errorf("SUSER_SNAME() = %q", who)
	}
	if err := db.QueryRowContext(ctx, "SELECT SYSTEM_USER").Scan(&user); err != nil || user != `LAB\bob` {
		t.Errorf("SYSTEM_USER = %q, %v", user, err)
	}
	if err := db.QueryRowContext(ctx, "SELECT auth_scheme FROM sys.dm_exec_connections WHERE session_id = @@SPID").Scan(&scheme); err != nil || scheme != "KERBEROS" {
		t.Errorf("auth_scheme = %q, %v", scheme, err)
	}
	if err := db.PingContext(ctx); err != nil {
		t.Errorf("ping: %v", err)
	}
	if err := db.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Errorf("SELECT 1 = %d, %v", one, err)
	}
	// The same over RPC (sp_executesql): go-mssqldb uses it whenever there are arguments.
	if err := db.QueryRowContext(ctx, "SELECT SUSER_SNAME(), @p1", "x").Scan(&who, &user); err != nil || who != `LAB\bob` || user != "x" {
		t.Errorf("RPC SUSER_SNAME() = %q %q, %v", who, user, err)
	}
	if err := db.QueryRowContext(ctx, "SELECT auth_scheme FROM sys.dm_exec_connections WHERE session_id = @@SPID AND 1 = @p1", 1).Scan(&scheme); err != nil || scheme != "KERBEROS" {
		t.Errorf("RPC auth_scheme = %q, %v", scheme, err)
	}
	// Bob's rows only.
	rows, err := db.QueryContext(ctx, "SELECT id, customer, item, amount FROM dbo.orders ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	var ids []int
	for rows.Next() {
		var id int
		var cust, item string
		var amount float64
		if err := rows.Scan(&id, &cust, &item, &amount); err != nil {
			t.Fatal(err)
		}
		if cust != `LAB\bob` {
			t.Errorf("row of %s visible to bob", cust)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(ids) != 3 {
		t.Errorf("bob sees orders %v, want 3", ids)
	}
	var n int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM orders WHERE amount > @p1", 100).Scan(&n); err != nil || n != 2 {
		t.Errorf("COUNT(*) = %d, %v", n, err)
	}
	// Delegation evidence view.
	var principal, svc, flags, deleg string
	var fwd bool
	if err := db.QueryRowContext(ctx, "SELECT client_principal, service_principal, ticket_flags, forwarded, delegation FROM lab.connection_info").Scan(&principal, &svc, &flags, &fwd, &deleg); err != nil {
		t.Fatal(err)
	}
	if principal != "bob@LAB.LOCAL" || svc != spnPort+"@LAB.LOCAL" || fwd || deleg != "none" {
		t.Errorf("connection_info = %q %q %q %v %q", principal, svc, flags, fwd, deleg)
	}
	ev := ts.waitEvent(t, events.SQLLoginSuccess)
	if ev.Login != `LAB\bob` || ev.AuthScheme != "KERBEROS" || ev.Client != "bob@LAB.LOCAL" || ev.Service != spnPort || ev.Host != "sql.lab.local" || ev.Tier != "sql" {
		t.Errorf("success event = %+v", ev)
	}
}

func TestGoMSSQLErrors(t *testing.T) {
	r := labRealm(t)
	ts := startServer(t, r.keytab, nil)
	db := openDB(t, ts.dsn(r, r.ccache(t, "bob", spnPort), spnPort, ""))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, tc := range []struct {
		sql    string
		args   []any
		number int32
		text   string
	}{
		{"SELECT * FROM nope", nil, 208, "Invalid object name 'nope'."},
		{"SELECT * FROM dbo.nope WHERE id = @p1", []any{1}, 208, "Invalid object name 'dbo.nope'."},
		{"SELECT x FROM", nil, 156, "Incorrect syntax near the keyword 'FROM'."},
		{"SELECT 1 +", nil, 40517, "Keyword or statement option 'operator +' is not supported"},
		{"SELECT 1 1", nil, 102, "Incorrect syntax near '1'."},
		{"SELEKT 1", nil, 2812, "Could not find stored procedure 'SELEKT'."},
		{"SELECT 1 FROM dbo.orders WHERE", nil, 156, "Incorrect syntax near the keyword 'WHERE'."},
		{"SELECT nope FROM dbo.orders", nil, 207, "Invalid column name 'nope'."},
		{"DELETE FROM dbo.orders", nil, 229, "The DELETE permission was denied on the object 'orders', database 'labdb', schema 'dbo'."},
		{"SELECT @x", nil, 137, `Must declare the scalar variable "@x".`},
		{"CREATE TABLE t (i int)", nil, 40517, "Keyword or statement option 'CREATE' is not supported in this version of SQL Server."},
		{"SELECT * FROM [other].labdb.dbo.orders", nil, 7202, "Could not find server 'other' in sys.servers."},
		{"SELECT 'abc", nil, 105, "Unclosed quotation mark after the character string 'abc'."},
	} {
		rows, err := db.QueryContext(ctx, tc.sql, tc.args...)
		if err == nil {
			for rows.Next() {
			}
			err = rows.Err()
			rows.Close()
		}
		var me mssql.Error
		if !errors.As(err, &me) {
			t.Errorf("%s: err = %v, want mssql.Error %d", tc.sql, err, tc.number)
			continue
		}
		if me.Number != tc.number || !strings.HasPrefix(me.Message, tc.text) {
			t.Errorf("%s: got %d %q, want %d %q", tc.sql, me.Number, me.Message, tc.number, tc.text)
		}
	}
	// The connection survives errors.
	var one int
	if err := db.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		t.Fatal(err)
	}
}

// TestGoMSSQLLoginFailures covers alice (denied), carol (no login), no
// credential (ANONYMOUS LOGON), a ticket for an SPN of another account, and
// SQL authentication on this Windows-only server.
func TestGoMSSQLLoginFailures(t *testing.T) {
	r := labRealm(t)
	ts := startServer(t, r.keytab, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	login := func(dsn string) error {
		db := openDB(t, dsn)
		return db.PingContext(ctx)
	}
	expect := func(name string, err error, number int32, text string) {
		t.Helper()
		var me mssql.Error
		if !errors.As(err, &me) {
			t.Errorf("%s: err = %v, want %d", name, err, number)
			return
		}
		if me.Number != number || !strings.Contains(me.Message, text) {
			t.Errorf("%s: got %d %q, want %d %q", name, me.Number, me.Message, number, text)
		}
	}
	cursor := len(ts.events.Events())
	// The login events (SQL Server's 17806 comes before 18452; it is checked where it matters).
	lastEvent := func() events.Event {
		return ts.nextEvent(t, &cursor, events.SQLLoginFailed, events.SQLUntrustedDomain, events.SQLLoginSuccess)
	}

	err := login(ts.dsn(r, r.ccache(t, "alice", spnPort), spnPort, ""))
	expect("alice", err, 18456, `Login failed for user 'LAB\alice'.`)
	if ev := lastEvent(); ev.ID != events.SQLLoginFailed || ev.State != 12 || ev.Login != `LAB\alice` || ev.Client != "alice@LAB.LOCAL" {
		t.Errorf("alice event = %+v", ev)
	}

	err = login(ts.dsn(r, r.ccache(t, "carol", spnPort), spnPort, ""))
	expect("carol", err, 18456, `Login failed for user 'LAB\carol'.`)
	if ev := lastEvent(); ev.State != 11 || !strings.Contains(ev.Message, "Token-based server access validation failed") {
		t.Errorf("carol event = %+v", ev)
	}

	// The stock ntlm authenticator with a wrong password: the DC refuses,
	// SQL Server logs 17806 and answers 18452.
	err = login("sqlserver://" + ts.addr + "?authenticator=ntlm&user+id=LAB%5Cbob&password=x&dial+timeout=5")
	expect("ntlm", err, 18452, "untrusted domain")
	sspi := ts.nextEvent(t, &cursor, events.SQLSSPIFailed)
	if ev := lastEvent(); ev.ID != events.SQLUntrustedDomain || ev.AuthScheme != "NTLM" || ev.Status != "0xC000006A" ||
		sspi.Status != "0xC000006A" || !strings.Contains(sspi.Message, "SSPI handshake failed with error code 0x8009030c, state 14") {
		t.Errorf("wrong-password NTLM events = %+v, then %+v", sspi, ev)
	}

	// A ticket for another account's SPN, presented to this server.
	err = login(ts.dsn(r, r.ccache(t, "bob", spnElse), spnElse, ""))
	expect("wrong account", err, 18452, "untrusted domain")
	if ev := lastEvent(); ev.ID != events.SQLUntrustedDomain || ev.CodeName != "KRB_AP_ERR_MODIFIED" || ev.Service != spnElse {
		t.Errorf("wrong-account event = %+v", ev)
	}

	// SQL authentication.
	err = login("sqlserver://" + ts.addr + "?user+id=sa&password=secret&dial+timeout=5")
	expect("sql auth", err, 18456, "Login failed for user 'sa'.")
	if ev := lastEvent(); ev.State != 58 || ev.AuthScheme != "SQL" {
		t.Errorf("sql auth event = %+v", ev)
	}

	// A database that does not exist: 4060, then 18456 (go-mssqldb reports the last one).
	err = login(ts.dsn(r, r.ccache(t, "bob", spnPort), spnPort, "database=nodb"))
	expect("database", err, 18456, `Login failed for user 'LAB\bob'.`)
	var me mssql.Error
	if errors.As(err, &me) && (len(me.All) != 2 || me.All[0].Number != 4060 || me.All[0].Message != `Cannot open database "nodb" requested by the login. The login failed.`) {
		t.Errorf("database errors = %+v", me.All)
	}
	if ev := lastEvent(); ev.State != 38 {
		t.Errorf("database event = %+v", ev)
	}
}

// TestGoMSSQLCancelAndTx: a cancelled query sends ATTENTION and the pooled
// connection stays usable; BeginTx/Commit/Rollback go through TransMgr.
func TestGoMSSQLCancelAndTx(t *testing.T) {
	r := labRealm(t)
	ts := startServer(t, r.keytab, nil)
	db := openDB(t, ts.dsn(r, r.ccache(t, "bob", spnPort), spnPort, ""))
	db.SetMaxOpenConns(1)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	start := time.Now()
	_, err := db.ExecContext(ctx, "WAITFOR DELAY '00:00:20'")
	if err == nil || time.Since(start) > 10*time.Second {
		t.Fatalf("cancelled WAITFOR: %v after %v", err, time.Since(start))
	}
	bg, cancel2 := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel2()
	var spid1, spid2 int
	if err := db.QueryRowContext(bg, "SELECT @@SPID").Scan(&spid1); err != nil {
		t.Fatalf("after cancel: %v", err)
	}
	tx, err := db.BeginTx(bg, nil)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := tx.QueryRowContext(bg, "SELECT @@TRANCOUNT").Scan(&n); err != nil || n != 1 {
		t.Errorf("in tx: @@TRANCOUNT = %d, %v", n, err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	tx, err = db.BeginTx(bg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	// Pooled connection reuse sends RESETCONNECTION; same session.
	if err := db.QueryRowContext(bg, "SELECT @@SPID").Scan(&spid2); err != nil || spid2 != spid1 {
		t.Errorf("spid %d then %d, %v", spid1, spid2, err)
	}
}
