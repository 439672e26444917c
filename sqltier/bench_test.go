package sqltier

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/doublehop/doublehop/krb/ccache"
	"github.com/doublehop/doublehop/krb/gss"
	"github.com/doublehop/doublehop/krb/kmsg"
	"github.com/doublehop/doublehop/sqltier/tds"
	mssql "github.com/microsoft/go-mssqldb"
)

// BenchmarkLoginQuery: one op = a new go-mssqldb connection (PRELOGIN,
// LOGIN7 with a fresh SPNEGO token from the MIT ccache, LOGINACK), one
// SELECT SUSER_SNAME(), close. Client and server share the 2 cores.
//
// The SPN has no port: go-mssqldb's krb5 provider then skips its
// canonicalize step, which does a DNS CNAME lookup per connection (with a
// port in the SPN, an unanswered DNS query stalls a login for 5 s).
func BenchmarkLoginQuery(b *testing.B) {
	r := labRealm(b)
	ts := startServer(b, r.keytab, nil)
	db := openDB(b, ts.dsn(r, r.ccache(b, "bob", spnHost), spnHost, ""))
	db.SetMaxIdleConns(0) // every query logs in again
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var who string
		if err := db.QueryRowContext(ctx, "SELECT SUSER_SNAME()").Scan(&who); err != nil || who != `LAB\bob` {
			b.Fatalf("%q %v", who, err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "logins/s")
}

// BenchmarkLoginQueryParallel is BenchmarkLoginQuery from several goroutines.
// Two gokrb5 authenticators made in the same microsecond for the same
// client and service look like a replay to an acceptor that keys its cache
// on (client, service, ctime, cusec): those logins fail with
// KRB_AP_ERR_REPEAT and are counted, not fatal.
func BenchmarkLoginQueryParallel(b *testing.B) {
	r := labRealm(b)
	ts := startServer(b, r.keytab, nil)
	db := openDB(b, ts.dsn(r, r.ccache(b, "bob", spnHost), spnHost, ""))
	db.SetMaxIdleConns(0)
	ctx := context.Background()
	var refused atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			var who string
			if err := db.QueryRowContext(ctx, "SELECT SUSER_SNAME()").Scan(&who); err != nil {
				var me mssql.Error
				if errors.As(err, &me) && me.Number == 18452 {
					refused.Add(1)
					continue
				}
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "logins/s")
	b.ReportMetric(float64(refused.Load()), "replay-refusals")
}

// BenchmarkRawLoginQuery: the server side of a login with a light client:
// TCP connect, PRELOGIN, LOGIN7 (SPNEGO token built in-process), one batch.
func BenchmarkRawLoginQuery(b *testing.B) {
	r := labRealm(b)
	ts := startServer(b, r.keytab, nil)
	cc, err := ccache.Load(r.ccache(b, "bob", spnPort))
	if err != nil {
		b.Fatal(err)
	}
	pn, realm := kmsg.ParsePrincipal(spnPort + "@LAB.LOCAL")
	entry, _ := cc.Find(kmsg.NewPrincipal(pn, realm))
	cred, err := entry.Credential()
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tok, _, err := gss.InitiatorToken(cred, gss.InitiatorOptions{Flags: 0x30, SPNEGO: true, Now: time.Now()})
		if err != nil {
			b.Fatal(err)
		}
		c := dialRaw(b, ts.addr)
		c.prelogin()
		if !hasLoginAck(c.login(tds.Version74, tok)) {
			b.Fatal("login failed")
		}
		if rows := findRows(c.batch("SELECT SUSER_SNAME()")); len(rows) != 1 {
			b.Fatal(rows)
		}
		c.nc.Close()
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "logins/s")
}

// BenchmarkQuery: round trips on one logged-in go-mssqldb connection.
func BenchmarkQuery(b *testing.B) {
	r := labRealm(b)
	ts := startServer(b, r.keytab, nil)
	db := openDB(b, ts.dsn(r, r.ccache(b, "bob", spnPort), spnPort, ""))
	db.SetMaxOpenConns(1)
	ctx := context.Background()
	for _, q := range []struct {
		name, sql string
		args      []any
	}{
		{"batch", "SELECT auth_scheme FROM sys.dm_exec_connections WHERE session_id = @@SPID", nil},
		{"rpc", "SELECT item FROM dbo.orders WHERE id = @p1", []any{2}},
	} {
		b.Run(q.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				var s string
				if err := db.QueryRowContext(ctx, q.sql, q.args...).Scan(&s); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "queries/s")
		})
	}
}
