package lab

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mssql "github.com/microsoft/go-mssqldb"
	_ "github.com/microsoft/go-mssqldb/integratedauth/krb5"
)

func sqlPort(l *Lab) string { return l.SQLAddr[strings.LastIndexByte(l.SQLAddr, ':')+1:] }

// go-mssqldb's stock krb5 authenticator with a cache from `doublehop client
// kinit bob` logs in to the SQL tier and gets LAB\bob / KERBEROS (issue 4).
func TestGoMSSQLStockKrb5WithOurCache(t *testing.T) {
	l := startLab(t, nil)
	ctx := context.Background()
	c := bobClient(t, l, 0)
	if _, err := c.Kinit(ctx, "bob", l.Password("bob")); err != nil {
		t.Fatal(err)
	}
	dsn := fmt.Sprintf("sqlserver://127.0.0.1:%s?database=labdb&authenticator=krb5&krb5-configfile=%s&krb5-credcachefile=%s&krb5-dnslookupkdc=false&serverspn=MSSQLSvc/sql.lab.local:1433&encrypt=disable",
		sqlPort(l), l.Krb5Conf(), c.CCachePath())
	conn, err := mssql.NewConnector(dsn)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	defer db.Close()
	qctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	var login, scheme string
	if err := db.QueryRowContext(qctx, "SELECT SUSER_SNAME()").Scan(&login); err != nil {
		t.Fatalf("login: %v", err)
	}
	if err := db.QueryRowContext(qctx, "SELECT auth_scheme FROM sys.dm_exec_connections WHERE session_id = @@SPID").Scan(&scheme); err != nil {
		t.Fatal(err)
	}
	if login != `LAB\bob` || scheme != "KERBEROS" {
		t.Fatalf("SQL saw %q / %q", login, scheme)
	}
	// Parameterized queries go over RPC sp_executesql.
	var n int
	if err := db.QueryRowContext(qctx, "SELECT COUNT(*) FROM dbo.orders WHERE id > @p1", 0).Scan(&n); err != nil || n != 2 {
		t.Fatalf("rpc query: %d %v", n, err)
	}
}

// FreeTDS tsql (Kerberos via MIT GSSAPI) with a cache from MIT kinit against
// the lab's KDC runs the same queries (issue 4).
func TestTsqlWithMITKinit(t *testing.T) {
	l := startLab(t, nil)
	cc := filepath.Join(t.TempDir(), "cc")
	if out, err := tool(t, l, cc, l.Password("bob")+"\n", "kinit", "bob"); err != nil {
		t.Fatalf("kinit: %v\n%s", err, out)
	}
	dir := t.TempDir()
	conf := fmt.Sprintf("[labsql]\n\thost = 127.0.0.1\n\tport = %s\n\ttds version = 7.4\n\tspn = MSSQLSvc/sql.lab.local:1433\n\trealm = LAB.LOCAL\n", sqlPort(l))
	if err := os.WriteFile(filepath.Join(dir, "freetds.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	os.Setenv("FREETDSCONF", filepath.Join(dir, "freetds.conf"))
	defer os.Unsetenv("FREETDSCONF")
	q := "SELECT SUSER_SNAME()\ngo\nSELECT auth_scheme FROM sys.dm_exec_connections WHERE session_id = @@SPID\ngo\nSELECT id, item FROM dbo.orders\ngo\nquit\n"
	out, err := tool(t, l, cc, q, "tsql", "-S", "labsql")
	if err != nil {
		t.Fatalf("tsql: %v\n%s", err, out)
	}
	mustContain(t, "tsql", out, "LAB\\bob", "KERBEROS", "Contoso laptop")
	// Alice authenticates, but her login is denied: 18456.
	cc2 := filepath.Join(t.TempDir(), "cc")
	tool(t, l, cc2, l.Password("alice")+"\n", "kinit", "alice")
	out, _ = tool(t, l, cc2, q, "tsql", "-S", "labsql")
	mustContain(t, "tsql as alice", out, "18456", "Login failed for user 'LAB\\alice'")
}
