package dockerlab

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/doublehop/doublehop/admin"
	"github.com/doublehop/doublehop/directory"
	"github.com/doublehop/doublehop/krb/keytab"
	"github.com/doublehop/doublehop/lab"
	"github.com/doublehop/doublehop/scenarios"
	"gopkg.in/yaml.v3"
)

// Paths inside the containers.
const (
	StateDir     = "/state" // dc: the directory (the only place passwords live)
	DirectoryYML = StateDir + "/directory.yaml"
	ConfDir      = "/etc/doublehop" // web, sql: own keytab and own settings section
	Krb5ConfPath = "/etc/krb5.conf" // ws01: the workstation's krb5.conf
	ClientState  = "/var/lib/ws01"  // ws01: the client's state, its event log (not on the tmpfs: docker cp cannot read tmpfs)
	Binary       = "/doublehop"
)

// Roles of the lab's hosts (directory.Host.Role).
const (
	RoleKDC    = "kdc"
	RoleWeb    = "web"
	RoleSQL    = "sql"
	RoleClient = "client"
)

// Roles lists the tiers in start order.
var Roles = []string{RoleKDC, RoleWeb, RoleSQL, RoleClient}

// tierSpec is what one container gets: command, files, port, ready line.
type tierSpec struct {
	role  string
	host  directory.Host
	port  string   // container port published on the host ("88/tcp"); "" for ws01
	extra []string // more published ports (the DC's LDAP and LDAPS, "389/tcp", "636/tcp")
	cmd   []string
	files []File
	ready string
}

func (t tierSpec) domain() string {
	_, d, _ := strings.Cut(t.host.Name, ".")
	return d
}

// KeytabPath is a tier's keytab in its container.
func KeytabPath(role string) string { return ConfDir + "/" + role + ".keytab" }

// SettingsPath is a tier's settings file (its own section of the lab file) in its container.
func SettingsPath(role string) string { return ConfDir + "/" + role + ".yaml" }

// sqlPort is the SQL tier's port (1433 unless the lab file says otherwise).
func sqlPort(l *directory.Lab) int {
	if h := l.HostByRole(RoleSQL); h != nil && h.Port != 0 {
		return h.Port
	}
	return 1433
}

// plan turns a lab file into the containers' commands and files. Each tier
// gets only what its real counterpart would hold: the DC the directory, the
// web and SQL servers their own service account's keytab and their own
// configuration section (web.config, SQL logins), the workstation a krb5.conf.
func plan(l *directory.Lab) ([]tierSpec, error) {
	v, err := directory.ViewOf(l)
	if err != nil {
		return nil, err
	}
	dirYAML, err := l.Marshal()
	if err != nil {
		return nil, err
	}
	kdcHost := l.HostByRole(RoleKDC)
	if kdcHost == nil {
		return nil, fmt.Errorf("lab file: no host with role kdc")
	}
	if l.HostByRole(RoleClient) == nil {
		return nil, fmt.Errorf("lab file: no host with role client (the workstation)")
	}
	kdcAddr := kdcHost.Name + ":88"
	netlogonAddr := fmt.Sprintf("%s:%d", kdcHost.Name, lab.NetlogonPort)
	var out []tierSpec
	for _, role := range Roles {
		h := l.HostByRole(role)
		if h == nil {
			continue
		}
		t := tierSpec{role: role, host: *h}
		switch role {
		case RoleKDC:
			t.port, t.ready = "88/tcp", "kdc: ready"
			t.extra = []string{fmt.Sprintf("%d/tcp", lab.LDAPPort), fmt.Sprintf("%d/tcp", lab.LDAPSPort)}
			t.cmd = []string{"kdc", "--state", StateDir, "--listen", ":88", "--netlogon-listen", fmt.Sprintf(":%d", lab.NetlogonPort),
				"--ldap-listen", fmt.Sprintf(":%d", lab.LDAPPort), "--ldaps-listen", fmt.Sprintf(":%d", lab.LDAPSPort), "--events", "-", "--host", h.Name}
			t.files = []File{{Path: DirectoryYML, Content: dirYAML, Mode: 0o600}}
		case RoleWeb, RoleSQL:
			if h.RunsAs == "" {
				return nil, fmt.Errorf("lab file: host %s (%s) has no runs_as account", h.Name, role)
			}
			kt, err := keytabFor(v, h.RunsAs)
			if err != nil {
				return nil, fmt.Errorf("%s keytab: %w", role, err)
			}
			settings, err := settingsFor(l, role)
			if err != nil {
				return nil, err
			}
			common := []string{"--keytab", KeytabPath(role), "--settings", SettingsPath(role), "--events", "-", "--host", h.Name,
				"--account", h.RunsAs, "--realm", l.Realm, "--netbios", l.NetBIOS, "--max-skew", l.Policy.MaxSkew.D().String(), "--netlogon", netlogonAddr}
			if role == RoleWeb {
				t.port, t.ready = "80/tcp", "web: ready"
				t.cmd = append([]string{"web", "--kdc", kdcAddr, "--listen", ":80"}, common...)
			} else {
				p := strconv.Itoa(sqlPort(l))
				t.port, t.ready = p+"/tcp", "sql: ready"
				t.cmd = append([]string{"sql", "--kdc", kdcAddr, "--listen", ":" + p}, common...)
			}
			t.files = []File{{Path: KeytabPath(role), Content: kt, Mode: 0o600}, {Path: SettingsPath(role), Content: settings, Mode: 0o644}}
		case RoleClient:
			t.ready = "idle: ready"
			t.cmd = []string{"idle"}
			t.files = []File{{Path: Krb5ConfPath, Content: []byte(lab.Krb5Conf(l.Realm, kdcAddr, "", l.Policy.AllowRC4)), Mode: 0o644}}
		}
		out = append(out, t)
	}
	return out, nil
}

// keytabFor exports one account's keys (what ktpass would write for it).
func keytabFor(v *directory.View, account string) ([]byte, error) {
	entries, err := v.KeytabEntries(account)
	if err != nil {
		return nil, err
	}
	return keytab.Marshal(entries), nil
}

// settingsFor is a tier's own section of the lab file: `web:` for the web
// tier, `sql:` for the SQL tier. Never the accounts: they hold passwords.
func settingsFor(l *directory.Lab, role string) ([]byte, error) {
	var doc any
	switch role {
	case RoleWeb:
		doc = struct {
			Web    directory.WebConfig `yaml:"web"`
			Policy tierPolicy          `yaml:"policy"`
		}{l.Web, tierPolicy{l.Policy.MaxSkew}}
	case RoleSQL:
		doc = struct {
			SQL    directory.SQLConfig `yaml:"sql"`
			Policy tierPolicy          `yaml:"policy"`
		}{l.SQL, tierPolicy{l.Policy.MaxSkew}}
	default:
		return nil, fmt.Errorf("no settings for role %s", role)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# %s settings of lab %s, written by doublehop (its section of the lab file only)\n", role, l.Realm)
	enc := yaml.NewEncoder(&b)
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	enc.Close()
	return b.Bytes(), nil
}

// tierPolicy is the part of the domain policy a tier needs (no secrets).
type tierPolicy struct {
	MaxSkew directory.Duration `yaml:"max_skew"`
}

// hostKrb5Conf is krb5.conf for this host: the KDC at its published loopback
// port, TCP only (only TCP is published).
func hostKrb5Conf(l *directory.Lab, kdcAddr string) string {
	c := lab.Krb5Conf(l.Realm, kdcAddr, "", l.Policy.AllowRC4)
	return strings.Replace(c, "udp_preference_limit = 1465", "udp_preference_limit = 1", 1)
}

// applySetup runs admin commands (a scenario's setup) on a lab file, on the
// host, before any container starts.
func applySetup(l *directory.Lab, setup []string) (*directory.Lab, error) {
	if len(setup) == 0 {
		return l, nil
	}
	dir, err := os.MkdirTemp("", "doublehop-setup-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	s, err := directory.Open(dir, l)
	if err != nil {
		return nil, err
	}
	for _, c := range setup {
		args, err := SplitArgs(c)
		if err != nil {
			return nil, err
		}
		var out bytes.Buffer
		if err := admin.Run(s, args, &out); err != nil {
			return nil, fmt.Errorf("setup %q: %v\n%s", c, err, out.String())
		}
	}
	b, err := os.ReadFile(s.Path())
	if err != nil {
		return nil, err
	}
	return directory.Parse(b)
}

// SplitArgs splits a command line the way the scenario files do.
func SplitArgs(s string) ([]string, error) { return scenarios.SplitArgs(s) }
