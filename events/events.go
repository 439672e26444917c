// Package events is the lab's audit model: one structured event per thing a
// tier decided, named after its Windows counterpart (Security log 4768, 4769,
// 4771, 4624, 4625; SQL Server 18453/18456; the Kerberos client's System event 4).
// Every tier writes JSON lines; `doublehop events` merges them into one timeline.
package events

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Windows event IDs the lab emits.
const (
	TGTRequested           = 4768  // A Kerberos authentication ticket (TGT) was requested.
	ServiceTicket          = 4769  // A Kerberos service ticket was requested.
	PreauthFailed          = 4771  // Kerberos pre-authentication failed.
	AccountLockedOut       = 4740  // A user account was locked out.
	LogonSuccess           = 4624  // An account was successfully logged on.
	LogonFailure           = 4625  // An account failed to log on.
	KerberosClientError    = 4     // System log, source Kerberos: the client received an error from a server.
	SQLLoginSuccess        = 18453 // Login succeeded for user '%s'. Connection made using Windows authentication.
	SQLLoginFailed         = 18456 // Login failed for user '%s'.
	SQLUntrustedDomain     = 18452 // Login failed. The login is from an untrusted domain...
	SQLSSPIFailed          = 17806 // SSPI handshake failed with error code 0x%x, state %d while establishing a connection with integrated security.
	DirectoryChange        = 5136  // A directory service object was modified.
	ObjectOperation        = 4662  // An operation was performed on an object (a refused directory write).
	SPNNotUnique           = 2974  // Directory Service: the attribute value provided is not unique in the forest (duplicate SPN refused).
	LDAPUnsignedBind       = 2889  // Directory Service: a client performed a SASL or simple LDAP bind without requesting signing (integrity).
	TierStatus             = 7036  // Service Control Manager: service entered a state (tier start/stop, keytab problems).
	DelegationUsed         = 4648  // A logon was attempted using explicit credentials (the web tier acting as the user).
	KDCDuplicateName       = 11    // System log, source KDC: KDCEVENT_NAME_NOT_UNIQUE (duplicate SPN).
	KerberosError          = 3     // System log, source Kerberos: a Kerberos error message was received (from a KDC).
	AppPoolIdentityInvalid = 5021  // IIS WAS: the identity of the application pool is invalid (the seed's Service Unavailable).
	CredentialValidation   = 4776  // The computer attempted to validate the credentials for an account (NTLM at the DC).
	NetlogonSessionFailed  = 5805  // System log, source NETLOGON: the session setup from a computer failed to authenticate.
	NTLMBlocked            = 8004  // Microsoft-Windows-NTLM/Operational: NTLM authentication to this domain controller was blocked.
)

// Outcome values.
const (
	Success = "success"
	Failure = "failure"
)

// Event is one audit record. Fields that do not apply stay empty.
type Event struct {
	Time    time.Time `json:"time"`
	Host    string    `json:"host"`             // dc.lab.local, web.lab.local, sql.lab.local, ws01.lab.local
	Tier    string    `json:"tier"`             // kdc, web, sql, client, admin
	ID      int       `json:"id"`               // Windows / SQL Server event ID
	Outcome string    `json:"outcome"`          // success | failure
	Message string    `json:"message"`          // one human-readable line
	Client  string    `json:"client,omitempty"` // principal the event is about, bob@LAB.LOCAL

	// Kerberos
	Service     string   `json:"service,omitempty"`      // SPN requested or served
	Account     string   `json:"account,omitempty"`      // directory account whose key encrypted the ticket / the service runs as
	EType       int32    `json:"etype,omitempty"`        // ticket encryption type
	KVNO        int      `json:"kvno,omitempty"`         // key version of the ticket's key
	TicketFlags []string `json:"ticket_flags,omitempty"` // forwardable, ok-as-delegate, ...
	Code        int      `json:"code,omitempty"`         // RFC 4120 error code or SQL error number
	CodeName    string   `json:"code_name,omitempty"`    // KDC_ERR_BADOPTION, KRB_AP_ERR_MODIFIED, ...
	Status      string   `json:"status,omitempty"`       // NTSTATUS as Windows shows it, 0xC000006A
	Reason      string   `json:"reason,omitempty"`       // machine-readable reason (MIT-style), e.g. NOT_ALLOWED_TO_DELEGATE
	Mechanism   string   `json:"mechanism,omitempty"`    // delegation mechanism: unconstrained, constrained, s4u2self, rbcd
	Transited   []string `json:"transited,omitempty"`    // S4U transited services
	Target      string   `json:"target,omitempty"`       // S4U2Proxy target / delegation destination
	Evidence    string   `json:"evidence,omitempty"`     // S4U2Proxy evidence ticket's client/service

	// Logon (4624/4625)
	LogonType     int    `json:"logon_type,omitempty"`    // 3 = network
	Package       string `json:"package,omitempty"`       // Kerberos, NTLM, Negotiate
	LogonProcess  string `json:"logon_process,omitempty"` // Kerberos, NtLmSsp
	LMPackage     string `json:"lm_package,omitempty"`    // "NTLM V2" (the 4624 Package Name (NTLM only) field)
	Workstation   string `json:"workstation,omitempty"`   // the client's workstation name (NTLM)
	Impersonation string `json:"impersonation,omitempty"` // Impersonation, Delegation
	Delegated     bool   `json:"delegated,omitempty"`     // a delegable credential came with the logon

	// SQL
	State      int    `json:"state,omitempty"`       // SQL Server error state
	Login      string `json:"login,omitempty"`       // LAB\bob
	AuthScheme string `json:"auth_scheme,omitempty"` // KERBEROS, NTLM, SQL

	Address string `json:"address,omitempty"` // remote address of the peer
}

// Severity is how the timeline marks the event.
func (e Event) Severity() string {
	if e.Outcome == Failure {
		return "FAIL"
	}
	return "ok"
}

// String renders one timeline line for people.
func (e Event) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %-14s %-4s %5d %s", e.Time.UTC().Format("15:04:05.000"), e.Host, e.Severity(), e.ID, printable(e.Message))
	var kv []string
	add := func(k, v string) {
		if v != "" {
			kv = append(kv, k+"="+printable(v))
		}
	}
	add("client", e.Client)
	add("service", e.Service)
	add("account", e.Account)
	if e.EType != 0 {
		add("etype", ETypeName(e.EType))
	}
	if e.Code != 0 {
		if e.CodeName != "" {
			add("code", fmt.Sprintf("%s(%d/0x%x)", e.CodeName, e.Code, e.Code))
		} else {
			add("code", fmt.Sprint(e.Code))
		}
	}
	if e.State != 0 {
		add("state", fmt.Sprint(e.State))
	}
	add("status", e.Status)
	add("reason", e.Reason)
	add("mechanism", e.Mechanism)
	add("target", e.Target)
	if len(e.Transited) > 0 {
		add("transited", strings.Join(e.Transited, ","))
	}
	if len(e.TicketFlags) > 0 {
		add("flags", strings.Join(e.TicketFlags, ","))
	}
	add("package", e.Package)
	add("lm_package", e.LMPackage)
	add("workstation", e.Workstation)
	add("impersonation", e.Impersonation)
	add("login", e.Login)
	add("auth_scheme", e.AuthScheme)
	if len(kv) > 0 {
		b.WriteString("  [")
		b.WriteString(strings.Join(kv, " "))
		b.WriteString("]")
	}
	return b.String()
}

// ETypeName names an encryption type as Windows and MIT tools do.
func ETypeName(e int32) string {
	switch e {
	case 17:
		return "aes128-cts-hmac-sha1-96"
	case 18:
		return "aes256-cts-hmac-sha1-96"
	case 19:
		return "aes128-cts-hmac-sha256-128"
	case 20:
		return "aes256-cts-hmac-sha384-192"
	case 23:
		return "rc4-hmac"
	case 16:
		return "des3-cbc-sha1"
	}
	return fmt.Sprintf("etype-%d", e)
}

// printable escapes control characters: fields can carry what a client sent
// (a SQL login name), and a newline or a terminal escape must not forge a
// timeline line.
func printable(s string) string {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			q := strconv.Quote(s)
			return q[1 : len(q)-1]
		}
	}
	return s
}
