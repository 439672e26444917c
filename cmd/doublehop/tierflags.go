package main

import (
	"flag"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/doublehop/doublehop/events"
	"github.com/doublehop/doublehop/lab"
)

// tierFlags are the flags every server command (kdc, web, sql) shares.
type tierFlags struct {
	role   string
	state  *string
	listen *string
	host   *string
	events *string
	level  *string
}

func addTierFlags(fs *flag.FlagSet, role, listen, host, stateHelp string) *tierFlags {
	return &tierFlags{role: role,
		state:  fs.String("state", defaultState(), stateHelp),
		listen: fs.String("listen", listen, "listen address"),
		host:   fs.String("host", host, "this host's name (events)"),
		events: fs.String("events", "", "event log (JSON lines); \"-\" for stdout; default STATE/events/"+role+".jsonl"),
		level:  fs.String("log-level", "info", "log level"),
	}
}

// sink opens the tier's event log: "-" is stdout (container logs).
func (t *tierFlags) sink(stdout io.Writer) (events.Sink, func() error, error) {
	if *t.events == "-" {
		return events.NewJSONWriter(stdout), func() error { return nil }, nil
	}
	path := *t.events
	if path == "" {
		path = filepath.Join(*t.state, lab.EventsDir, t.role+".jsonl")
	}
	w, err := events.OpenFile(path)
	if err != nil {
		return nil, nil, err
	}
	return w, w.Close, nil
}

func (t *tierFlags) logger(stderr io.Writer) *slog.Logger { return logger(stderr, *t.level) }

// serviceFlags are the flags of a tier that runs under a service account and
// accepts Kerberos with its keytab (web, sql).
type serviceFlags struct {
	*tierFlags
	keytab   *string
	settings *string
	account  *string
	realm    *string
	netbios  *string
	skew     *time.Duration
	netlogon *string
}

func addServiceFlags(fs *flag.FlagSet, t *tierFlags, account, keytabHelp, settingsHelp string) *serviceFlags {
	return &serviceFlags{tierFlags: t,
		keytab:   fs.String("keytab", "", keytabHelp+" (default STATE/keytabs/"+t.role+".keytab)"),
		settings: fs.String("settings", "", settingsHelp+" (default STATE/directory.yaml)"),
		account:  fs.String("account", account, "service account the tier runs as"),
		realm:    fs.String("realm", "LAB.LOCAL", "Kerberos realm"),
		netbios:  fs.String("netbios", "LAB", "NetBIOS domain name (logins are NETBIOS\\user)"),
		skew:     fs.Duration("max-skew", 5*time.Minute, "allowed clock skew for Kerberos authenticators (the lab's policy.max_skew)"),
		netlogon: fs.String("netlogon", "dc.lab.local:445", "the DC's Netlogon service, where NTLM logons are validated (\"\" = none: every NTLM logon fails as with no DC)"),
	}
}

// paths fills the keytab and settings defaults from the state directory.
func (s *serviceFlags) paths() (keytab, settings string) {
	keytab, settings = *s.keytab, *s.settings
	if keytab == "" {
		keytab = filepath.Join(*s.state, lab.KeytabsDir, s.role+".keytab")
	}
	if settings == "" {
		settings = filepath.Join(*s.state, "directory.yaml")
	}
	return keytab, settings
}

// hostList is a repeatable flag.
type hostList []string

func (h *hostList) String() string     { return strings.Join(*h, ",") }
func (h *hostList) Set(v string) error { *h = append(*h, v); return nil }
