// Package provision turns a lab file into what each tier's host holds, the
// way an admin provisions a domain: the DC the directory (the only place
// passwords live), the web and SQL servers their own service account's keytab
// (what ktpass writes) and their own configuration section, the workstation
// a krb5.conf. The container lab, the workshop on Docker Swarm and the
// Kubernetes provisioning Job all start the same tiers from it.
package provision

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"math/big"
	"strconv"
	"strings"

	"github.com/doublehop/doublehop/directory"
	"github.com/doublehop/doublehop/krb/keytab"
	"github.com/doublehop/doublehop/lab"
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

// File is one file a tier's host holds.
type File struct {
	Path    string // absolute path in the container
	Content []byte
	Mode    int64
}

// Tier is what one tier's container gets from a lab file: its host, the
// command after the image's entrypoint, the files it holds, its ports and
// the log line that says it is ready.
type Tier struct {
	Role  string
	Host  directory.Host
	Port  string   // the tier's own port ("88/tcp"); "" for ws01
	Extra []string // more ports (the DC's LDAP and LDAPS, "389/tcp", "636/tcp")
	Cmd   []string
	Files []File
	Ready string
}

// KeytabPath is a tier's keytab in its container.
func KeytabPath(role string) string { return ConfDir + "/" + role + ".keytab" }

// SettingsPath is a tier's settings file (its own section of the lab file) in its container.
func SettingsPath(role string) string { return ConfDir + "/" + role + ".yaml" }

// SQLPort is the SQL tier's port (1433 unless the lab file says otherwise).
func SQLPort(l *directory.Lab) int {
	if h := l.HostByRole(RoleSQL); h != nil && h.Port != 0 {
		return h.Port
	}
	return 1433
}

// Plan turns a lab file into the tiers' commands and files, in start order
// (dc, web, sql, ws01). Each tier
// gets only what its real counterpart would hold: the DC the directory, the
// web and SQL servers their own service account's keytab and their own
// configuration section (web.config, SQL logins), the workstation a krb5.conf.
func Plan(l *directory.Lab) ([]Tier, error) {
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
	var out []Tier
	for _, role := range Roles {
		h := l.HostByRole(role)
		if h == nil {
			continue
		}
		t := Tier{Role: role, Host: *h}
		switch role {
		case RoleKDC:
			t.Port, t.Ready = "88/tcp", "kdc: ready"
			t.Extra = []string{fmt.Sprintf("%d/tcp", lab.LDAPPort), fmt.Sprintf("%d/tcp", lab.LDAPSPort)}
			t.Cmd = []string{"kdc", "--state", StateDir, "--listen", ":88", "--netlogon-listen", fmt.Sprintf(":%d", lab.NetlogonPort),
				"--ldap-listen", fmt.Sprintf(":%d", lab.LDAPPort), "--ldaps-listen", fmt.Sprintf(":%d", lab.LDAPSPort), "--events", "-", "--host", h.Name}
			t.Files = []File{{Path: DirectoryYML, Content: dirYAML, Mode: 0o600}}
		case RoleWeb, RoleSQL:
			if h.RunsAs == "" {
				return nil, fmt.Errorf("lab file: host %s (%s) has no runs_as account", h.Name, role)
			}
			kt, err := KeytabFor(v, h.RunsAs)
			if err != nil {
				return nil, fmt.Errorf("%s keytab: %w", role, err)
			}
			settings, err := SettingsFor(l, role)
			if err != nil {
				return nil, err
			}
			common := []string{"--keytab", KeytabPath(role), "--settings", SettingsPath(role), "--events", "-", "--host", h.Name,
				"--account", h.RunsAs, "--realm", l.Realm, "--netbios", l.NetBIOS, "--max-skew", l.Policy.MaxSkew.D().String(), "--netlogon", netlogonAddr}
			if role == RoleWeb {
				t.Port, t.Ready = "80/tcp", "web: ready"
				t.Cmd = append([]string{"web", "--kdc", kdcAddr, "--listen", ":80"}, common...)
			} else {
				p := strconv.Itoa(SQLPort(l))
				t.Port, t.Ready = p+"/tcp", "sql: ready"
				t.Cmd = append([]string{"sql", "--kdc", kdcAddr, "--listen", ":" + p}, common...)
			}
			t.Files = []File{{Path: KeytabPath(role), Content: kt, Mode: 0o600}, {Path: SettingsPath(role), Content: settings, Mode: 0o644}}
		case RoleClient:
			t.Ready = "idle: ready"
			t.Cmd = []string{"idle"}
			t.Files = []File{{Path: Krb5ConfPath, Content: []byte(lab.Krb5Conf(l.Realm, kdcAddr, "", l.Policy.AllowRC4)), Mode: 0o644}}
		}
		out = append(out, t)
	}
	return out, nil
}

// KeytabFor exports one account's keys (what ktpass would write for it).
func KeytabFor(v *directory.View, account string) ([]byte, error) {
	entries, err := v.KeytabEntries(account)
	if err != nil {
		return nil, err
	}
	return keytab.Marshal(entries), nil
}

// SettingsFor is a tier's own section of the lab file: `web:` for the web
// tier, `sql:` for the SQL tier. Never the accounts: they hold passwords.
func SettingsFor(l *directory.Lab, role string) ([]byte, error) {
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

// HostKrb5Conf is krb5.conf for a machine outside the lab: the KDC at its published loopback
// port, TCP only (only TCP is published).
func HostKrb5Conf(l *directory.Lab, kdcAddr string) string {
	c := lab.Krb5Conf(l.Realm, kdcAddr, "", l.Policy.AllowRC4)
	return strings.Replace(c, "udp_preference_limit = 1465", "udp_preference_limit = 1", 1)
}

// Seat is seat n's realm for a workshop: the base lab with every password
// drawn fresh (the seat's own krbtgt, service and machine keys, so a ticket
// of one seat means nothing in another), Bob's readable, and HTTP/NAME on the
// web tier's account for each public host name attendees type. It returns
// the lab and Bob's password.
func Seat(base *directory.Lab, n int, publicHosts []string) (*directory.Lab, string, error) {
	l := base.Clone()
	bob := ""
	for i := range l.Accounts {
		a := &l.Accounts[i]
		if a.Name == "bob" {
			a.Password = fmt.Sprintf("Bob-%s-%d!", randomWord(6), n)
			bob = a.Password
			continue
		}
		a.Password = randomWord(24) + "-9!"
	}
	if bob == "" {
		return nil, "", fmt.Errorf("the lab file has no account bob")
	}
	if web := l.HostByRole(RoleWeb); web != nil && len(publicHosts) > 0 {
		a := l.Account(web.RunsAs)
		if a == nil {
			return nil, "", fmt.Errorf("the web tier's account %s is not in the lab file", web.RunsAs)
		}
		for _, h := range publicHosts {
			a.SPNs = append(a.SPNs, "HTTP/"+strings.ToLower(h))
		}
	}
	if _, err := directory.ViewOf(l); err != nil {
		return nil, "", err
	}
	return l, bob, nil
}

// randomWord is n letters and digits from crypto/rand (no look-alikes).
func randomWord(n int) string {
	const alphabet = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	b := make([]byte, n)
	for i := range b {
		v, err := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		if err != nil {
			panic(err) // crypto/rand does not fail on Linux
		}
		b[i] = alphabet[v.Int64()]
	}
	return string(b)
}
