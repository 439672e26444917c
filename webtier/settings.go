package webtier

import (
	"os"
	"strings"
	"sync"
	"time"

	"gopkg.in/yaml.v3"
)

// Settings are the site's configuration, the seed's web.config: read from the
// `web:` section of a YAML file (the lab's directory file in the embedded lab)
// and re-read when the file changes, as IIS re-reads web.config. The domain's
// clock-skew policy comes from the file's `policy:` section when present.
type Settings struct {
	Impersonate bool              `yaml:"impersonate"`
	SQLHost     string            `yaml:"sql_dsn_host"`
	SQLPort     int               `yaml:"sql_port"`
	FormUsers   map[string]string `yaml:"form_users"` // the site's own (non-Kerberos) logins, for protocol transition
	// Providers are IIS's Windows Authentication providers in order (see
	// ProviderNegotiate and friends); empty is IIS's default.
	Providers []string      `yaml:"providers"`
	MaxSkew   time.Duration `yaml:"-"`
}

// IIS's providers (system.webServer/security/authentication/windowsAuthentication/providers).
const (
	ProviderNegotiate         = "Negotiate"          // SPNEGO: Kerberos, or NTLM inside it
	ProviderNegotiateKerberos = "Negotiate:Kerberos" // SPNEGO with Kerberos only
	ProviderNTLM              = "NTLM"               // the NTLM scheme
)

// DefaultProviders is IIS's default list.
var DefaultProviders = []string{ProviderNegotiate, ProviderNTLM}

// has reports a provider (case-insensitive).
func (s Settings) has(p string) bool {
	for _, x := range s.providers() {
		if strings.EqualFold(x, p) {
			return true
		}
	}
	return false
}

func (s Settings) providers() []string {
	if len(s.Providers) == 0 {
		return DefaultProviders
	}
	return s.Providers
}

// negotiateAllowsNTLM: the Negotiate provider (not Negotiate:Kerberos) takes NTLM inside SPNEGO.
func (s Settings) negotiateAllowsNTLM() bool { return s.has(ProviderNegotiate) }

// DefaultSettings is the lab's working end state.
func DefaultSettings() Settings {
	return Settings{Impersonate: true, SQLHost: "sql.lab.local", SQLPort: 1433,
		FormUsers: map[string]string{"bob": "bob-web", "alice": "alice-web"}}
}

type settingsFile struct {
	path string
	mu   sync.Mutex
	mod  time.Time
	size int64
	cur  Settings
}

func (f *settingsFile) get() Settings {
	if f == nil || f.path == "" {
		return DefaultSettings()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	fi, err := os.Stat(f.path)
	if err != nil {
		return f.cur
	}
	if fi.ModTime().Equal(f.mod) && fi.Size() == f.size {
		return f.cur
	}
	b, err := os.ReadFile(f.path)
	if err != nil {
		return f.cur
	}
	var doc struct {
		Web    *Settings `yaml:"web"`
		Policy struct {
			MaxSkew string `yaml:"max_skew"`
		} `yaml:"policy"`
	}
	s := DefaultSettings()
	s.FormUsers = nil // an explicit list replaces the defaults, it is not merged into them
	doc.Web = &s
	if yaml.Unmarshal(b, &doc) == nil {
		if s.SQLHost == "" {
			s.SQLHost = "sql.lab.local"
		}
		if s.SQLPort == 0 {
			s.SQLPort = 1433
		}
		if s.FormUsers == nil {
			s.FormUsers = DefaultSettings().FormUsers
		}
		if d, err := time.ParseDuration(doc.Policy.MaxSkew); err == nil && d > 0 {
			s.MaxSkew = d
		}
		f.cur, f.mod, f.size = s, fi.ModTime(), fi.Size()
	}
	return f.cur
}
