// Package lab wires the tiers into the embedded lab: every tier in one
// process on loopback, sharing a state directory (directory, krb5.conf,
// lab.env, keytabs, event logs). `doublehop up`, the scenario engine and the
// tests use it; the tiers themselves never import each other.
package lab

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/doublehop/doublehop/admin"
	"github.com/doublehop/doublehop/capture"
	"github.com/doublehop/doublehop/dcerpc"
	"github.com/doublehop/doublehop/directory"
	"github.com/doublehop/doublehop/drsuapi"
	"github.com/doublehop/doublehop/epm"
	"github.com/doublehop/doublehop/events"
	"github.com/doublehop/doublehop/internal/atomicfile"
	"github.com/doublehop/doublehop/kdc"
	"github.com/doublehop/doublehop/krb/kdcclient"
	"github.com/doublehop/doublehop/krb/keytab"
	"github.com/doublehop/doublehop/labnet"
	"github.com/doublehop/doublehop/ldapserver"
	"github.com/doublehop/doublehop/netlogon"
	"github.com/doublehop/doublehop/ntds"
	"github.com/doublehop/doublehop/ntlm"
	"github.com/doublehop/doublehop/sqltier"
	"github.com/doublehop/doublehop/webtier"
)

// Options configures an embedded lab.
type Options struct {
	StateDir string         // required
	Lab      *directory.Lab // seed when the state holds no directory yet (default lab)
	Reset    bool           // overwrite the state's directory with Lab (or the default)
	Host     string         // listen address, default 127.0.0.1
	KDCPort  int            // 0: any free port
	WebPort  int
	SQLPort  int
	// NetlogonPort is the DC's pass-through service for NTLM (dc.lab.local:445
	// to the tiers); 0: any free port.
	NetlogonPort int
	// LDAPPort is the DC's LDAP service (dc.lab.local:389 to the tiers); 0:
	// any free port, 389 for tools that only dial 389 (impacket).
	LDAPPort int
	// LDAPSPort is LDAP over TLS (dc.lab.local:636); 0: any free port.
	LDAPSPort int
	// RPCPort is the DC's RPC endpoint mapper (dc.lab.local:135); 0: any
	// free port, 135 for tools that find DRSUAPI through it (Samba's,
	// impacket's). DRSUAPI itself listens on a free port the mapper names.
	RPCPort int
	Logger  *slog.Logger
	Now     func() time.Time
	Capture string // write a pcap of every tier's traffic here (the wire view)
	// ExternalKDC puts the web and SQL tiers in front of another DC of the
	// realm (a Samba AD DC, a Windows one) at this address: the lab starts no
	// KDC, Netlogon or LDAP of its own, and the tiers use the keytabs already
	// in the state directory (KeytabPath), as that DC exported them.
	ExternalKDC string
}

// Lab is a running embedded lab.
type Lab struct {
	StateDir string
	Realm    string
	KDCAddr  string
	Dialer   *labnet.Dialer // lab host names → loopback
	WebAddr  string         // host:port on loopback
	WebURL   string         // http://web.lab.local:PORT/
	SQLAddr  string
	// NetlogonAddr is the DC's secure-channel service (NTLM pass-through),
	// which the tiers reach as dc.lab.local:445.
	NetlogonAddr string
	// LDAPAddr is the DC's LDAP service (the directory with AD's shape),
	// LDAPSAddr the same over TLS.
	LDAPAddr  string
	LDAPSAddr string
	// RPCAddr is the DC's endpoint mapper, DRSAddr its replication
	// interface (drsuapi), which the mapper names.
	RPCAddr, DRSAddr string
	Store            *directory.Store

	host    string
	capture *capture.Writer
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	closers []func() error
	errs    chan error
}

// Paths inside a state directory.
const (
	Krb5ConfFile = "krb5.conf"
	EnvFile      = "lab.env"
	// NTLMUsersFile holds the users' NTLM credentials for gss-ntlmssp.
	NTLMUsersFile = "ntlm-users"
	EventsDir     = "events"
	KeytabsDir    = "keytabs"
	HostsFile     = "hosts"
)

// Start brings the lab up and returns once every tier listens.
func Start(ctx context.Context, opt Options) (*Lab, error) {
	if opt.StateDir == "" {
		return nil, fmt.Errorf("lab: a state directory is required")
	}
	if opt.Host == "" {
		opt.Host = "127.0.0.1"
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	store, err := directory.Open(opt.StateDir, opt.Lab)
	if err != nil {
		return nil, err
	}
	if opt.Reset {
		seed := opt.Lab
		if seed == nil {
			seed = directory.Default()
		}
		if _, err := store.Replace(seed); err != nil {
			return nil, err
		}
	}
	v := store.View()
	ctx, cancel := context.WithCancel(ctx)
	l := &Lab{StateDir: opt.StateDir, Realm: v.Lab.Realm, Store: store, cancel: cancel, errs: make(chan error, 8), host: opt.Host}
	fail := func(err error) (*Lab, error) { l.Close(); return nil, err }

	kdcEvents, err := l.eventLog("kdc")
	if err != nil {
		return fail(err)
	}
	if opt.Capture != "" {
		if l.capture, err = capture.Create(opt.Capture); err != nil {
			return fail(fmt.Errorf("capture: %w", err))
		}
		l.capture.SetLogger(opt.Logger)
		l.closers = append(l.closers, l.capture.Close)
	}
	if opt.ExternalKDC != "" {
		l.KDCAddr = opt.ExternalKDC
	} else {
		k := kdc.New(kdc.Config{Directory: store, Events: kdcEvents, Logger: opt.Logger.With("tier", "kdc"), Now: opt.Now})
		tcp, err := net.Listen("tcp", net.JoinHostPort(opt.Host, fmt.Sprint(opt.KDCPort)))
		if err != nil {
			return fail(fmt.Errorf("kdc: %w", err))
		}
		port := tcp.Addr().(*net.TCPAddr).Port
		udp, err := net.ListenPacket("udp", net.JoinHostPort(opt.Host, fmt.Sprint(port)))
		if err != nil {
			tcp.Close()
			return fail(fmt.Errorf("kdc udp: %w", err))
		}
		l.KDCAddr = tcp.Addr().String()
		l.serve(func() error { return k.Serve(ctx, l.wrap(tcp)) })
		l.serve(func() error { return k.ServePacket(ctx, l.wrapPacket(udp)) })
	}

	// The hosts a lab client resolves to loopback, like a hosts file.
	l.Dialer = labnet.NewEmpty()
	for _, h := range v.Lab.Hosts {
		l.Dialer.Map(h.Name, opt.Host)
		l.Dialer.Map(h.Short, opt.Host)
	}
	if opt.ExternalKDC == "" {
		nl, err := l.startNetlogon(ctx, opt, v, kdcEvents)
		if err != nil {
			return fail(err)
		}
		if err := l.startLDAP(ctx, opt, v, kdcEvents, nl); err != nil {
			return fail(err)
		}
		if err := l.startRPC(ctx, opt, v, kdcEvents, nl); err != nil {
			return fail(err)
		}
	}
	if err := l.startSQL(ctx, opt, v); err != nil {
		return fail(err)
	}
	if err := l.startWeb(ctx, opt, v); err != nil {
		return fail(err)
	}
	if err := l.writeFiles(v); err != nil {
		return fail(err)
	}
	return l, nil
}

// NetlogonPort is the port the tiers dial for the DC's Netlogon service.
const NetlogonPort = 445

// startNetlogon runs the DC's pass-through validation (package netlogon):
// the web and SQL tiers send NTLM responses there, never holding a hash.
func (l *Lab) startNetlogon(ctx context.Context, opt Options, v *directory.View, ev events.Sink) (*netlogon.Server, error) {
	dc := v.Lab.HostByRole("kdc")
	if dc == nil {
		return nil, nil
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(opt.Host, fmt.Sprint(opt.NetlogonPort)))
	if err != nil {
		return nil, fmt.Errorf("netlogon: %w", err)
	}
	l.NetlogonAddr = ln.Addr().String()
	l.Dialer.Map(fmt.Sprintf("%s:%d", dc.Name, NetlogonPort), l.NetlogonAddr)
	l.Dialer.Map(fmt.Sprintf("%s:%d", dc.Short, NetlogonPort), l.NetlogonAddr)
	nl := netlogon.New(netlogon.Config{Directory: l.Store, Host: dc.Name, Events: ev, Logger: opt.Logger.With("tier", "netlogon"), Now: opt.Now})
	l.serve(func() error { return nl.Serve(ctx, l.wrap(ln)) })
	return nl, nil
}

// LDAPPort and LDAPSPort are the DC's LDAP ports for the tiers and tools.
const (
	LDAPPort  = 389
	LDAPSPort = 636
)

// startLDAP runs the DC's LDAP face on the same directory the KDC serves;
// NTLM binds are validated by the DC's own Netlogon logic.
func (l *Lab) startLDAP(ctx context.Context, opt Options, v *directory.View, ev events.Sink, nl *netlogon.Server) error {
	dc := v.Lab.HostByRole("kdc")
	if dc == nil {
		return nil
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(opt.Host, fmt.Sprint(opt.LDAPPort)))
	if err != nil {
		return fmt.Errorf("ldap: %w", err)
	}
	l.LDAPAddr = ln.Addr().String()
	l.Dialer.Map(fmt.Sprintf("%s:%d", dc.Name, LDAPPort), l.LDAPAddr)
	l.Dialer.Map(fmt.Sprintf("%s:%d", dc.Short, LDAPPort), l.LDAPAddr)
	cfg := ldapserver.Config{Directory: l.Store, Host: dc.Name, Account: dc.Account, Events: ev, Logger: opt.Logger.With("tier", "ldap"), Now: opt.Now}
	if nl != nil {
		cfg.NTLM = nl
	}
	srv, err := ldapserver.New(cfg)
	if err != nil {
		ln.Close()
		return err
	}
	l.serve(func() error { return srv.Serve(ctx, l.wrap(ln)) })
	tln, err := net.Listen("tcp", net.JoinHostPort(opt.Host, fmt.Sprint(opt.LDAPSPort)))
	if err != nil {
		return fmt.Errorf("ldaps: %w", err)
	}
	l.LDAPSAddr = tln.Addr().String()
	l.Dialer.Map(fmt.Sprintf("%s:%d", dc.Name, LDAPSPort), l.LDAPSAddr)
	l.Dialer.Map(fmt.Sprintf("%s:%d", dc.Short, LDAPSPort), l.LDAPSAddr)
	l.serve(func() error { return srv.ServeLDAPS(ctx, l.wrap(tln)) })
	return nil
}

// RPCPort is the DC's endpoint mapper port.
const RPCPort = 135

// startRPC runs the DC's DCE/RPC: the endpoint mapper and, on a port of its
// own that the mapper names (a Windows DC's dynamic endpoint), the
// replication interface. Callers authenticate with NTLM (validated by the
// DC's own Netlogon logic) or Kerberos (tickets for the DC's account).
func (l *Lab) startRPC(ctx context.Context, opt Options, v *directory.View, ev events.Sink, nl *netlogon.Server) error {
	dc := v.Lab.HostByRole("kdc")
	if dc == nil {
		return nil
	}
	drsLn, err := net.Listen("tcp", net.JoinHostPort(opt.Host, "0"))
	if err != nil {
		return fmt.Errorf("drsuapi: %w", err)
	}
	epmLn, err := net.Listen("tcp", net.JoinHostPort(opt.Host, fmt.Sprint(opt.RPCPort)))
	if err != nil {
		drsLn.Close()
		return fmt.Errorf("rpc endpoint mapper: %w", err)
	}
	l.RPCAddr, l.DRSAddr = epmLn.Addr().String(), drsLn.Addr().String()
	l.Dialer.Map(fmt.Sprintf("%s:%d", dc.Name, RPCPort), l.RPCAddr)
	l.Dialer.Map(fmt.Sprintf("%s:%d", dc.Short, RPCPort), l.RPCAddr)
	lg := opt.Logger.With("tier", "rpc")
	drs := drsuapi.New(drsuapi.Config{Directory: l.Store, Host: dc.Name, Account: dc.Account, Events: ev, Logger: lg, Now: opt.Now})
	mapper := &epm.Mapper{}
	mapper.Register(epm.Endpoint{Syntax: drsuapi.Syntax, Port: drsLn.Addr().(*net.TCPAddr).Port, Annotation: "MS NT Directory DRS Interface"})
	sec := dcerpc.Security{NTLMServer: ntlm.MemberServer(v.Lab.NetBIOS, v.Lab.Realm, dc.Name, strings.TrimSuffix(dc.Account, "$"), opt.Now),
		Kerberos: ntds.NewDCAcceptor(l.Store, dc.Account, opt.Now).Acceptor}
	if nl != nil {
		sec.NTLM = nl
	}
	cfg := dcerpc.Config{Security: sec, Host: dc.Name, Tier: "kdc", Account: dc.Account, Events: ev, Logger: lg, Now: opt.Now}
	cfg.Interfaces = []*dcerpc.Interface{mapper.Interface()}
	epmSrv := dcerpc.New(cfg)
	cfg.Interfaces = []*dcerpc.Interface{drs.Interface(), mapper.Interface()}
	drsSrv := dcerpc.New(cfg)
	l.serve(func() error { return epmSrv.Serve(ctx, l.wrap(epmLn)) })
	l.serve(func() error { return drsSrv.Serve(ctx, l.wrap(drsLn)) })
	return nil
}

// netlogonTarget is the DC's Netlogon address as the tiers name it.
func netlogonTarget(v *directory.View) string {
	if dc := v.Lab.HostByRole("kdc"); dc != nil {
		return fmt.Sprintf("%s:%d", dc.Name, NetlogonPort)
	}
	return ""
}

// startWeb runs the web tier under svc_iispool with its exported keytab.
func (l *Lab) startWeb(ctx context.Context, opt Options, v *directory.View) error {
	h := v.Lab.HostByRole("web")
	if h == nil {
		return nil
	}
	kt := l.KeytabPath("web")
	if _, err := os.Stat(kt); opt.ExternalKDC == "" && (os.IsNotExist(err) || opt.Reset) {
		if err := ExportKeytab(l.Store, h.RunsAs, kt); err != nil {
			return fmt.Errorf("web keytab: %w", err)
		}
	}
	ev, err := l.eventLog("web")
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(opt.Host, fmt.Sprint(opt.WebPort)))
	if err != nil {
		return fmt.Errorf("web: %w", err)
	}
	l.WebAddr = ln.Addr().String()
	_, port, _ := net.SplitHostPort(l.WebAddr)
	l.WebURL = "http://" + h.Name + ":" + port + "/"
	w := webtier.New(webtier.Config{Keytab: kt, ServiceAccount: h.RunsAs, Realm: v.Lab.Realm, NetBIOS: v.Lab.NetBIOS, Host: h.Name,
		KDC: l.KDCAddr, SettingsFile: l.Store.Path(), Dialer: l.Dialer, Events: ev, Logger: opt.Logger.With("tier", "web"), Now: opt.Now,
		MaxSkew: v.Lab.Policy.MaxSkew.D(), NetlogonAddr: netlogonTarget(v)})
	l.serve(func() error { return w.Serve(ctx, l.wrap(ln)) })
	return nil
}

// startSQL runs the SQL tier under svc_mssqlserver; sql.lab.local:<port>
// resolves to it for the other tiers.
func (l *Lab) startSQL(ctx context.Context, opt Options, v *directory.View) error {
	h := v.Lab.HostByRole("sql")
	if h == nil {
		return nil
	}
	ktPath := l.KeytabPath("sql")
	if _, err := os.Stat(ktPath); opt.ExternalKDC == "" && (os.IsNotExist(err) || opt.Reset) {
		if err := ExportKeytab(l.Store, h.RunsAs, ktPath); err != nil {
			return fmt.Errorf("sql keytab: %w", err)
		}
	}
	ktFile := &keytab.File{Path: ktPath}
	kt, err := ktFile.Keytab()
	if err != nil {
		return fmt.Errorf("sql keytab: %w", err)
	}
	ev, err := l.eventLog("sql")
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(opt.Host, fmt.Sprint(opt.SQLPort)))
	if err != nil {
		return fmt.Errorf("sql: %w", err)
	}
	l.SQLAddr = ln.Addr().String()
	port := h.Port
	if port == 0 {
		port = 1433
	}
	l.Dialer.Map(fmt.Sprintf("%s:%d", h.Name, port), l.SQLAddr)
	l.Dialer.Map(fmt.Sprintf("%s:%d", h.Short, port), l.SQLAddr)
	var validator ntlm.Validator
	if target := netlogonTarget(v); target != "" {
		validator = netlogon.NewMemberClient(target, l.Dialer, &kdcclient.ServiceLogon{KDC: &kdcclient.Client{Addr: l.KDCAddr, Realm: v.Lab.Realm, Now: opt.Now},
			Account: h.RunsAs, Keytab: ktFile.Keytab})
	}
	srv := sqltier.New(sqltier.Config{Keytab: kt, Realm: v.Lab.Realm, NetBIOS: v.Lab.NetBIOS, Host: h.Name, ServiceAccount: h.RunsAs, Validator: validator,
		Refresh: sqltier.WatchFiles(l.Store.Path(), ktPath, v.Lab.NetBIOS), Events: ev, Logger: opt.Logger.With("tier", "sql"), Now: opt.Now,
		MaxSkew: v.Lab.Policy.MaxSkew.D()})
	l.serve(func() error { return srv.Serve(ctx, l.wrap(ln)) })
	return nil
}

// wrap records a listener's traffic when the lab captures.
func (l *Lab) wrap(ln net.Listener) net.Listener {
	if l.capture == nil {
		return ln
	}
	return l.capture.Listener(ln)
}

func (l *Lab) wrapPacket(pc net.PacketConn) net.PacketConn {
	if l.capture == nil {
		return pc
	}
	return l.capture.PacketConn(pc)
}

// TsharkArgs are the options tshark needs to dissect and decrypt a capture of
// this lab (its ports are not the standard ones).
func (l *Lab) TsharkArgs(keytab string) []string {
	port := func(addr string) string { return addr[strings.LastIndexByte(addr, ':')+1:] }
	args := []string{"-d", "tcp.port==" + port(l.KDCAddr) + ",kerberos", "-d", "udp.port==" + port(l.KDCAddr) + ",kerberos"}
	if l.WebAddr != "" {
		args = append(args, "-d", "tcp.port=="+port(l.WebAddr)+",http")
	}
	if l.SQLAddr != "" {
		args = append(args, "-d", "tcp.port=="+port(l.SQLAddr)+",tds")
	}
	if keytab != "" {
		args = append(args, "-o", "kerberos.decrypt:TRUE", "-o", "kerberos.file:"+keytab)
	}
	return args
}

// KeytabPath is where the lab keeps a tier's keytab.
func (l *Lab) KeytabPath(tier string) string {
	return filepath.Join(l.StateDir, KeytabsDir, tier+".keytab")
}

// CCachePath is the workstation's default credential cache in this lab.
func (l *Lab) CCachePath() string { return filepath.Join(l.StateDir, "ccache", "krb5cc") }

func (l *Lab) serve(f func() error) {
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		if err := f(); err != nil {
			l.errs <- err
		}
	}()
}

// eventLog opens STATE/events/<tier>.jsonl.
func (l *Lab) eventLog(tier string) (events.Sink, error) {
	w, err := events.OpenFile(filepath.Join(l.StateDir, EventsDir, tier+".jsonl"))
	if err != nil {
		return nil, err
	}
	l.closers = append(l.closers, w.Close)
	return w, nil
}

// Krb5Conf is the path of the lab's krb5.conf (usable as KRB5_CONFIG).
func (l *Lab) Krb5Conf() string { return filepath.Join(l.StateDir, Krb5ConfFile) }

// Env is the path of lab.env.
func (l *Lab) Env() string { return filepath.Join(l.StateDir, EnvFile) }

// Password returns an account's current password from the directory.
func (l *Lab) Password(account string) string {
	if a := l.Store.View().Lab.Account(account); a != nil {
		return a.Password
	}
	return ""
}

// Events reads the merged timeline.
func (l *Lab) Events() ([]events.Event, error) {
	return events.ReadDir(filepath.Join(l.StateDir, EventsDir))
}

// Err returns a channel that reports a tier that stopped with an error.
func (l *Lab) Err() <-chan error { return l.errs }

// Close stops every tier and waits for them.
func (l *Lab) Close() error {
	if l.cancel != nil {
		l.cancel()
	}
	l.wg.Wait()
	for _, c := range l.closers {
		c()
	}
	return nil
}

func (l *Lab) writeFiles(v *directory.View) error {
	conf := Krb5Conf(v.Lab.Realm, l.KDCAddr, "", v.Lab.Policy.AllowRC4)
	if err := atomicfile.WriteFile(l.Krb5Conf(), []byte(conf), 0o644); err != nil {
		return err
	}
	env := map[string]string{
		"DOUBLEHOP_STATE":          l.StateDir,
		"DOUBLEHOP_REALM":          v.Lab.Realm,
		"DOUBLEHOP_KDC":            l.KDCAddr,
		"DOUBLEHOP_BOB_PASSWORD":   l.Password("bob"),
		"DOUBLEHOP_ALICE_PASSWORD": l.Password("alice"),
		"KRB5_CONFIG":              l.Krb5Conf(),
		"KRB5CCNAME":               l.CCachePath(), // a plain path: MIT (FILE: is its default) and impacket both read it
	}
	if l.WebAddr != "" {
		env["DOUBLEHOP_WEB_ADDR"], env["DOUBLEHOP_WEB_URL"] = l.WebAddr, l.WebURL
	}
	if l.SQLAddr != "" {
		env["DOUBLEHOP_SQL_ADDR"] = l.SQLAddr
	}
	if l.LDAPAddr != "" {
		env["DOUBLEHOP_LDAP"] = "ldap://" + l.LDAPAddr
	}
	if l.LDAPSAddr != "" {
		env["DOUBLEHOP_LDAPS"] = "ldaps://" + l.LDAPSAddr
	}
	if l.NetlogonAddr != "" {
		env["DOUBLEHOP_NETLOGON_ADDR"] = l.NetlogonAddr
	}
	// Users' NTLM credentials in gss-ntlmssp's format: with
	// NTLM_USER_FILE=$DOUBLEHOP_NTLM_USER_FILE, MIT's SPNEGO falls back to
	// NTLM when Kerberos cannot be used, as Windows' Negotiate does.
	var users strings.Builder
	for _, a := range v.Lab.Accounts {
		if a.Type == "user" && a.Password != "" {
			fmt.Fprintf(&users, "%s:%s:%s\n", v.Lab.NetBIOS, a.Name, a.Password)
		}
	}
	ntlmUsers := filepath.Join(l.StateDir, NTLMUsersFile)
	if err := atomicfile.WriteFile(ntlmUsers, []byte(users.String()), 0o600); err != nil {
		return err
	}
	env["DOUBLEHOP_NTLM_USER_FILE"] = ntlmUsers
	var hosts strings.Builder
	hosts.WriteString("# lab host names for clients of the embedded lab (hosts-file format)\n")
	for _, h := range v.Lab.Hosts {
		fmt.Fprintf(&hosts, "%s %s %s\n", l.host, h.Name, h.Short)
	}
	if err := atomicfile.WriteFile(filepath.Join(l.StateDir, HostsFile), []byte(hosts.String()), 0o644); err != nil {
		return err
	}
	return writeEnv(l.Env(), env)
}

// writeEnv writes a sourceable KEY='value' file.
func writeEnv(path string, env map[string]string) error {
	var keys []string
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("# doublehop lab: source this file (. ./lab.env) to use MIT tools against the lab\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "export %s='%s'\n", k, strings.ReplaceAll(env[k], "'", `'\''`))
	}
	return atomicfile.WriteFile(path, []byte(b.String()), 0o600)
}

// Admin runs one admin command (setspn, account, delegation, policy, dns; as
// on the CLI, verb first) on the running lab's directory and returns what it
// printed. The KDC and the tiers see the change on their next request.
func (l *Lab) Admin(args ...string) (string, error) {
	var out strings.Builder
	err := admin.Run(l.Store, args, &out)
	return out.String(), err
}

// ExportKeytab writes an account's keys to path (what an admin does with ktpass).
func ExportKeytab(store *directory.Store, account, path string) error {
	entries, err := store.View().KeytabEntries(account)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return atomicfile.WriteFile(path, keytab.Marshal(entries), 0o600)
}

// ExportAllKeytab writes every account's keys to one keytab (the wire view:
// tshark -o kerberos.decrypt:TRUE -o kerberos.file:KEYTAB decrypts every ticket).
func ExportAllKeytab(store *directory.Store, path string) (int, error) {
	v := store.View()
	var all []keytab.Entry
	for _, a := range v.Lab.Accounts {
		entries, err := v.KeytabEntries(a.Name)
		if err != nil {
			continue
		}
		all = append(all, entries...)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return 0, err
	}
	return len(all), atomicfile.WriteFile(path, keytab.Marshal(all), 0o600)
}
