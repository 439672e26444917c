// Package ntstatus holds the NTSTATUS values (MS-ERREF 2.3.1) that Windows
// logs with its Kerberos and NTLM events (4768/4769/4771/4776/4625) and that
// ride in KERB-EXT-ERROR and Netlogon replies. Both authentication stacks use
// this one list.
package ntstatus

import "fmt"

// Status is an NTSTATUS.
type Status uint32

// The values the lab produces.
const (
	Success              Status = 0x00000000
	WrongPassword        Status = 0xC000006A
	LogonFailure         Status = 0xC000006D
	NoSuchUser           Status = 0xC0000064
	AccountRestriction   Status = 0xC000006E
	InvalidLogonHours    Status = 0xC000006F
	InvalidWorkstation   Status = 0xC0000070
	PasswordExpired      Status = 0xC0000071
	AccountDisabled      Status = 0xC0000072
	AccountExpired       Status = 0xC0000193
	PasswordMustChange   Status = 0xC0000224
	AccountLockedOut     Status = 0xC0000234
	NotSupported         Status = 0xC00000BB
	TimeDifference       Status = 0xC0000133
	NoLogonServers       Status = 0xC000005E
	NotFound             Status = 0xC0000225
	NoMatch              Status = 0xC0000272
	KDCUnknownEtype      Status = 0xC00002FD
	AuthFirewallFailed   Status = 0xC00002DE
	InvalidParameter     Status = 0xC000000D
	BadTokenType         Status = 0xC00000A8
	AccessDenied         Status = 0xC0000022
	ServerUnavailable    Status = 0xC0000466
	InsufficientResource Status = 0xC000009A
	NTLMBlocked          Status = 0xC0000418
	DowngradeDetected    Status = 0xC0000388
)

var names = map[Status]string{
	Success: "STATUS_SUCCESS", WrongPassword: "STATUS_WRONG_PASSWORD", LogonFailure: "STATUS_LOGON_FAILURE",
	NoSuchUser: "STATUS_NO_SUCH_USER", AccountRestriction: "STATUS_ACCOUNT_RESTRICTION", InvalidLogonHours: "STATUS_INVALID_LOGON_HOURS",
	InvalidWorkstation: "STATUS_INVALID_WORKSTATION", PasswordExpired: "STATUS_PASSWORD_EXPIRED", AccountDisabled: "STATUS_ACCOUNT_DISABLED",
	AccountExpired: "STATUS_ACCOUNT_EXPIRED", PasswordMustChange: "STATUS_PASSWORD_MUST_CHANGE", AccountLockedOut: "STATUS_ACCOUNT_LOCKED_OUT",
	NotSupported: "STATUS_NOT_SUPPORTED", TimeDifference: "STATUS_TIME_DIFFERENCE_AT_DC", NoLogonServers: "STATUS_NO_LOGON_SERVERS",
	NotFound: "STATUS_NOT_FOUND", NoMatch: "STATUS_NO_MATCH", KDCUnknownEtype: "STATUS_KDC_UNKNOWN_ETYPE",
	AuthFirewallFailed: "STATUS_AUTHENTICATION_FIREWALL_FAILED", InvalidParameter: "STATUS_INVALID_PARAMETER",
	BadTokenType: "STATUS_BAD_TOKEN_TYPE", AccessDenied: "STATUS_ACCESS_DENIED", ServerUnavailable: "STATUS_SERVER_UNAVAILABLE",
	InsufficientResource: "STATUS_INSUFFICIENT_RESOURCES", NTLMBlocked: "STATUS_NTLM_BLOCKED", DowngradeDetected: "STATUS_DOWNGRADE_DETECTED",
}

// Name is the MS-ERREF symbol, e.g. STATUS_WRONG_PASSWORD.
func (s Status) Name() string {
	if n, ok := names[s]; ok {
		return n
	}
	return fmt.Sprintf("NTSTATUS_%08X", uint32(s))
}

// String is the value as Windows event logs show it: 0xC000006A.
func (s Status) String() string { return fmt.Sprintf("0x%08X", uint32(s)) }
