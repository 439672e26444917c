package main

import (
	"context"
	"fmt"
	"io"
	"net"

	"github.com/doublehop/doublehop/krb/keytab"
	"github.com/doublehop/doublehop/sqltier"
)

func init() {
	register("sql", "run the SQL tier alone (a TDS server under svc_mssqlserver that takes Kerberos logins)", cmdSQL)
}

func cmdSQL(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("sql", "sql --keytab FILE [flags]", stderr)
	sf := addServiceFlags(fs, addTierFlags(fs, "sql", ":1433", "sql.lab.local", "state directory (defaults for --keytab, --settings, --events)"),
		"svc_mssqlserver", "svc_mssqlserver keytab, re-read when it changes", "YAML file with a sql: section (logins, orders), re-read when it changes")
	enc := fs.String("encryption", "not-supported", "PRELOGIN encryption: not-supported, off (login-only TLS on request), on (forced TLS), strict (TDS 8)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	tuneGC()
	kt, settings := sf.paths()
	encryption, err := sqltier.ParseEncryption(*enc)
	if err != nil {
		return err
	}
	entries, err := keytab.Load(kt)
	if err != nil {
		return fmt.Errorf("keytab: %w", err)
	}
	keys, err := keytab.Gokrb5(entries)
	if err != nil {
		return err
	}
	sink, closeSink, err := sf.sink(stdout)
	if err != nil {
		return err
	}
	defer closeSink()
	srv := sqltier.New(sqltier.Config{Keytab: keys, Realm: *sf.realm, NetBIOS: *sf.netbios, Host: *sf.host, ServiceAccount: *sf.account,
		Encryption: encryption, MaxSkew: *sf.skew, Refresh: sqltier.WatchFiles(settings, kt, *sf.netbios), Events: sink, Logger: sf.logger(stderr)})
	ln, err := net.Listen("tcp", *sf.listen)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "sql: ready listen=%s account=%s encryption=%s\n", ln.Addr(), *sf.account, encryption)
	return srv.Serve(ctx, ln)
}
