package sqltier_test

import (
	"context"
	"log"
	"log/slog"
	"net"
	"os"

	"github.com/doublehop/doublehop/events"
	"github.com/doublehop/doublehop/sqltier"
	"github.com/jcmturner/gokrb5/v8/keytab"
)

// The SQL tier as `doublehop sql` would run it: svc_mssqlserver's keytab
// (both MSSQLSvc SPNs), the lab's defaults, events appended to a JSON-lines
// file the other tiers share.
func Example() {
	kt, err := keytab.Load("/lab/keytabs/svc_mssqlserver.keytab")
	if err != nil {
		log.Fatal(err)
	}
	evs, err := events.OpenFile("/lab/events/sql.jsonl")
	if err != nil {
		log.Fatal(err)
	}
	defer evs.Close()
	srv := sqltier.New(sqltier.Config{
		Keytab:     kt,
		Realm:      "LAB.LOCAL",
		NetBIOS:    "LAB",
		ServerName: "SQL",
		Host:       "sql.lab.local",
		Encryption: sqltier.EncryptionNotSupported, // or EncryptionOff/On/Strict
		Events:     evs,
		Logger:     slog.New(slog.NewTextHandler(os.Stderr, nil)),
	})
	ln, err := net.Listen("tcp", ":1433")
	if err != nil {
		log.Fatal(err)
	}
	if err := srv.Serve(context.Background(), ln); err != nil {
		log.Fatal(err)
	}
}
