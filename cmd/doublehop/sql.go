package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"time"

	"github.com/doublehop/doublehop/krb/keytab"
	"github.com/doublehop/doublehop/lab"
	"github.com/doublehop/doublehop/sqltier"
)

func init() {
	register("sql", "run the SQL tier alone (a TDS server under svc_mssqlserver that takes Kerberos logins)", cmdSQL)
}

func cmdSQL(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("sql", "sql --keytab FILE [flags]", stderr)
	state := fs.String("state", defaultState(), "state directory (defaults for --keytab, --settings, --events)")
	kt := fs.String("keytab", "", "svc_mssqlserver keytab (default STATE/keytabs/sql.keytab); re-read when it changes")
	settings := fs.String("settings", "", "YAML file with a sql: section (logins, orders; default STATE/directory.yaml), re-read when it changes")
	account := fs.String("account", "svc_mssqlserver", "service account the server runs as")
	realm := fs.String("realm", "LAB.LOCAL", "Kerberos realm")
	netbios := fs.String("netbios", "LAB", "NetBIOS domain name (logins are NETBIOS\\user)")
	host := fs.String("host", "sql.lab.local", "this host's name (events, certificate)")
	listen := fs.String("listen", ":1433", "listen address")
	enc := fs.String("encryption", "not-supported", "PRELOGIN encryption: not-supported, off (login-only TLS on request), on (forced TLS), strict (TDS 8)")
	evPath := fs.String("events", "", "event log (JSON lines); \"-\" for stdout; default STATE/events/sql.jsonl")
	level := fs.String("log-level", "info", "log level")
	skew := fs.Duration("max-skew", 5*time.Minute, "allowed clock skew for Kerberos authenticators (the lab's policy.max_skew)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	tuneGC()
	if *kt == "" {
		*kt = filepath.Join(*state, lab.KeytabsDir, "sql.keytab")
	}
	if *settings == "" {
		*settings = filepath.Join(*state, "directory.yaml")
	}
	encryption, err := sqltier.ParseEncryption(*enc)
	if err != nil {
		return err
	}
	entries, err := keytab.Load(*kt)
	if err != nil {
		return fmt.Errorf("keytab: %w", err)
	}
	keys, err := keytab.Gokrb5(entries)
	if err != nil {
		return err
	}
	sink, closeSink, err := openSink(*evPath, filepath.Join(*state, lab.EventsDir, "sql.jsonl"), stdout)
	if err != nil {
		return err
	}
	defer closeSink()
	srv := sqltier.New(sqltier.Config{Keytab: keys, Realm: *realm, NetBIOS: *netbios, Host: *host, ServiceAccount: *account,
		Encryption: encryption, MaxSkew: *skew, Refresh: sqltier.WatchFiles(*settings, *kt, *netbios), Events: sink, Logger: logger(stderr, *level)})
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "sql: ready listen=%s account=%s encryption=%s\n", ln.Addr(), *account, encryption)
	return srv.Serve(ctx, ln)
}
