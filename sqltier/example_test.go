package sqltier_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	mssql "github.com/microsoft/go-mssqldb"

	"github.com/doublehop/doublehop/events"
	"github.com/doublehop/doublehop/krb/kcrypto"
	"github.com/doublehop/doublehop/krb/keytab"
	"github.com/doublehop/doublehop/krb/kmsg"
	"github.com/doublehop/doublehop/sqltier"
)

// The SQL tier as `doublehop sql` runs it, under svc_mssqlserver's key, and
// a client that tries SQL authentication (go-mssqldb prefixes "login error:"): like a SQL Server in Windows
// authentication mode, the tier refuses it with 18456 (the errorlog's state
// is 58; clients always see state 1), and logs the failure as an event.
func Example() {
	key, _ := kcrypto.StringToKey("Svc-Passw0rd!", "LAB.LOCALsvc_mssqlserver", kcrypto.ETypeAES256SHA1)
	kt, _ := keytab.Gokrb5([]keytab.Entry{{Principal: kmsg.Principal{NameType: 1, Components: []string{"svc_mssqlserver"}, Realm: "LAB.LOCAL"}, KVNO: 1, Key: key}})
	evs := &events.Memory{}
	srv := sqltier.New(sqltier.Config{
		Keytab:     kt,
		Realm:      "LAB.LOCAL",
		NetBIOS:    "LAB",
		ServerName: "SQL",
		Host:       "sql.lab.local",
		Encryption: sqltier.EncryptionNotSupported, // or EncryptionOff/On/Strict
		Events:     evs,
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go srv.Serve(ctx, ln)

	db, _ := sql.Open("sqlserver", fmt.Sprintf("sqlserver://sa:secret@%s?encrypt=disable&dial+timeout=5", ln.Addr()))
	defer db.Close()
	var e mssql.Error
	if errors.As(db.PingContext(ctx), &e) {
		fmt.Printf("Msg %d, Level %d, State %d: %s\n", e.Number, e.Class, e.State, e.Message)
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if got := evs.Events(); len(got) > 0 {
			fmt.Println("event", got[0].ID, got[0].State, got[0].Login)
			break
		}
	}
	// Output:
	// Msg 18456, Level 14, State 1: login error: Login failed for user 'sa'.
	// event 18456 58 sa
}
