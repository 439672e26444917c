// Package directory is the lab's "Active Directory": the declarative lab file
// (realm, hosts, accounts, passwords, SPNs, delegation settings, enctypes) and a
// store that persists it atomically and answers the KDC's lookups with AD's
// rules (salts, kvno, SPN ownership and sPNMappings).
package directory

import (
	_ "embed"
	"fmt"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

//go:embed default.yaml
var defaultLab []byte

// Default returns the embedded default lab (the story's working end state).
func Default() *Lab {
	l, err := Parse(defaultLab)
	if err != nil {
		panic("directory: embedded default lab: " + err.Error())
	}
	return l
}

// DefaultYAML returns the embedded default lab file.
func DefaultYAML() []byte { return append([]byte(nil), defaultLab...) }

// Lab is the whole declarative lab.
type Lab struct {
	Realm     string      `yaml:"realm"`
	NetBIOS   string      `yaml:"netbios"`
	DomainSID string      `yaml:"domain_sid"`
	Policy    Policy      `yaml:"policy"`
	Groups    []Group     `yaml:"groups,omitempty"`
	Hosts     []Host      `yaml:"hosts"`
	DNS       []DNSRecord `yaml:"dns,omitempty"` // aliases in the domain's zone (hosts have their A records)
	Accounts  []Account   `yaml:"accounts"`
	// Objects are directory objects kept as they were written over LDAP: the
	// configuration objects a read-only DC's join adds (its server, NTDS
	// Settings and connection objects).
	Objects []Object  `yaml:"objects,omitempty"`
	Web     WebConfig `yaml:"web"`
	SQL     SQLConfig `yaml:"sql"`
}

// DefaultMaxSkew is AD's "Maximum tolerance for computer clock
// synchronization" (RFC 4120 §1.6's usual 5 minutes).
const DefaultMaxSkew = 5 * time.Minute

// Policy is the domain Kerberos policy.
type Policy struct {
	MaxSkew        Duration `yaml:"max_skew"`
	TicketLifetime Duration `yaml:"ticket_lifetime"`
	RenewLifetime  Duration `yaml:"renew_lifetime"`
	AllowRC4       bool     `yaml:"allow_rc4"`                  // INSECURE: RC4-HMAC tickets and keys
	KDCClockOffset Duration `yaml:"kdc_clock_offset,omitempty"` // the DC's clock is off by this much (skew scenarios)
	// ClientClockOffset is how far the workstation's (ws01's) clock is off:
	// every lab client (doublehop client, scenarios, the proof) runs with it.
	ClientClockOffset Duration `yaml:"client_clock_offset,omitempty"`
	// RestrictNTLM is "Network security: Restrict NTLM: NTLM authentication in
	// this domain": "" allows NTLM (AD's default), deny_all refuses it at the DC.
	RestrictNTLM string `yaml:"restrict_ntlm,omitempty"`
	// Account lockout policy: after LockoutThreshold bad passwords within
	// LockoutWindow the account is locked for LockoutDuration (0 = never
	// locks, AD's default threshold).
	LockoutThreshold int      `yaml:"lockout_threshold,omitempty"`
	LockoutDuration  Duration `yaml:"lockout_duration,omitempty"` // default 30m
	LockoutWindow    Duration `yaml:"lockout_window,omitempty"`   // default 30m
	// LDAPSimpleBindInClear is INSECURE: the DC takes LDAP simple binds (a
	// password in clear text) without TLS, as AD does when "LDAP server signing
	// requirements" is None. Off: simple binds need StartTLS.
	LDAPSimpleBindInClear bool `yaml:"ldap_simple_bind_in_clear,omitempty"`
	// LDAPSigningRequired is "Domain controller: LDAP server signing
	// requirements = Require signing" (Windows Server 2025's default): a bind
	// without integrity on a connection without TLS is refused.
	LDAPSigningRequired bool `yaml:"ldap_signing_required,omitempty"`
	// KerberosArmoring is the KDC's "KDC support for claims, compound
	// authentication and Kerberos armoring" (MS-KILE 3.3.1.1): "" (not
	// configured, Windows' default: armored requests are answered, FAST is
	// not offered) or "supported" (offered in PREAUTH_REQUIRED and in the
	// AS-REP, so clients that can armor do).
	KerberosArmoring string `yaml:"kerberos_armoring,omitempty"`
}

// RestrictNTLM values.
const RestrictNTLMDenyAll = "deny_all"

// Group is a domain group with its RID.
type Group struct {
	Name string `yaml:"name"`
	RID  uint32 `yaml:"rid"`
}

// Host is a machine of the lab.
type Host struct {
	Name    string `yaml:"name"`              // FQDN, web.lab.local
	Short   string `yaml:"short"`             // web
	Role    string `yaml:"role"`              // kdc, client, web, sql
	Account string `yaml:"account"`           // machine account, WEB$
	RunsAs  string `yaml:"runs_as,omitempty"` // service account of the tier on this host
	Port    int    `yaml:"port,omitempty"`
	Address string `yaml:"address,omitempty"` // its A record (10.0.0.20); the lab maps it like the name
}

// Account types.
const (
	TypeUser     = "user"
	TypeService  = "service"
	TypeComputer = "computer"
	TypeKrbtgt   = "krbtgt"
)

// Delegation modes (userAccountControl TRUSTED_FOR_DELEGATION and msDS-AllowedToDelegateTo).
const (
	DelegNone          = "none"
	DelegUnconstrained = "unconstrained"
	DelegConstrained   = "constrained"
)

// Account is a security principal: user, service account, computer or krbtgt.
type Account struct {
	Name        string   `yaml:"name"`         // sAMAccountName
	DN          string   `yaml:"dn,omitempty"` // where it was created over LDAP, when not its container's default
	Type        string   `yaml:"type"`
	DisplayName string   `yaml:"display_name,omitempty"`
	Password    string   `yaml:"password"`
	KVNO        int      `yaml:"kvno,omitempty"` // msDS-KeyVersionNumber; 0 means 1
	RID         uint32   `yaml:"rid"`
	UPN         string   `yaml:"upn,omitempty"`
	SPNs        []string `yaml:"spns,omitempty"`
	Groups      []string `yaml:"groups,omitempty"`
	// Enctypes is msDS-SupportedEncryptionTypes: aes256, aes128, rc4. Empty: aes256+aes128.
	Enctypes   []string   `yaml:"enctypes,omitempty"`
	Delegation Delegation `yaml:"delegation,omitempty"`
	// AllowedToActOnBehalfOf is msDS-AllowedToActOnBehalfOfOtherIdentity (RBCD):
	// the accounts that may delegate to this account's services.
	AllowedToActOnBehalfOf []string `yaml:"allowed_to_act_on_behalf_of,omitempty"`
	Sensitive              bool     `yaml:"sensitive,omitempty"`            // NOT_DELEGATED: "Account is sensitive and cannot be delegated"
	DontRequirePreauth     bool     `yaml:"dont_require_preauth,omitempty"` // INSECURE: DONT_REQ_PREAUTH (AS-REP roastable)
	// NoAuthDataRequired is NO_AUTH_DATA_REQUIRED: the KDC puts no PAC in
	// tickets to this account's services (MS-KILE 3.3.5.6.4, S4U2Self's aside).
	NoAuthDataRequired bool `yaml:"no_auth_data_required,omitempty"`
	Disabled           bool `yaml:"disabled,omitempty"`
	// Account states as AD keeps them (MS-ADTS userAccountControl, accountExpires,
	// pwdLastSet, logonHours, badPwdCount, lockoutTime).
	Expires            time.Time `yaml:"expires,omitempty"`              // no logon after it (0xC0000193)
	MustChangePassword bool      `yaml:"must_change_password,omitempty"` // pwdLastSet = 0 (0xC0000224)
	PasswordExpired    bool      `yaml:"password_expired,omitempty"`     // older than the maximum password age (0xC0000071)
	LogonHours         string    `yaml:"logon_hours,omitempty"`          // "" any time; "none"; "8-18": UTC hours [from, to)
	BadPwdCount        int       `yaml:"bad_pwd_count,omitempty"`
	BadPwdTime         time.Time `yaml:"bad_pwd_time,omitempty"` // the last bad password (the observation window)
	LockedOut          time.Time `yaml:"locked_out,omitempty"`   // lockoutTime; zero when not locked
	// A read-only DC's account (MS-ADTS 3.1.1.11, MS-DRSR 4.1.10.5.14): its own
	// krbtgt, the groups whose secrets it may and may never hold, the accounts
	// whose secrets it holds. On a krbtgt_N account, N.
	RODC *RODC `yaml:"rodc,omitempty"`
	// SecondaryKrbTgtNumber is msDS-SecondaryKrbTgtNumber: this account is the
	// krbtgt of the read-only DC numbered N (its tickets carry kvno N<<16|kvno).
	SecondaryKrbTgtNumber int `yaml:"secondary_krbtgt_number,omitempty"`
}

// RODC is a read-only DC's password replication policy.
type RODC struct {
	KrbTgt         string   `yaml:"krbtgt,omitempty"`           // msDS-KrbTgtLink: its krbtgt_N account
	PartialSecrets bool     `yaml:"partial_secrets"`            // UF_PARTIAL_SECRETS_ACCOUNT
	RevealOnDemand []string `yaml:"reveal_on_demand,omitempty"` // msDS-RevealOnDemandGroup: DNs as written
	NeverReveal    []string `yaml:"never_reveal,omitempty"`     // msDS-NeverRevealGroup
	Revealed       []string `yaml:"revealed,omitempty"`         // msDS-RevealedUsers: account names
	ManagedBy      string   `yaml:"managed_by,omitempty"`
}

// Delegation is an account's delegation setting.
type Delegation struct {
	Mode string `yaml:"mode,omitempty"` // none | unconstrained | constrained
	// ProtocolTransition is TRUSTED_TO_AUTH_FOR_DELEGATION ("use any authentication protocol").
	ProtocolTransition bool     `yaml:"protocol_transition,omitempty"`
	AllowedTo          []string `yaml:"allowed_to,omitempty"` // msDS-AllowedToDelegateTo
}

// WebConfig is the web tier's site configuration (the seed's web.config).
type WebConfig struct {
	Impersonate bool              `yaml:"impersonate"`
	SQLHost     string            `yaml:"sql_dsn_host,omitempty"`
	SQLPort     int               `yaml:"sql_port,omitempty"`
	FormUsers   map[string]string `yaml:"form_users,omitempty"`
	// Providers are IIS's Windows Authentication providers, in order:
	// Negotiate (SPNEGO: Kerberos, and NTLM inside it), Negotiate:Kerberos
	// (SPNEGO with Kerberos only), NTLM. Empty: IIS's default, Negotiate then NTLM.
	Providers []string `yaml:"providers,omitempty"`
}

// SQLConfig is the SQL tier's logins and data.
type SQLConfig struct {
	Logins []SQLLogin `yaml:"logins"`
	Orders []SQLOrder `yaml:"orders"`
}

// SQLLogin is a Windows login on the SQL Server and its CONNECT SQL state.
type SQLLogin struct {
	Login  string `yaml:"login"`
	Access string `yaml:"access"` // grant | deny (DENY CONNECT SQL) | disabled (ALTER LOGIN ... DISABLE)
}

// SQLOrder is one row of the lab's data table.
type SQLOrder struct {
	Owner  string `yaml:"owner"`
	ID     int    `yaml:"id"`
	Item   string `yaml:"item"`
	Amount string `yaml:"amount"` // decimal(10,2) as text
}

// Duration is a time.Duration written as "5m" in YAML.
type Duration time.Duration

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// MarshalYAML implements yaml.Marshaler.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = Duration(v)
	return nil
}

// ReadFile reads and parses the lab file at path; "" is the default lab.
func ReadFile(path string) (*Lab, error) {
	if path == "" {
		return Default(), nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	l, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return l, nil
}

// Parse reads a lab file and fills defaults.
func Parse(b []byte) (*Lab, error) {
	var l Lab
	if err := yaml.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("lab file: %w", err)
	}
	l.fill()
	if err := l.Validate(); err != nil {
		return nil, err
	}
	return &l, nil
}

// Marshal writes the lab as YAML.
func (l *Lab) Marshal() ([]byte, error) { return yaml.Marshal(l) }

// Clone returns a deep copy.
func (l *Lab) Clone() *Lab {
	b, err := yaml.Marshal(l)
	if err != nil {
		panic(err)
	}
	var c Lab
	if err := yaml.Unmarshal(b, &c); err != nil {
		panic(err)
	}
	return &c
}

func (l *Lab) fill() {
	l.Realm = strings.ToUpper(l.Realm)
	if l.NetBIOS == "" {
		l.NetBIOS = strings.ToUpper(strings.Split(l.Realm, ".")[0])
	}
	if l.Policy.MaxSkew == 0 {
		l.Policy.MaxSkew = Duration(DefaultMaxSkew)
	}
	if l.Policy.TicketLifetime == 0 {
		l.Policy.TicketLifetime = Duration(10 * time.Hour)
	}
	if l.Policy.RenewLifetime == 0 {
		l.Policy.RenewLifetime = Duration(7 * 24 * time.Hour)
	}
	for i := range l.Accounts {
		a := &l.Accounts[i]
		if a.KVNO == 0 {
			a.KVNO = 1
		}
		if a.Delegation.Mode == "" {
			a.Delegation.Mode = DelegNone
		}
	}
}

// Validate checks the lab for errors a user can fix.
func (l *Lab) Validate() error {
	if l.Realm == "" {
		return fmt.Errorf("lab file: realm is required")
	}
	seen := map[string]bool{}
	krbtgts := 0
	for _, a := range l.Accounts {
		k := strings.ToLower(a.Name)
		if a.Name == "" || seen[k] {
			return fmt.Errorf("lab file: account name %q is empty or duplicated", a.Name)
		}
		seen[k] = true
		switch a.Type {
		case TypeUser, TypeService, TypeComputer:
		case TypeKrbtgt:
			krbtgts++
			if len(a.ETypes(l.Policy.AllowRC4)) == 0 {
				return fmt.Errorf("lab file: the krbtgt account has no usable enctype (enctypes %v, allow_rc4 %v)", a.Enctypes, l.Policy.AllowRC4)
			}
		default:
			return fmt.Errorf("lab file: account %s: unknown type %q", a.Name, a.Type)
		}
		if a.Type == TypeComputer && !strings.HasSuffix(a.Name, "$") {
			return fmt.Errorf("lab file: computer account %s must end in $", a.Name)
		}
		if a.Password == "" {
			return fmt.Errorf("lab file: account %s has no password", a.Name)
		}
		switch a.Delegation.Mode {
		case DelegNone, DelegUnconstrained, DelegConstrained:
		default:
			return fmt.Errorf("lab file: account %s: delegation mode %q (none, unconstrained, constrained)", a.Name, a.Delegation.Mode)
		}
		for _, e := range a.Enctypes {
			if _, ok := etypeByName[strings.ToLower(e)]; !ok {
				return fmt.Errorf("lab file: account %s: unknown enctype %q (aes256, aes128, rc4)", a.Name, e)
			}
		}
	}
	if krbtgts != 1 {
		return fmt.Errorf("lab file: exactly one krbtgt account is required, found %d", krbtgts)
	}
	zone := &Lab{Hosts: l.Hosts}
	for _, r := range l.DNS {
		if err := zone.AddDNS(r); err != nil {
			return fmt.Errorf("lab file: %w", err)
		}
	}
	// A UPN prefix must not name another account: AD refuses duplicate
	// logon names, and here it would let one account answer for another.
	upns := map[string]string{}
	for _, a := range l.Accounts {
		if a.UPN == "" {
			continue
		}
		p := strings.ToLower(strings.SplitN(a.UPN, "@", 2)[0])
		if (seen[p] && !strings.EqualFold(p, a.Name)) || upns[p] != "" {
			return fmt.Errorf("lab file: account %s: UPN %s collides with another account's logon name", a.Name, a.UPN)
		}
		upns[p] = a.Name
	}
	return nil
}

// Account finds an account by sAMAccountName (case-insensitive).
func (l *Lab) Account(name string) *Account {
	for i := range l.Accounts {
		if strings.EqualFold(l.Accounts[i].Name, name) {
			return &l.Accounts[i]
		}
	}
	return nil
}

// HostByRole returns the first host with the role.
func (l *Lab) HostByRole(role string) *Host {
	for i := range l.Hosts {
		if l.Hosts[i].Role == role {
			return &l.Hosts[i]
		}
	}
	return nil
}
