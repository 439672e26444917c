package main

import (
	"context"
	"fmt"
	"io"
	"net"

	"github.com/doublehop/doublehop/krb/kdcclient"
	"github.com/doublehop/doublehop/krb/keytab"
	"github.com/doublehop/doublehop/netlogon"
	"github.com/doublehop/doublehop/ntlm"
	"github.com/doublehop/doublehop/sqltier"
)

func init() {
	register("sql", "run the SQL tier alone (a TDS server under svc_mssqlserver that takes Kerberos logins)", cmdSQL)
}

func cmdSQL(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("sql", "sql --keytab FILE [flags]", stderr)
	sf := addServiceFlags(fs, addTierFlags(fs, "sql", ":1433", "sql.lab.local", "state directory (defaults for --keytab, --settings, --events)"),
		"svc_mssqlserver", "svc_mssqlserver keytab, re-read when it changes", "YAML file with a sql: section (logins, orders), re-read when it changes")
	kdcAddr := fs.String("kdc", "dc.lab.local:88", "KDC address (SQL Server's own logon, for its Netlogon channel)")
	resolve := fs.String("resolve", "", "host[:port]=address mappings, comma separated (e.g. dc.lab.local:445=127.0.0.1:50445)")
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
	d, err := resolveFlag(*resolve)
	if err != nil {
		return err
	}
	ktFile := &keytab.File{Path: kt}
	keys, err := ktFile.Keytab()
	if err != nil {
		return fmt.Errorf("keytab: %w", err)
	}
	var validator ntlm.Validator
	if *sf.netlogon != "" {
		validator = netlogon.NewMemberClient(*sf.netlogon, d, &kdcclient.ServiceLogon{KDC: &kdcclient.Client{Addr: *kdcAddr, Realm: *sf.realm, Dialer: d},
			Account: *sf.account, Keytab: ktFile.Keytab})
	}
	sink, closeSink, err := sf.sink(stdout)
	if err != nil {
		return err
	}
	defer closeSink()
	srv := sqltier.New(sqltier.Config{Keytab: keys, Realm: *sf.realm, NetBIOS: *sf.netbios, Host: *sf.host, ServiceAccount: *sf.account,
		Encryption: encryption, MaxSkew: *sf.skew, Validator: validator, Refresh: sqltier.WatchFiles(settings, kt, *sf.netbios), Events: sink, Logger: sf.logger(stderr)})
	ln, err := net.Listen("tcp", *sf.listen)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "sql: ready listen=%s account=%s encryption=%s netlogon=%s\n", ln.Addr(), *sf.account, encryption, *sf.netlogon)
	return srv.Serve(ctx, ln)
}
