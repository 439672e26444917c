package main

import (
	"context"
	"fmt"
	"io"
	"net"

	"github.com/doublehop/doublehop/webtier"
)

func init() {
	register("web", "run the web tier alone (the intranet site under svc_iispool)", cmdWeb)
}

func cmdWeb(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("web", "web --keytab FILE --kdc HOST:PORT [flags]", stderr)
	sf := addServiceFlags(fs, addTierFlags(fs, "web", ":80", "web.lab.local", "state directory (defaults for --keytab, --settings, --events)"),
		"svc_iispool", "service account keytab", "YAML file with a web: section")
	kdcAddr := fs.String("kdc", "dc.lab.local:88", "KDC address (own TGT, S4U, delegated tickets)")
	resolve := fs.String("resolve", "", "host[:port]=address mappings, comma separated (e.g. sql.lab.local:1433=127.0.0.1:51433)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	tuneGC()
	kt, settings := sf.paths()
	d, err := resolveFlag(*resolve)
	if err != nil {
		return err
	}
	sink, closeSink, err := sf.sink(stdout)
	if err != nil {
		return err
	}
	defer closeSink()
	w := webtier.New(webtier.Config{Keytab: kt, ServiceAccount: *sf.account, Realm: *sf.realm, NetBIOS: *sf.netbios, Host: *sf.host, KDC: *kdcAddr,
		SettingsFile: settings, Dialer: d, MaxSkew: *sf.skew, Events: sink, Logger: sf.logger(stderr), NetlogonAddr: *sf.netlogon})
	ln, err := net.Listen("tcp", *sf.listen)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "web: ready listen=%s account=%s kdc=%s netlogon=%s\n", ln.Addr(), *sf.account, *kdcAddr, *sf.netlogon)
	return w.Serve(ctx, ln)
}
