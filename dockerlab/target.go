package dockerlab

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/doublehop/doublehop/client"
	"github.com/doublehop/doublehop/directory"
	"github.com/doublehop/doublehop/events"
	"github.com/doublehop/doublehop/krb/kdcclient"
	"github.com/doublehop/doublehop/provision"
	"github.com/doublehop/doublehop/scenarios"
	"github.com/doublehop/doublehop/webtier"
)

// The container lab is a scenarios.Target: the scenario engine drives it
// through the same surfaces a person uses (admin commands in the DC, a
// workstation, the tiers' files, their logs).
var _ scenarios.Target = (*Lab)(nil)

func (l *Lab) tier(role string) (*Tier, error) {
	t := l.Tiers[role]
	if t == nil || t.ID == "" {
		return nil, fmt.Errorf("lab %s has no %s tier", l.Name, role)
	}
	return t, nil
}

// Exec runs the doublehop binary with args in a tier's container (role kdc,
// web, sql or client), the way `docker exec CONTAINER /doublehop ARGS` does.
func (l *Lab) Exec(ctx context.Context, role string, stdin io.Reader, args ...string) (ExecResult, error) {
	t, err := l.tier(role)
	if err != nil {
		return ExecResult{}, err
	}
	return execIn(ctx, l.cli, t.ID, append([]string{Binary}, args...), stdin)
}

// Admin implements scenarios.Target: the admin command runs in the DC
// container on its directory (as an admin runs setspn on the DC), then the web
// and SQL tiers get their settings sections again if the change touched them.
func (l *Lab) Admin(ctx context.Context, args []string) (string, error) {
	if len(args) == 0 {
		return "", fmt.Errorf("admin: no command")
	}
	defer l.forgetZone()
	cmd := append([]string{args[0], "--state", StateDir}, args[1:]...)
	r, err := l.Exec(ctx, RoleKDC, nil, cmd...)
	if err != nil {
		return "", err
	}
	out := r.Stdout
	if serr := l.SyncSettings(ctx); serr != nil {
		return out, fmt.Errorf("after %s: %w", args[0], serr)
	}
	if r.ExitCode != 0 {
		msg := strings.TrimSpace(r.Stderr)
		msg = strings.TrimPrefix(msg, "doublehop "+args[0]+": ")
		if msg == "" {
			msg = fmt.Sprintf("exit status %d", r.ExitCode)
		}
		return out, errors.New(msg)
	}
	return out, nil
}

// directoryRaw reads the directory file from the DC.
func (l *Lab) directoryRaw(ctx context.Context) ([]byte, error) {
	t, err := l.tier(RoleKDC)
	if err != nil {
		return nil, err
	}
	return copyOut(ctx, l.cli, t.ID, DirectoryYML)
}

// View implements scenarios.Target: the DC's directory as it is now.
func (l *Lab) View(ctx context.Context) (*directory.View, error) {
	raw, err := l.directoryRaw(ctx)
	if err != nil {
		return nil, err
	}
	return l.viewOf(raw)
}

func (l *Lab) viewOf(raw []byte) (*directory.View, error) {
	l.mu.Lock()
	if l.view != nil && l.viewRaw == string(raw) {
		v := l.view
		l.mu.Unlock()
		return v, nil
	}
	l.mu.Unlock()
	lf, err := directory.Parse(raw)
	if err != nil {
		return nil, err
	}
	v, err := directory.ViewOf(lf)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.view, l.viewRaw = v, string(raw)
	l.mu.Unlock()
	return v, nil
}

// SyncSettings copies the web and SQL tiers' settings sections from the DC's
// directory into their containers when they changed (the tiers re-read them,
// as IIS re-reads web.config).
func (l *Lab) SyncSettings(ctx context.Context) error {
	raw, err := l.directoryRaw(ctx)
	if err != nil {
		return err
	}
	v, err := l.viewOf(raw)
	if err != nil {
		return err
	}
	return l.pushSettings(ctx, v.Lab)
}

func (l *Lab) pushSettings(ctx context.Context, lf *directory.Lab) error {
	for _, role := range []string{RoleWeb, RoleSQL} {
		t := l.Tiers[role]
		if t == nil {
			continue
		}
		b, err := provision.SettingsFor(lf, role)
		if err != nil {
			return err
		}
		l.mu.Lock()
		same := l.pushed[role] == string(b)
		l.mu.Unlock()
		if same {
			continue
		}
		if err := copyIn(ctx, l.cli, t.ID, File{Path: SettingsPath(role), Content: b, Mode: 0o644}); err != nil {
			return fmt.Errorf("%s settings: %w", role, err)
		}
		l.mu.Lock()
		l.pushed[role] = string(b)
		l.mu.Unlock()
	}
	return nil
}

// Keytab implements scenarios.Target: "refresh" and "restore" copy the
// account's current keys into the tier's container, "remove" leaves it an
// empty keytab (the web tier answers 503, the SQL tier keeps the keys it has).
func (l *Lab) Keytab(ctx context.Context, op, role string) error {
	t, err := l.tier(role)
	if err != nil || (role != RoleWeb && role != RoleSQL) {
		return fmt.Errorf("no tier %q with a keytab", role)
	}
	var content []byte
	switch op {
	case "refresh", "restore":
		v, err := l.View(ctx)
		if err != nil {
			return err
		}
		h := v.Lab.HostByRole(role)
		if h == nil || h.RunsAs == "" {
			return fmt.Errorf("no tier %q", role)
		}
		if content, err = provision.KeytabFor(v, h.RunsAs); err != nil {
			return err
		}
	case "remove":
		content = []byte{}
	default:
		return fmt.Errorf("keytab %s: want refresh, remove or restore", op)
	}
	return copyIn(ctx, l.cli, t.ID, File{Path: KeytabPath(role), Content: content, Mode: 0o600})
}

// ExportKeytab returns an account's current keys as a keytab (MIT kvno -k,
// tshark decryption, a service under test).
func (l *Lab) ExportKeytab(ctx context.Context, account string) ([]byte, error) {
	v, err := l.View(ctx)
	if err != nil {
		return nil, err
	}
	return provision.KeytabFor(v, account)
}

// Reset implements scenarios.Target: the DC gets the lab file (default when
// nil), web and SQL their settings and freshly exported keytabs, and the host
// workstations forget their tickets.
func (l *Lab) Reset(ctx context.Context, lf *directory.Lab) error {
	defer l.forgetZone()
	if lf == nil {
		lf = l.base
		if lf == nil {
			lf = directory.Default()
		}
	}
	raw, err := lf.Marshal()
	if err != nil {
		return err
	}
	v, err := l.viewOf(raw)
	if err != nil {
		return err
	}
	dc, err := l.tier(RoleKDC)
	if err != nil {
		return err
	}
	if err := copyIn(ctx, l.cli, dc.ID, File{Path: DirectoryYML, Content: raw, Mode: 0o600}); err != nil {
		return err
	}
	for _, role := range []string{RoleWeb, RoleSQL} {
		t := l.Tiers[role]
		h := v.Lab.HostByRole(role)
		if t == nil || h == nil {
			continue
		}
		kt, err := provision.KeytabFor(v, h.RunsAs)
		if err != nil {
			return err
		}
		if err := copyIn(ctx, l.cli, t.ID, File{Path: KeytabPath(role), Content: kt, Mode: 0o600}); err != nil {
			return err
		}
	}
	if err := l.pushSettings(ctx, v.Lab); err != nil {
		return err
	}
	// The host workstations start over: no tickets, and no event log (a
	// workstation whose clock a scenario moved stamps its events in the
	// future, where they would follow every later scenario).
	l.mu.Lock()
	if l.hostEv != nil {
		l.hostEv.Close()
		l.hostEv = nil
	}
	l.mu.Unlock()
	os.Remove(filepath.Join(l.StateDir, "events", "client.jsonl"))
	os.RemoveAll(l.ccacheDir)
	return os.MkdirAll(l.ccacheDir, 0o700)
}

// Client implements scenarios.Target: a workstation on this host whose names
// resolve through the published ports (SPNs stay the lab's real host names).
// Its events join the timeline as ws01's.
func (l *Lab) Client(user string, offset time.Duration) (*client.Client, error) {
	if user == "" {
		user = "bob"
	}
	// ws01's clock: the step's offset plus the lab's client_clock_offset.
	now := func() time.Time { return time.Now().Add(offset + l.zone().Policy.ClientClockOffset.D()) }
	cfg := client.Config{CCache: filepath.Join(l.ccacheDir, "krb5cc_"+user), Dialer: l.dialer,
		Now: now, Host: l.hostName(RoleClient), Resolver: directory.ZoneResolver{Lab: l.zone}}
	if err := client.FromKrb5Conf(l.Krb5Conf(), &cfg); err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.hostEv == nil {
		w, err := events.OpenFile(filepath.Join(l.StateDir, "events", "client.jsonl"))
		if err != nil {
			return nil, err
		}
		l.hostEv = w
	}
	cfg.Events = l.hostEv
	return client.New(cfg), nil
}

// zone is the DC's DNS zone as it is now (read from the DC container;
// cached while the directory does not change). An unreadable directory is
// an empty zone: names then resolve as the hosts file has them.
func (l *Lab) zone() *directory.Lab {
	l.mu.Lock()
	z := l.zoneLab
	l.mu.Unlock()
	if z != nil {
		return z
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := l.View(ctx)
	if err != nil {
		return &directory.Lab{}
	}
	l.mu.Lock()
	l.zoneLab = v.Lab
	l.mu.Unlock()
	return v.Lab
}

func (l *Lab) forgetZone() {
	l.mu.Lock()
	l.zoneLab = nil
	l.mu.Unlock()
}

// URL implements scenarios.Target: URLs stay as typed (http://web.lab.local/);
// the workstation's dialer reaches the published port.
func (l *Lab) URL(raw string) (string, error) {
	if _, err := url.Parse(raw); err != nil {
		return "", err
	}
	return raw, nil
}

// KDC implements scenarios.Target.
func (l *Lab) KDC() (string, kdcclient.Dialer) {
	return l.hostName(RoleKDC) + ":88", l.dialer
}

// Events implements scenarios.Target: one timeline from the tiers' container
// logs (their events are JSON lines on stdout), ws01's client log and the
// host workstations'. It reads until two reads agree, so events still in the
// engine's log pipeline are not missed.
func (l *Lab) Events(ctx context.Context) ([]events.Event, error) {
	var prev []events.Event
	for i := 0; i < 20; i++ {
		evs, err := l.readEvents(ctx)
		if err != nil {
			return nil, err
		}
		if i > 0 && len(evs) == len(prev) {
			return evs, nil
		}
		prev = evs
		select {
		case <-ctx.Done():
			return prev, nil
		case <-time.After(25 * time.Millisecond):
		}
	}
	return prev, nil
}

func (l *Lab) readEvents(ctx context.Context) ([]events.Event, error) {
	var all []events.Event
	for _, role := range []string{RoleKDC, RoleWeb, RoleSQL} {
		t := l.Tiers[role]
		if t == nil {
			continue
		}
		out, _, err := logsOf(ctx, l.cli, t.ID, true, false, "")
		if err != nil {
			return nil, fmt.Errorf("%s events: %w", role, err)
		}
		evs, err := events.Read(strings.NewReader(out))
		if err != nil {
			return nil, err
		}
		all = append(all, evs...)
	}
	if t := l.Tiers[RoleClient]; t != nil {
		if b, err := copyOut(ctx, l.cli, t.ID, ClientState+"/events/client.jsonl"); err == nil {
			evs, _ := events.Read(bytes.NewReader(b))
			all = append(all, evs...)
		}
	}
	if l.StateDir != "" {
		if evs, err := events.ReadDir(filepath.Join(l.StateDir, "events")); err == nil {
			all = append(all, evs...)
		}
	}
	events.Sort(all)
	return all, nil
}

// Logs returns a tier's log (stderr: the ready line, warnings, errors).
func (l *Lab) Logs(ctx context.Context, role string) (string, error) {
	t, err := l.tier(role)
	if err != nil {
		return "", err
	}
	_, e, err := logsOf(ctx, l.cli, t.ID, false, true, "")
	return e, err
}

// RunClient runs `doublehop client ARGS` inside ws01 as user (own credential
// cache in ws01's /tmp), inside the lab network, so names resolve through the
// lab's DNS. A kinit without a password option gets the user's lab password
// on stdin.
func (l *Lab) RunClient(ctx context.Context, user string, args ...string) (ExecResult, error) {
	if user == "" {
		user = "bob"
	}
	base := []string{"client", "--state", ClientState, "--krb5conf", Krb5ConfPath, "--ccache", "/tmp/krb5cc_" + user}
	var stdin io.Reader
	if i := indexOf(args, "kinit"); i >= 0 && !hasPasswordFlag(args) {
		who := user
		for _, a := range args[i+1:] {
			if !strings.HasPrefix(a, "-") {
				who = a
				break
			}
		}
		args = append(append(append([]string{}, args[:i+1]...), "--password-stdin"), args[i+1:]...)
		pw := l.Password(who)
		if v, err := l.View(ctx); err == nil {
			if a := v.Lab.Account(who); a != nil {
				pw = a.Password
			}
		}
		stdin = strings.NewReader(pw + "\n")
	}
	return l.Exec(ctx, RoleClient, stdin, append(base, args...)...)
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

func hasPasswordFlag(args []string) bool {
	for _, a := range args {
		for _, f := range []string{"-password", "--password", "-password-stdin", "--password-stdin", "-lab-password", "--lab-password"} {
			if a == f || strings.HasPrefix(a, f+"=") {
				return true
			}
		}
	}
	return false
}

// FlowResult is Bob's flow run from ws01: logon, then the site, which reads
// SQL Server as him.
type FlowResult struct {
	User     string
	URL      string
	Kinit    ExecResult
	Get      ExecResult
	Page     *webtier.Page
	Duration time.Duration
}

// OK reports whether the second hop reached SQL Server as the user with Kerberos.
func (f *FlowResult) OK(netbios string) bool {
	return f != nil && f.Page != nil && strings.EqualFold(f.Page.SQL.Login, netbios+`\`+f.User) && f.Page.SQL.AuthScheme == "KERBEROS"
}

// Summary is one line about the outcome.
func (f *FlowResult) Summary() string {
	if f == nil {
		return "not run"
	}
	if f.Page == nil {
		if f.Kinit.ExitCode != 0 {
			return "kinit failed: " + firstLine(f.Kinit.Stderr+f.Kinit.Stdout)
		}
		msg := strings.TrimSpace(f.Get.Stderr + "\n" + f.Get.Stdout)
		var parts []string
		for _, line := range strings.Split(msg, "\n") {
			line = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "*"))
			if strings.Contains(line, "-> HTTP") || strings.Contains(line, "rejected") || strings.HasPrefix(line, "doublehop client:") {
				parts = append(parts, line)
			}
		}
		if len(parts) == 0 {
			parts = []string{firstLine(msg)}
		}
		return fmt.Sprintf("%s (exit %d)", strings.Join(parts, "; "), f.Get.ExitCode)
	}
	p := f.Page
	s := fmt.Sprintf("page running as %s; second hop: %s; ", p.RunningAs, p.Mechanism)
	if p.SQL.Error != nil {
		s += fmt.Sprintf("SQL Server: Msg %d, State %d: %s", p.SQL.Error.Number, p.SQL.Error.State, p.SQL.Error.Message)
	} else {
		s += fmt.Sprintf("SQL Server: SUSER_SNAME()=%s auth_scheme=%s, %d orders", p.SQL.Login, p.SQL.AuthScheme, len(p.SQL.Orders))
	}
	return s + fmt.Sprintf(" (%s)", f.Duration.Round(time.Millisecond))
}

// Flow runs the story's flow from ws01: kinit user, then the site at its real
// name (http://web.lab.local/), whose page reads SQL Server as the user. The
// error is nil when the page came back; check OK for the second hop.
func (l *Lab) Flow(ctx context.Context, user string) (*FlowResult, error) {
	if user == "" {
		user = "bob"
	}
	return WorkstationFlow(ctx, func(ctx context.Context, stdin io.Reader, args ...string) (ExecResult, error) {
		return l.RunClient(ctx, user, args...)
	}, user, "http://"+l.hostName(RoleWeb)+"/", l.NetBIOS)
}

// ClientRunner runs `doublehop client ARGS` on a workstation; a kinit
// without a password option reads the password from stdin.
type ClientRunner func(ctx context.Context, stdin io.Reader, args ...string) (ExecResult, error)

// WorkstationFlow is Bob's flow on a workstation: kinit user, then GET url,
// whose page reads SQL Server as the user. The error is nil when the second
// hop reached SQL Server as NETBIOS\user with Kerberos.
func WorkstationFlow(ctx context.Context, run ClientRunner, user, url, netbios string) (*FlowResult, error) {
	start := time.Now()
	f := &FlowResult{User: user, URL: url}
	var err error
	if f.Kinit, err = run(ctx, nil, "kinit", user); err != nil {
		return f, err
	}
	if f.Kinit.ExitCode != 0 {
		f.Duration = time.Since(start)
		return f, fmt.Errorf("kinit %s: %w", user, f.Kinit.Err())
	}
	if f.Get, err = run(ctx, nil, "get", "--json", f.URL); err != nil {
		return f, err
	}
	f.Duration = time.Since(start)
	var p webtier.Page
	if json.Unmarshal([]byte(f.Get.Stdout), &p) == nil && p.RunningAs != "" {
		f.Page = &p
	}
	if f.Get.ExitCode != 0 || f.Page == nil {
		return f, fmt.Errorf("get %s: %w", f.URL, f.Get.Err())
	}
	if !f.OK(netbios) {
		return f, fmt.Errorf("the second hop did not reach SQL Server as %s\\%s with Kerberos: %s", netbios, user, f.Summary())
	}
	return f, nil
}

// RunScenario runs a catalog scenario (by id) against the lab with the
// scenario engine: reset, setup, every step checked at every tier.
func (l *Lab) RunScenario(ctx context.Context, id string, out io.Writer) (*scenarios.Report, error) {
	s, err := scenarios.Find(id)
	if err != nil {
		return nil, err
	}
	return scenarios.NewEngine(l, scenarios.Options{Out: out}).Run(ctx, s)
}

// ReadFile reads a file from a tier's container (os.ErrNotExist when absent).
func (l *Lab) ReadFile(ctx context.Context, role, path string) ([]byte, error) {
	t, err := l.tier(role)
	if err != nil {
		return nil, err
	}
	return copyOut(ctx, l.cli, t.ID, path)
}
