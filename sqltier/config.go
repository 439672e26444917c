package sqltier

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/doublehop/doublehop/events"
	"github.com/doublehop/doublehop/ntlm"
	"github.com/jcmturner/gokrb5/v8/keytab"
)

// Encryption is the server's PRELOGIN encryption setting (MS-TDS 2.2.6.5;
// notes/go-mssqldb-and-tds.md §3).
type Encryption int

const (
	// EncryptionNotSupported answers ENCRYPT_NOT_SUP: no TLS at all, as a
	// SQL Server without a certificate (the lab default). Clients that
	// demand encryption (go-mssqldb encrypt=true) fail.
	EncryptionNotSupported Encryption = iota
	// EncryptionOff offers TLS without forcing it, like SQL Server's default
	// with a certificate: a client sending ENCRYPT_OFF gets login-only
	// encryption (the LOGIN7 packet inside TLS, the rest in clear), a client
	// sending ENCRYPT_ON gets a fully encrypted session.
	EncryptionOff
	// EncryptionOn is "Force Encryption": every session runs inside TLS;
	// a client that cannot encrypt is disconnected.
	EncryptionOn
	// EncryptionStrict is TDS 8.0 "Force Strict Encryption": TLS (ALPN
	// tds/8.0) must come before PRELOGIN. EncryptionOff and EncryptionOn
	// also accept such clients.
	EncryptionStrict
)

func (e Encryption) String() string {
	switch e {
	case EncryptionNotSupported:
		return "not-supported"
	case EncryptionOff:
		return "off"
	case EncryptionOn:
		return "on"
	case EncryptionStrict:
		return "strict"
	}
	return fmt.Sprintf("Encryption(%d)", int(e))
}

// ParseEncryption reads "not-supported" (or "none", "disable", ""), "off",
// "on" (or "true", "force") and "strict".
func ParseEncryption(s string) (Encryption, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "not-supported", "not_sup", "notsup", "none", "disable", "disabled":
		return EncryptionNotSupported, nil
	case "off", "optional":
		return EncryptionOff, nil
	case "on", "true", "force", "required":
		return EncryptionOn, nil
	case "strict":
		return EncryptionStrict, nil
	}
	return 0, fmt.Errorf("sqltier: unknown encryption setting %q (not-supported, off, on, strict)", s)
}

// Access is what a login may do at connect time (the CONNECT SQL permission
// and the login's state, as sys.server_permissions and sys.sql_logins hold them).
type Access int

const (
	// Grant: CONNECT SQL granted, the login is enabled.
	Grant Access = iota
	// Deny: DENY CONNECT SQL on the login: 18456 state 12.
	Deny
	// Disabled: ALTER LOGIN ... DISABLE: 18456 state 7.
	Disabled
)

func (a Access) String() string {
	switch a {
	case Grant:
		return "grant"
	case Deny:
		return "deny"
	case Disabled:
		return "disabled"
	}
	return fmt.Sprintf("Access(%d)", int(a))
}

// Login is one row of the login table: a Windows login (CREATE LOGIN
// [LAB\bob] FROM WINDOWS). A Windows principal with no row has no server
// access (18456 state 11).
type Login struct {
	Name            string // LAB\bob (case-insensitive)
	Access          Access
	DefaultDatabase string // "" = the server's Database
}

// Order is one row of the lab table dbo.orders (the seed's data "x"). Rows
// are filtered by a row-level security predicate Owner = SUSER_SNAME(), so
// each login sees its own rows: the page shows that SQL really saw Bob.
type Order struct {
	ID     int
	Owner  string // Windows login, LAB\bob
	Item   string
	Amount string // decimal(10,2) as text, "129.90"
}

// Config configures a Server. Only Keytab is required for Kerberos logins;
// everything else has a lab default.
type Config struct {
	// Keytab holds svc_mssqlserver's keys (MSSQLSvc/sql.lab.local:1433 and
	// MSSQLSvc/sql.lab.local). Without it every Kerberos login fails with
	// KRB_AP_ERR_NOKEY.
	Keytab     *keytab.Keytab
	Realm      string // LAB.LOCAL
	NetBIOS    string // LAB: the domain part of Windows login names
	ServerName string // SQL: @@SERVERNAME and the ServerName of ERROR tokens
	Host       string // sql.lab.local: events' Host, the self-signed certificate's name
	// ServiceAccount is the account the server runs as (events' Account):
	// svc_mssqlserver.
	ServiceAccount string
	Database       string // labdb: the lab database (master also exists)

	// Logins is the login table; nil means DefaultLogins(NetBIOS).
	Logins []Login
	// Data holds dbo.orders; nil means DefaultData(NetBIOS).
	Data []Order
	// Refresh, when set, is asked before each login whether logins, data or
	// keys changed (WatchFiles watches the lab's files); nil result = no change.
	Refresh func() *Update

	// Encryption selects the PRELOGIN answer; TLSConfig supplies the
	// certificate (a self-signed one for Host is generated when nil and the
	// setting needs TLS).
	Encryption Encryption
	TLSConfig  *tls.Config

	// Validator passes NTLM logons through to the DC (a netlogon.Client:
	// the member server's secure channel). nil: every NTLM logon fails as
	// with no domain controller reachable (SEC_E_NO_AUTHENTICATING_AUTHORITY).
	Validator ntlm.Validator
	// NTLMComputer is the NetBIOS computer name in the CHALLENGE (SQL);
	// default: the first label of Host, upper-cased.
	NTLMComputer string

	Events events.Sink // SQL login events (18453 / 18456 / 18452); nil = discard
	Logger *slog.Logger
	Now    func() time.Time
	// MaxSkew is the Kerberos clock skew allowed (default 5 minutes).
	MaxSkew time.Duration

	// LoginTimeout bounds PRELOGIN + TLS + LOGIN7 (default 30s).
	LoginTimeout time.Duration
	// IdleTimeout closes a logged-in connection that sends nothing (default 10m).
	IdleTimeout time.Duration
	// MaxMessage bounds one request message (default 4 MiB).
	MaxMessage int
	// MaxConns bounds concurrent connections (default 1024); further ones
	// are closed at once.
	MaxConns int
}

// DefaultLogins is the lab's login table: LAB\bob may connect; LAB\alice has
// a login with CONNECT SQL denied (the authorization contrast).
func DefaultLogins(netbios string) []Login {
	if netbios == "" {
		netbios = "LAB"
	}
	return []Login{
		{Name: netbios + `\bob`, Access: Grant},
		{Name: netbios + `\alice`, Access: Deny},
	}
}

// DefaultData is the lab's dbo.orders.
func DefaultData(netbios string) []Order {
	if netbios == "" {
		netbios = "LAB"
	}
	bob, alice := netbios+`\bob`, netbios+`\alice`
	return []Order{
		{ID: 1, Owner: bob, Item: "Kerberos for dummies", Amount: "24.99"},
		{ID: 2, Owner: bob, Item: "Network capture license", Amount: "129.90"},
		{ID: 3, Owner: alice, Item: "Conference ticket", Amount: "450.00"},
		{ID: 4, Owner: bob, Item: "Second monitor", Amount: "189.00"},
		{ID: 5, Owner: alice, Item: "Standing desk", Amount: "379.50"},
	}
}

func (c *Config) setDefaults() {
	if c.Realm == "" {
		c.Realm = "LAB.LOCAL"
	}
	if c.NetBIOS == "" {
		c.NetBIOS = strings.ToUpper(strings.SplitN(c.Realm, ".", 2)[0])
	}
	if c.ServerName == "" {
		c.ServerName = "SQL"
	}
	if c.Host == "" {
		c.Host = "sql.lab.local"
	}
	if c.ServiceAccount == "" {
		c.ServiceAccount = "svc_mssqlserver"
	}
	if c.Database == "" {
		c.Database = "labdb"
	}
	if c.Logins == nil {
		c.Logins = DefaultLogins(c.NetBIOS)
	}
	if c.Data == nil {
		c.Data = DefaultData(c.NetBIOS)
	}
	if c.Events == nil {
		c.Events = events.Discard
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.MaxSkew == 0 {
		c.MaxSkew = 5 * time.Minute
	}
	if c.LoginTimeout == 0 {
		c.LoginTimeout = 30 * time.Second
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = 10 * time.Minute
	}
	if c.MaxMessage == 0 {
		c.MaxMessage = 4 << 20
	}
	if c.MaxConns == 0 {
		c.MaxConns = 1024
	}
}
