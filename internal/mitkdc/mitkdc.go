//go:build unix

// Package mitkdc runs MIT krb5kdc (Debian krb5-kdc) on loopback for tests and
// benchmarks: a throw-away realm in a temp dir, no root services, no port 88.
//
// The configuration follows notes/peers.md §2 (the measured LAB.LOCAL set-up);
// file formats are MIT's krb5.conf(5) and kdc.conf(5).
package mitkdc

import (
	"bytes"
	"context"
	"encoding/asn1"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/doublehop/doublehop/internal/peer"
)

// Principal is one account created with kadmin.local addprinc.
type Principal struct {
	Name               string // "bob", "HTTP/web.lab.local"; the realm is appended when missing
	Password           string // "" = -randkey
	RequiresPreauth    bool   // +requires_preauth, else -requires_preauth (kadmin's "-" CLEARS the flag: peers.md §2)
	OKAsDelegate       bool   // +ok_as_delegate
	OKToAuthAsDelegate bool   // +ok_to_auth_as_delegate (S4U2Self forwardable evidence)
}

// Options configures Start.
type Options struct {
	Realm              string // default "LAB.LOCAL"
	Dir                string // working dir (created); "" = a fresh os.MkdirTemp dir, removed by Stop
	Principals         []Principal
	DisableLastSuccess bool // [dbmodules] disable_last_success + disable_lockout: no fsync per AS-REQ (peers.md §3)
	Workers            int  // krb5kdc -w N when N > 1
	TCPBacklog         int  // [kdcdefaults] kdc_tcp_listen_backlog (MIT default 5: overflows under TCP load, peers.md §3)
}

// KDC is a running krb5kdc.
type KDC struct {
	Addr     string // 127.0.0.1:port, the same port on UDP and TCP
	Realm    string
	Krb5Conf string // client krb5.conf pointing at Addr
	KDCConf  string // kdc.conf (KRB5_KDC_PROFILE)
	Dir      string
	LogPath  string // krb5kdc's log file
	PID      int
	Started  time.Duration // how long Start took

	cmd     *exec.Cmd
	exited  chan struct{} // closed when cmd.Wait returns
	rmDir   bool
	stop    sync.Once
	stopErr error
}

// Binary names looked up on PATH and in /usr/sbin (Debian puts the admin tools there).
const (
	binKDC    = "krb5kdc"
	binUtil   = "kdb5_util"
	binKadmin = "kadmin.local"
)

// Tools are the MIT programs a realm needs (the KDC, its database and admin
// tools, the clients).
var Tools = []string{binKDC, binUtil, binKadmin, "kinit", "kvno", "klist"}

// Available reports whether krb5kdc, kdb5_util and kadmin.local are installed.
func Available() bool {
	for _, b := range []string{binKDC, binUtil, binKadmin} {
		if _, err := lookBin(b); err != nil {
			return false
		}
	}
	return true
}

func lookBin(name string) (string, error) { return peer.Look(name) }

// Start creates a realm database, adds the principals and runs `krb5kdc -n`
// on a free loopback port, returning once the KDC answers an AS-REQ over UDP.
func Start(ctx context.Context, opts Options) (*KDC, error) {
	t0 := time.Now()
	if opts.Realm == "" {
		opts.Realm = "LAB.LOCAL"
	}
	kdcBin, err := lookBin(binKDC)
	if err != nil {
		return nil, err
	}
	utilBin, err := lookBin(binUtil)
	if err != nil {
		return nil, err
	}
	kadminBin, err := lookBin(binKadmin)
	if err != nil {
		return nil, err
	}
	k := &KDC{Realm: opts.Realm, exited: make(chan struct{})}
	if opts.Dir == "" {
		d, err := os.MkdirTemp("", "mitkdc-")
		if err != nil {
			return nil, err
		}
		k.Dir, k.rmDir = d, true
	} else {
		d, err := filepath.Abs(opts.Dir)
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
		k.Dir = d
	}
	fail := func(err error) (*KDC, error) {
		if k.rmDir {
			os.RemoveAll(k.Dir)
		}
		return nil, err
	}
	for _, sub := range []string{"kdc", "ccache"} {
		if err := os.MkdirAll(filepath.Join(k.Dir, sub), 0o700); err != nil {
			return fail(err)
		}
	}
	k.Krb5Conf = filepath.Join(k.Dir, "krb5.conf")
	k.KDCConf = filepath.Join(k.Dir, "kdc", "kdc.conf")
	k.LogPath = filepath.Join(k.Dir, "kdc", "kdc.log")
	if err := os.WriteFile(filepath.Join(k.Dir, "kdc", "kadm5.acl"), nil, 0o600); err != nil {
		return fail(err)
	}

	// The database does not depend on the port, so create it once; only the
	// config files are rewritten when a port turns out to be taken.
	port, err := freePort()
	if err != nil {
		return fail(err)
	}
	if err := k.writeConfig(opts, port); err != nil {
		return fail(err)
	}
	// A reused Dir gets a fresh realm: kdb5_util create refuses an existing database.
	olds, _ := filepath.Glob(filepath.Join(k.Dir, "kdc", "principal*"))
	for _, f := range append(olds, filepath.Join(k.Dir, "kdc", "stash")) {
		_ = os.Remove(f)
	}
	if err := k.run(ctx, utilBin, nil, "create", "-s", "-r", k.Realm, "-P", "mitkdc-master-"+k.Realm, "-W"); err != nil {
		return fail(fmt.Errorf("mitkdc: kdb5_util create: %w", err))
	}
	if err := k.addPrincipals(ctx, kadminBin, opts.Principals); err != nil {
		return fail(err)
	}

	// A free port can be taken between freePort and krb5kdc's bind: retry.
	for attempt := 0; ; attempt++ {
		err = k.startKDC(ctx, kdcBin, opts)
		if err == nil {
			break
		}
		if attempt >= 4 || !strings.Contains(err.Error(), "in use") || ctx.Err() != nil {
			return fail(err)
		}
		if port, err = freePort(); err != nil {
			return fail(err)
		}
		if err := k.writeConfig(opts, port); err != nil {
			return fail(err)
		}
	}
	k.Started = time.Since(t0)
	return k, nil
}

// freePort finds a port free on both TCP and UDP 127.0.0.1.
func freePort() (int, error) {
	for i := 0; i < 20; i++ {
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		l.Close()
		if err != nil {
			continue
		}
		u.Close()
		return port, nil
	}
	return 0, errors.New("mitkdc: no free loopback port for TCP+UDP")
}

// writeConfig writes krb5.conf (client) and kdc.conf; see peers.md §2.
func (k *KDC) writeConfig(opts Options, port int) error {
	k.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	dir, realm := k.Dir, k.Realm
	lower := strings.ToLower(realm)
	// udp_preference_limit = 1465 is MIT's default: UDP first for small requests, TCP
	// for large ones or after KRB_ERR_RESPONSE_TOO_BIG (RFC 4120 §7.2.1).
	client := fmt.Sprintf(`[libdefaults]
    default_realm = %[1]s
    dns_lookup_kdc = false
    dns_lookup_realm = false
    dns_canonicalize_hostname = false
    rdns = false
    forwardable = true
    ticket_lifetime = 10h
    udp_preference_limit = 1465
    default_ccache_name = FILE:%[2]s/ccache/krb5cc_%%{uid}
[realms]
    %[1]s = {
        kdc = %[3]s
    }
[domain_realm]
    .%[4]s = %[1]s
    %[4]s = %[1]s
`, realm, dir, k.Addr, lower)
	var kdcd strings.Builder
	fmt.Fprintf(&kdcd, "[kdcdefaults]\n    kdc_listen = %[1]s\n    kdc_tcp_listen = %[1]s\n", k.Addr)
	if opts.TCPBacklog > 0 {
		fmt.Fprintf(&kdcd, "    kdc_tcp_listen_backlog = %d\n", opts.TCPBacklog)
	}
	fmt.Fprintf(&kdcd, `[realms]
    %[1]s = {
        database_name = %[2]s/kdc/principal
        key_stash_file = %[2]s/kdc/stash
        acl_file = %[2]s/kdc/kadm5.acl
        master_key_type = aes256-cts-hmac-sha1-96
        supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal
        default_principal_flags = +preauth
        max_life = 10h 0m 0s
        max_renewable_life = 7d 0h 0m 0s
    }
`, realm, dir)
	if opts.DisableLastSuccess {
		// kdc.conf(5) [dbmodules]: skip the DB2 last_success write (one fsync per AS-REQ).
		fmt.Fprintf(&kdcd, "[dbmodules]\n    %s = {\n        disable_last_success = true\n        disable_lockout = true\n    }\n", realm)
	}
	fmt.Fprintf(&kdcd, "[logging]\n    kdc = FILE:%[1]s/kdc/kdc.log\n    admin_server = FILE:%[1]s/kdc/kadmind.log\n    default = FILE:%[1]s/kdc/krb5lib.log\n", dir)
	if err := os.WriteFile(k.Krb5Conf, []byte(client), 0o644); err != nil {
		return err
	}
	return os.WriteFile(k.KDCConf, []byte(kdcd.String()), 0o600)
}

// Env returns the environment for MIT tools (and gokrb5 programs) that talk
// to this KDC: KRB5_CONFIG, KRB5_KDC_PROFILE, a private KRB5CCNAME and an
// empty replay cache / trace setting.
func (k *KDC) Env() []string {
	return []string{
		"KRB5_CONFIG=" + k.Krb5Conf,
		"KRB5_KDC_PROFILE=" + k.KDCConf,
		"KRB5CCNAME=FILE:" + filepath.Join(k.Dir, "ccache", "krb5cc_default"),
		"KRB5RCACHEDIR=" + k.Dir,
	}
}

// environ is os.Environ with any inherited Kerberos variables replaced by Env.
func (k *KDC) environ() []string {
	var out []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "KRB5") {
			continue
		}
		out = append(out, kv)
	}
	return append(out, k.Env()...)
}

// run runs an admin tool to completion with the realm's environment.
func (k *KDC) run(ctx context.Context, bin string, stdin []byte, args ...string) error {
	_, err := k.runOut(ctx, bin, stdin, args...)
	return err
}

func (k *KDC) runOut(ctx context.Context, bin string, stdin []byte, args ...string) (stderr string, err error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = k.environ()
	cmd.Dir = k.Dir
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	if err != nil {
		return errb.String(), fmt.Errorf("%v: %s%s", err, tail(errb.String(), 1024), tail(out.String(), 512))
	}
	return errb.String(), nil
}

// kadminQuote quotes one kadmin argument. kadmin.local reads its commands with
// the ss library parser: a double-quoted word may hold blanks, and "" inside
// quotes is a literal quote.
func kadminQuote(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// addPrincipals creates every principal with ONE kadmin.local process reading
// commands on stdin (a process per principal costs ~10 ms each). kadmin.local
// exits 0 even when a command fails, so any stderr line other than the
// "No policy specified" notice is an error.
func (k *KDC) addPrincipals(ctx context.Context, kadminBin string, ps []Principal) error {
	if len(ps) == 0 {
		return nil
	}
	var script strings.Builder
	for _, p := range ps {
		if p.Name == "" || strings.ContainsAny(p.Name, "\"\n\r ") {
			return fmt.Errorf("mitkdc: bad principal name %q", p.Name)
		}
		if strings.ContainsAny(p.Password, "\n\r") {
			return fmt.Errorf("mitkdc: password for %s contains a newline", p.Name)
		}
		script.WriteString("addprinc")
		if p.Password == "" {
			script.WriteString(" -randkey")
		} else {
			script.WriteString(" -pw " + kadminQuote(p.Password))
		}
		// kadmin(1) attributes: "+" sets, "-" clears.
		script.WriteString(flagArg(p.RequiresPreauth, "requires_preauth"))
		script.WriteString(flagArg(p.OKAsDelegate, "ok_as_delegate"))
		script.WriteString(flagArg(p.OKToAuthAsDelegate, "ok_to_auth_as_delegate"))
		script.WriteString(" " + p.Name + "\n")
	}
	stderr, err := k.runOut(ctx, kadminBin, []byte(script.String()), "-r", k.Realm)
	if err != nil {
		return fmt.Errorf("mitkdc: kadmin.local addprinc: %w", err)
	}
	if msg := kadminErrors(stderr); msg != "" {
		return fmt.Errorf("mitkdc: kadmin.local addprinc: %s", msg)
	}
	return nil
}

func flagArg(on bool, name string) string {
	if on {
		return " +" + name
	}
	return " -" + name
}

// kadminErrors returns the stderr lines that are not routine notices.
func kadminErrors(stderr string) string {
	var bad []string
	for _, line := range strings.Split(stderr, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "No policy specified for ") {
			continue
		}
		bad = append(bad, line)
		if len(bad) >= 5 {
			break
		}
	}
	return strings.Join(bad, "; ")
}

// Keytab exports the current keys of principals into the keytab at path
// (kadmin.local ktadd -norandkey: the keys and kvno stay as they are).
func (k *KDC) Keytab(path string, principals ...string) error {
	if len(principals) == 0 {
		return errors.New("mitkdc: Keytab needs at least one principal")
	}
	kadminBin, err := lookBin(binKadmin)
	if err != nil {
		return err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	var script strings.Builder
	for _, p := range principals {
		if p == "" || strings.ContainsAny(p, "\"\n\r ") {
			return fmt.Errorf("mitkdc: bad principal name %q", p)
		}
		fmt.Fprintf(&script, "ktadd -k %s -norandkey %s\n", kadminQuote("WRFILE:"+abs), p)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stderr, err := k.runOut(ctx, kadminBin, []byte(script.String()), "-r", k.Realm)
	if err != nil {
		return fmt.Errorf("mitkdc: kadmin.local ktadd: %w", err)
	}
	if msg := kadminErrors(stderr); msg != "" {
		return fmt.Errorf("mitkdc: kadmin.local ktadd: %s", msg)
	}
	return nil
}

// Kadmin runs kadmin.local queries (one command per string, e.g.
// "modprinc +ok_to_auth_as_delegate svc_web") against the realm database.
func (k *KDC) Kadmin(ctx context.Context, queries ...string) error {
	kadminBin, err := lookBin(binKadmin)
	if err != nil {
		return err
	}
	var script strings.Builder
	for _, q := range queries {
		if strings.ContainsAny(q, "\n\r") {
			return fmt.Errorf("mitkdc: kadmin query %q contains a newline", q)
		}
		script.WriteString(q + "\n")
	}
	stderr, err := k.runOut(ctx, kadminBin, []byte(script.String()), "-r", k.Realm)
	if err != nil {
		return fmt.Errorf("mitkdc: kadmin.local: %w", err)
	}
	if msg := kadminErrors(stderr); msg != "" {
		return fmt.Errorf("mitkdc: kadmin.local: %s", msg)
	}
	return nil
}

// startKDC runs krb5kdc in the foreground (-n) and waits until it answers.
func (k *KDC) startKDC(ctx context.Context, kdcBin string, opts Options) error {
	// A fresh log per attempt so that the "in use" check sees this attempt only.
	_ = os.Remove(k.LogPath)
	args := []string{"-n", "-r", k.Realm, "-P", filepath.Join(k.Dir, "kdc", "krb5kdc.pid")}
	if opts.Workers > 1 {
		args = append(args, "-w", strconv.Itoa(opts.Workers))
	}
	cmd := exec.Command(kdcBin, args...)
	cmd.Env = k.environ()
	cmd.Dir = k.Dir
	// A file, not a pipe: -w workers inherit the descriptor, and a pipe would
	// keep cmd.Wait waiting for them.
	outPath := filepath.Join(k.Dir, "kdc", "krb5kdc.out")
	outf, err := os.OpenFile(outPath, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer outf.Close()
	cmd.Stdout, cmd.Stderr = outf, outf
	// Own process group (so a terminal's ^C is not delivered twice) and
	// SIGTERM when the starting thread dies, so a killed test leaves no KDC.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	setPdeathsig(cmd.SysProcAttr, syscall.SIGTERM)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("mitkdc: start krb5kdc: %w", err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()

	deadline := time.NewTimer(15 * time.Second)
	defer deadline.Stop()
	// kill ends the whole group (supervisor and -w workers) of a KDC that failed to start.
	kill := func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	}
	output := func() string {
		b, _ := os.ReadFile(outPath)
		return tail(string(b), 512)
	}
	probe, err := newProbe(k.Realm)
	if err != nil {
		kill()
		return err
	}
	for delay := time.Millisecond; ; {
		if k.probeUDP(probe, 50*time.Millisecond) {
			break
		}
		select {
		case <-exited:
			return fmt.Errorf("mitkdc: krb5kdc exited (%v): %s\nlog: %s", waitErr, output(), k.logTail(2048))
		case <-ctx.Done():
			kill()
			return fmt.Errorf("mitkdc: waiting for krb5kdc: %w", ctx.Err())
		case <-deadline.C:
			kill()
			return fmt.Errorf("mitkdc: krb5kdc did not answer on %s within 15s\nlog: %s", k.Addr, k.logTail(2048))
		case <-time.After(delay):
		}
		if delay < 20*time.Millisecond {
			delay *= 2
		}
	}
	k.cmd, k.PID = cmd, cmd.Process.Pid
	k.exited = exited
	return nil
}

// setPdeathsig sets the Linux-only SysProcAttr.Pdeathsig (prctl
// PR_SET_PDEATHSIG) where the field exists, so the package still builds on
// other Unixes.
func setPdeathsig(a *syscall.SysProcAttr, sig syscall.Signal) {
	if f := reflect.ValueOf(a).Elem().FieldByName("Pdeathsig"); f.IsValid() && f.CanSet() && f.Type() == reflect.TypeOf(sig) {
		f.Set(reflect.ValueOf(sig))
	}
}

// probeUDP sends an AS-REQ and reports whether any Kerberos reply arrived.
func (k *KDC) probeUDP(req []byte, timeout time.Duration) bool {
	c, err := net.Dial("udp4", k.Addr)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write(req); err != nil {
		return false
	}
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	// KRB-ERROR is [APPLICATION 30] (0x7e), AS-REP [APPLICATION 11] (0x6b): RFC 4120 §5.9.1, §5.4.2.
	return err == nil && n > 0 && (buf[0] == 0x7e || buf[0] == 0x6b)
}

// newProbe DER-encodes a minimal AS-REQ (RFC 4120 §5.4.1) for the unknown
// client "mitkdc-probe": the KDC answers KDC_ERR_C_PRINCIPAL_UNKNOWN (6).
func newProbe(realm string) ([]byte, error) {
	// KerberosString is GeneralString (RFC 4120 §5.2.1); the stdlib encoding/asn1
	// cannot emit it, so names and the realm are raw values.
	type principalName struct {
		NameType   int             `asn1:"explicit,tag:0"`
		NameString []asn1.RawValue `asn1:"explicit,tag:1"`
	}
	gs := func(ss ...string) []asn1.RawValue {
		var out []asn1.RawValue
		for _, s := range ss {
			out = append(out, asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagGeneralString, Bytes: []byte(s)})
		}
		return out
	}
	type reqBody struct {
		KDCOptions asn1.BitString `asn1:"explicit,tag:0"`
		CName      principalName  `asn1:"explicit,tag:1"`
		Realm      asn1.RawValue  // [2] built by hand: encoding/asn1 ignores tags on a RawValue
		SName      principalName  `asn1:"explicit,tag:3"`
		Till       time.Time      `asn1:"generalized,explicit,tag:5"`
		Nonce      int            `asn1:"explicit,tag:7"`
		EType      []int          `asn1:"explicit,tag:8"`
	}
	type kdcReq struct {
		PVNO    int     `asn1:"explicit,tag:1"`
		MsgType int     `asn1:"explicit,tag:2"`
		ReqBody reqBody `asn1:"explicit,tag:4"`
	}
	realmDER, err := asn1.Marshal(gs(realm)[0])
	if err != nil {
		return nil, err
	}
	realmField := asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 2, IsCompound: true, Bytes: realmDER}
	body := kdcReq{PVNO: 5, MsgType: 10, ReqBody: reqBody{
		KDCOptions: asn1.BitString{Bytes: []byte{0, 0, 0, 0}, BitLength: 32},
		CName:      principalName{NameType: 1, NameString: gs("mitkdc-probe")},
		Realm:      realmField,
		SName:      principalName{NameType: 2, NameString: gs("krbtgt", realm)},
		Till:       time.Now().UTC().Add(time.Hour).Truncate(time.Second),
		Nonce:      int(time.Now().UnixNano() & 0x7fffffff),
		EType:      []int{18, 17},
	}}
	inner, err := asn1.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("mitkdc: probe: %w", err)
	}
	// AS-REQ ::= [APPLICATION 10] KDC-REQ
	return asn1.Marshal(asn1.RawValue{Class: asn1.ClassApplication, Tag: 10, IsCompound: true, Bytes: inner})
}

// Stop terminates the krb5kdc process Start launched (SIGTERM; SIGKILL after
// 5 s), waits for it, and removes the working dir if Start created it.
func (k *KDC) Stop() error {
	k.stop.Do(func() {
		if k.cmd != nil && k.cmd.Process != nil {
			select {
			case <-k.exited:
			default:
				_ = k.cmd.Process.Signal(syscall.SIGTERM)
				select {
				case <-k.exited:
				case <-time.After(5 * time.Second):
					// Only our own group: the supervisor and its -w workers.
					_ = syscall.Kill(-k.cmd.Process.Pid, syscall.SIGKILL)
					<-k.exited
				}
			}
		}
		if k.rmDir {
			k.stopErr = os.RemoveAll(k.Dir)
		}
	})
	return k.stopErr
}

// Log returns the last max bytes of the KDC log.
func (k *KDC) Log(max int) string { return k.logTail(max) }

func (k *KDC) logTail(max int) string {
	b, err := os.ReadFile(k.LogPath)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	return tail(string(b), max)
}

func tail(s string, max int) string {
	if max > 0 && len(s) > max {
		return "..." + s[len(s)-max:]
	}
	return s
}
