package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"time"

	"github.com/doublehop/doublehop/lab"
	"github.com/doublehop/doublehop/webtier"
)

func init() {
	register("web", "run the web tier alone (the intranet site under svc_iispool)", cmdWeb)
}

func cmdWeb(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("web", "web --keytab FILE --kdc HOST:PORT [flags]", stderr)
	state := fs.String("state", defaultState(), "state directory (defaults for --keytab, --settings, --events)")
	kt := fs.String("keytab", "", "service account keytab (default STATE/keytabs/web.keytab)")
	account := fs.String("account", "svc_iispool", "service account the site runs as")
	realm := fs.String("realm", "LAB.LOCAL", "Kerberos realm")
	netbios := fs.String("netbios", "LAB", "NetBIOS domain name")
	kdcAddr := fs.String("kdc", "dc.lab.local:88", "KDC address (own TGT, S4U, delegated tickets)")
	settings := fs.String("settings", "", "YAML file with a web: section (default STATE/directory.yaml)")
	listen := fs.String("listen", ":80", "listen address")
	host := fs.String("host", "web.lab.local", "this host's name (events)")
	resolve := fs.String("resolve", "", "host[:port]=address mappings, comma separated (e.g. sql.lab.local:1433=127.0.0.1:51433)")
	evPath := fs.String("events", "", "event log (JSON lines); \"-\" for stdout; default STATE/events/web.jsonl")
	level := fs.String("log-level", "info", "log level")
	skew := fs.Duration("max-skew", 5*time.Minute, "allowed clock skew for Kerberos authenticators (the lab's policy.max_skew)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	tuneGC()
	if *kt == "" {
		*kt = filepath.Join(*state, lab.KeytabsDir, "web.keytab")
	}
	if *settings == "" {
		*settings = filepath.Join(*state, "directory.yaml")
	}
	d, err := resolveFlag(*resolve)
	if err != nil {
		return err
	}
	sink, closeSink, err := openSink(*evPath, filepath.Join(*state, lab.EventsDir, "web.jsonl"), stdout)
	if err != nil {
		return err
	}
	defer closeSink()
	w := webtier.New(webtier.Config{Keytab: *kt, ServiceAccount: *account, Realm: *realm, NetBIOS: *netbios, Host: *host, KDC: *kdcAddr,
		SettingsFile: *settings, Dialer: d, MaxSkew: *skew, Events: sink, Logger: logger(stderr, *level)})
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "web: ready listen=%s account=%s kdc=%s\n", ln.Addr(), *account, *kdcAddr)
	return w.Serve(ctx, ln)
}
