package scenarios

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/doublehop/doublehop/admin"
	"github.com/doublehop/doublehop/client"
	"github.com/doublehop/doublehop/directory"
	"github.com/doublehop/doublehop/events"
	"github.com/doublehop/doublehop/krb/kdcclient"
	"github.com/doublehop/doublehop/lab"
	"github.com/doublehop/doublehop/labnet"
)

// Target is a running lab as a user reaches it: admin commands, a
// workstation, the tiers' keytab files, the event timeline. The embedded lab
// (a state directory) and the container lab (labtest) both provide one.
type Target interface {
	Admin(ctx context.Context, args []string) (string, error)
	// Client is a workstation for user with its own credential cache.
	Client(user string, clockOffset time.Duration) (*client.Client, error)
	// URL maps a URL as a user types it (http://web.lab.local/) to the lab's address.
	URL(raw string) (string, error)
	// Keytab refreshes (re-exports), removes or restores a tier's keytab.
	Keytab(ctx context.Context, op, tier string) error
	Events(ctx context.Context) ([]events.Event, error)
	View(ctx context.Context) (*directory.View, error)
	// Reset puts the directory back to lab (default when nil) and re-exports keytabs.
	Reset(ctx context.Context, lab *directory.Lab) error
	// KDC is the KDC address and a dialer that reaches it (for protocol-level attack steps).
	KDC() (string, kdcclient.Dialer)
}

// StateTarget drives an embedded lab through its state directory: the same
// files a person uses (lab.env, hosts, directory.yaml, keytabs, events).
type StateTarget struct {
	Dir       string
	env       map[string]string
	dialer    *labnet.Dialer
	store     *directory.Store
	tmp       string
	clientLog *events.JSONWriter // ws01's event log, shared by every workstation of this target
}

// OpenState reads a running lab's state directory (written by `doublehop up`).
func OpenState(dir string) (*StateTarget, error) {
	t := &StateTarget{Dir: dir, env: map[string]string{}, dialer: labnet.NewEmpty()}
	b, err := os.ReadFile(filepath.Join(dir, lab.EnvFile))
	if err != nil {
		return nil, fmt.Errorf("no running lab in %s (start one with doublehop up --state %s): %w", dir, dir, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimPrefix(strings.TrimSpace(sc.Text()), "export ")
		k, v, ok := strings.Cut(line, "=")
		if ok && !strings.HasPrefix(k, "#") {
			t.env[k] = strings.ReplaceAll(strings.Trim(v, "'"), `'\''`, "'")
		}
	}
	if h, err := os.ReadFile(filepath.Join(dir, lab.HostsFile)); err == nil {
		t.dialer.ReadHosts(string(h))
	}
	if t.store, err = directory.Open(dir, nil); err != nil {
		return nil, err
	}
	// The DC's LDAP service, wherever the lab put it, as dc.lab.local:389.
	if u, err := url.Parse(t.env["DOUBLEHOP_LDAP"]); err == nil && u.Host != "" {
		if dc := t.store.View().Lab.HostByRole("kdc"); dc != nil {
			for _, n := range []string{dc.Name, dc.Short} {
				t.dialer.Map(fmt.Sprintf("%s:%d", n, lab.LDAPPort), u.Host)
			}
		}
	}
	if t.tmp, err = os.MkdirTemp("", "doublehop-scenario-"); err != nil {
		return nil, err
	}
	if t.clientLog, err = events.OpenFile(filepath.Join(dir, lab.EventsDir, "client.jsonl")); err != nil {
		os.RemoveAll(t.tmp)
		return nil, err
	}
	return t, nil
}

// Close removes the workstations' caches and closes the client event log.
func (t *StateTarget) Close() error {
	t.clientLog.Close()
	return os.RemoveAll(t.tmp)
}

// Admin implements Target.
func (t *StateTarget) Admin(ctx context.Context, args []string) (string, error) {
	var out bytes.Buffer
	err := admin.Run(t.store, args, &out)
	return out.String(), err
}

// Client implements Target.
func (t *StateTarget) Client(user string, offset time.Duration) (*client.Client, error) {
	// ws01's clock: the step's offset plus the lab's client_clock_offset.
	now := func() time.Time { return time.Now().Add(offset + t.store.View().Lab.Policy.ClientClockOffset.D()) }
	cfg := client.Config{CCache: filepath.Join(t.tmp, "krb5cc_"+user), Dialer: t.dialer, Now: now,
		Resolver: directory.ZoneResolver{Lab: func() *directory.Lab { return t.store.View().Lab }}}
	if err := client.FromKrb5Conf(filepath.Join(t.Dir, lab.Krb5ConfFile), &cfg); err != nil {
		return nil, err
	}
	cfg.Events = t.clientLog
	return client.New(cfg), nil
}

// URL implements Target: the web tier's port replaces the one typed.
func (t *StateTarget) URL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	web, err := url.Parse(t.env["DOUBLEHOP_WEB_URL"])
	if err != nil || web.Port() == "" {
		return "", fmt.Errorf("lab.env has no DOUBLEHOP_WEB_URL")
	}
	u.Host = u.Hostname() + ":" + web.Port()
	return u.String(), nil
}

// Keytab implements Target.
func (t *StateTarget) Keytab(ctx context.Context, op, tier string) error {
	path := filepath.Join(t.Dir, lab.KeytabsDir, tier+".keytab")
	v := t.store.View()
	var account string
	for _, h := range v.Lab.Hosts {
		if h.Role == tier {
			account = h.RunsAs
		}
	}
	if account == "" {
		return fmt.Errorf("no tier %q", tier)
	}
	switch op {
	case "refresh", "restore":
		return lab.ExportKeytab(t.store, account, path)
	case "remove":
		return os.Remove(path)
	}
	return fmt.Errorf("keytab %s: want refresh, remove or restore", op)
}

// Events implements Target.
func (t *StateTarget) Events(ctx context.Context) ([]events.Event, error) {
	return events.ReadDir(filepath.Join(t.Dir, lab.EventsDir))
}

// View implements Target.
func (t *StateTarget) View(ctx context.Context) (*directory.View, error) { return t.store.View(), nil }

// Reset implements Target.
func (t *StateTarget) Reset(ctx context.Context, l *directory.Lab) error {
	if l == nil {
		l = directory.Default()
	}
	if _, err := t.store.Replace(l); err != nil {
		return err
	}
	for _, tier := range []string{"web", "sql"} {
		if err := t.Keytab(ctx, "refresh", tier); err != nil {
			return err
		}
	}
	os.RemoveAll(t.tmp)
	return os.MkdirAll(t.tmp, 0o700)
}

// KDC implements Target.
func (t *StateTarget) KDC() (string, kdcclient.Dialer) { return t.env["DOUBLEHOP_KDC"], t.dialer }
