package sqltier

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/doublehop/doublehop/events"
	"github.com/doublehop/doublehop/krb/gss"
	"github.com/doublehop/doublehop/krb/kerr"
	"github.com/doublehop/doublehop/krb/kmsg"
	"github.com/doublehop/doublehop/krb/pac"
	"github.com/doublehop/doublehop/ntlm"
	"github.com/doublehop/doublehop/sqltier/tds"
)

// Logins SQL Server reports for connections without a usable credential.
const anonymousLogon = `NT AUTHORITY\ANONYMOUS LOGON`

// Authentication schemes as sys.dm_exec_connections.auth_scheme shows them.
const (
	schemeKerberos = "KERBEROS"
	schemeNTLM     = "NTLM"
	schemeSQL      = "SQL"
)

// session is what a successful login established.
type session struct {
	login      string // LAB\bob
	principal  string // bob@LAB.LOCAL ("" for SQL logins)
	authScheme string
	sec        *gss.SecContext    // Kerberos logons
	ntlm       *ntlm.ServerResult // NTLM logons
	reply      []byte             // the last security token for the client (AP-REP, SPNEGO accept-completed)
	database   string
	defaultDB  string
	app        string
	host       string
	library    string
	loginTime  time.Time
	tranID     uint64
}

// loginFailure is a refused login: the tokens the client gets (SQL Server
// always shows state 1 to the client) and the event carrying the errorlog
// text with the real state.
type loginFailure struct {
	client []tds.ServerMessage
	before []events.Event // errorlog entries SQL Server writes first (17806)
	event  events.Event
}

// 18456 states and their errorlog reasons (SQL Server errorlog texts;
// MSSQLSERVER_18456 documentation; "Understanding login failed (Error 18456)",
// SQL Protocols team, 2006).
const (
	stateDisabled      = 7  // the account is disabled
	stateTokenAccess   = 11 // valid Windows token, no login grants server access
	stateLoginAccess   = 12 // the login exists, CONNECT SQL is denied
	stateDatabase      = 38 // the database named in LOGIN7 cannot be opened
	stateDefaultDB     = 40 // the login's default database cannot be opened
	stateWindowsOnly   = 58 // SQL authentication on a Windows-authentication-only server
	reasonDisabled     = "The account is disabled."
	reasonTokenAccess  = "Token-based server access validation failed with an infrastructure error. Check for previous errors."
	reasonLoginAccess  = "Login-based server access validation failed with an infrastructure error. Check for previous errors."
	reasonWindowsOnly  = "An attempt to login using SQL authentication failed. Server is configured for Windows authentication only."
	msgUntrustedDomain = "Login failed. The login is from an untrusted domain and cannot be used with Integrated authentication."
)

// authenticate turns LOGIN7 into a session or a failure, SQL Server style:
// SQL authentication is refused (Windows-only server); the SSPI blob is
// NTLM (bare or inside SPNEGO: a handshake of SSPI messages, validated by
// the DC) or Kerberos (SPNEGO, raw krb5 GSS or a bare AP-REQ, verified with
// the service keytab); the Windows identity maps to LAB\user and the login
// table decides.
func (c *conn) authenticate(l *tds.Login7) (*session, *loginFailure) {
	now := c.srv.cfg.Now()
	s := &session{app: l.AppName, host: l.HostName, library: l.CltIntName, loginTime: now}
	if !l.IntegratedSecurity() {
		return nil, c.failed18456(l.UserName, stateWindowsOnly, reasonWindowsOnly, "SQL_AUTH_WINDOWS_ONLY", schemeSQL, nil)
	}
	cur := c.srv.current()
	if msg, _, _ := gss.SplitNTLM(l.SSPI); msg != nil {
		return c.ntlmLogin(l, s, cur)
	}
	sec, err := cur.acceptor.Accept(l.SSPI)
	if err != nil {
		if errors.Is(err, gss.ErrNotKerberos) {
			// No credential at all: SQL Server sees the anonymous token.
			return nil, c.failed18456(anonymousLogon, stateTokenAccess, reasonTokenAccess, "ANONYMOUS_NO_CREDENTIAL", "", nil)
		}
		return nil, c.sspiFailed(err)
	}
	s.sec = sec
	s.principal = sec.ClientPrincipal()
	s.authScheme = schemeKerberos
	if sec.MutualRequired {
		s.reply = sec.ResponseToken
	}
	if !strings.EqualFold(sec.ClientRealm, c.srv.cfg.Realm) {
		// A principal of a realm this domain does not trust.
		return nil, c.untrusted(s, fmt.Sprintf("client realm %s is not %s", sec.ClientRealm, c.srv.cfg.Realm), "UNTRUSTED_REALM")
	}
	s.login = c.srv.cfg.NetBIOS + `\` + strings.Join(sec.Client.NameString, "/")
	return c.authorize(l, s, cur)
}

// authorize applies the login table and opens the database for an
// authenticated Windows identity (s.login).
func (c *conn) authorize(l *tds.Login7, s *session, cur *live) (*session, *loginFailure) {
	row, ok := cur.logins[strings.ToLower(s.login)]
	switch {
	case !ok:
		return nil, c.failed18456(s.login, stateTokenAccess, reasonTokenAccess, "NO_LOGIN", s.authScheme, s.sec)
	case row.Access == Deny:
		return nil, c.failed18456(s.login, stateLoginAccess, reasonLoginAccess, "CONNECT_SQL_DENIED", s.authScheme, s.sec)
	case row.Access == Disabled:
		return nil, c.failed18456(s.login, stateDisabled, reasonDisabled, "LOGIN_DISABLED", s.authScheme, s.sec)
	}
	s.login = row.Name // the login's own spelling, as SUSER_SNAME() returns it
	s.defaultDB = c.srv.cfg.Database
	if row.DefaultDatabase != "" {
		s.defaultDB = row.DefaultDatabase
	}
	db, state := s.defaultDB, stateDefaultDB
	if l.Database != "" {
		db, state = l.Database, stateDatabase
	}
	name, ok := c.srv.database(db)
	if !ok {
		f := c.failed18456(s.login, state, fmt.Sprintf("Failed to open the explicitly specified database '%s'.", db), "DATABASE_UNAVAILABLE", s.authScheme, s.sec)
		if state == stateDefaultDB {
			f.event.Message = strings.Replace(f.event.Message, "Failed to open the explicitly specified database", "Failed to open the database configured in the login object", 1)
		}
		f.client = append([]tds.ServerMessage{c.errorMsg(4060, 1, 11, fmt.Sprintf("Cannot open database \"%s\" requested by the login. The login failed.", db))}, f.client...)
		return nil, f
	}
	s.database = name
	if l.Database == "" || state == stateDefaultDB {
		s.defaultDB = name
	}
	return s, nil
}

// database resolves a database name (case-insensitive): master or the lab's.
func (s *Server) database(name string) (string, bool) {
	switch {
	case strings.EqualFold(name, "master"):
		return "master", true
	case strings.EqualFold(name, s.cfg.Database):
		return s.cfg.Database, true
	}
	return "", false
}

// failed18456 builds "Login failed for user '%s'." (class 14, state 1 to
// the client) and the errorlog line with the real state.
func (c *conn) failed18456(login string, state int, reason, why, scheme string, sec *gss.SecContext) *loginFailure {
	text := fmt.Sprintf("Login failed for user '%s'.", login)
	ev := events.Event{
		ID: events.SQLLoginFailed, Outcome: events.Failure,
		Message: fmt.Sprintf("%s Reason: %s [CLIENT: %s]", text, reason, c.addr),
		Code:    events.SQLLoginFailed, State: state, Login: login, AuthScheme: scheme, Reason: why, Address: c.addr,
	}
	c.kerberosEvidence(&ev, sec)
	return &loginFailure{client: []tds.ServerMessage{c.errorMsg(18456, 1, 14, text)}, event: ev}
}

// sspiFailed is a Kerberos token the service could not accept: SQL Server
// logs error 17806 (SSPI handshake failed) and answers 18452; the event
// carries the Kerberos cause (code, reason, ticket SPN, etype, kvno).
func (c *conn) sspiFailed(err error) *loginFailure {
	var ae *gss.AcceptError
	ev := events.Event{ID: events.SQLUntrustedDomain, Outcome: events.Failure, State: 1, Address: c.addr, AuthScheme: schemeKerberos, Account: c.srv.cfg.ServiceAccount}
	secCode, secText := uint32(0x8009030C), "The logon attempt failed" // SEC_E_LOGON_DENIED
	cause := err.Error()
	if errors.As(err, &ae) {
		ev.Code, ev.CodeName = int(ae.Code), ae.Code.Name()
		ev.Reason = ae.Reason
		ev.Status = ae.StatusString()
		ev.Service = ae.SPN()
		ev.EType, ev.KVNO, ev.Client = ae.EType, ae.KVNO, ae.Client
		switch ae.Code {
		case kerr.KRB_AP_ERR_SKEW:
			secCode, secText = 0x80090324, "The clocks on the client and server machines are skewed" // SEC_E_TIME_SKEW
		case kerr.KRB_AP_ERR_MSG_TYPE:
			secCode, secText = 0x80090308, "The token supplied to the function is invalid" // SEC_E_INVALID_TOKEN
		}
	} else if code, ok := kerr.CodeOf(err); ok {
		ev.Code, ev.CodeName = int(code), code.Name()
	}
	return c.handshakeFailed(ev, secCode, secText, "Kerberos: "+cause)
}

// handshakeFailed is a security context that could not be established, as
// SQL Server logs it: two errorlog entries, 17806 (the SSPI error code and
// the operating system's reason) and then 18452, which is also what the
// client gets. Both carry the evidence (code, reason, ticket details).
func (c *conn) handshakeFailed(ev events.Event, secCode uint32, secText, cause string) *loginFailure {
	sspi := ev
	sspi.ID, sspi.Code = events.SQLSSPIFailed, int(secCode)
	if ev.Code != 0 {
		sspi.Code = ev.Code // the Kerberos code, when there is one
	}
	sspi.Message = fmt.Sprintf("SSPI handshake failed with error code 0x%08x, state 14 while establishing a connection with integrated security; the connection has been closed. Reason: AcceptSecurityContext failed. The operating system error code indicates the cause of failure. %s. [CLIENT: %s] (%s)",
		secCode, secText, c.addr, cause)
	ev.Message = fmt.Sprintf("%s [CLIENT: %s]", msgUntrustedDomain, c.addr)
	return &loginFailure{client: []tds.ServerMessage{c.errorMsg(18452, 1, 14, msgUntrustedDomain)}, before: []events.Event{sspi}, event: ev}
}

// untrusted refuses an authenticated principal of a foreign realm (18452).
func (c *conn) untrusted(s *session, why, reason string) *loginFailure {
	ev := events.Event{
		ID: events.SQLUntrustedDomain, Outcome: events.Failure, State: 1, Address: c.addr, AuthScheme: schemeKerberos,
		Message: fmt.Sprintf("%s [CLIENT: %s] (%s)", msgUntrustedDomain, c.addr, why), Reason: reason,
	}
	c.kerberosEvidence(&ev, s.sec)
	return &loginFailure{client: []tds.ServerMessage{c.errorMsg(18452, 1, 14, msgUntrustedDomain)}, event: ev}
}

// kerberosEvidence copies what the ticket proved into an event.
func (c *conn) kerberosEvidence(ev *events.Event, sec *gss.SecContext) {
	if ev.AuthScheme == schemeKerberos {
		ev.Account = c.srv.cfg.ServiceAccount
	}
	if sec == nil {
		return
	}
	ev.Client = sec.ClientPrincipal()
	ev.Service = sec.Service
	ev.EType, ev.KVNO = sec.EType, sec.KVNO
	ev.TicketFlags = kmsg.FlagNames(sec.Flags)
	ev.Delegated = sec.Delegated != nil
	if d := delegationInfo(sec); d != nil {
		ev.Target = d.S4U2ProxyTarget
		ev.Transited = append([]string(nil), d.TransitedServices...)
	}
	ev.Mechanism = delegationMechanism(sec)
}

func delegationInfo(sec *gss.SecContext) *pac.S4UDelegationInfo {
	if sec == nil || sec.PAC == nil {
		return nil
	}
	return sec.PAC.Info.Delegation
}

// delegationMechanism says how the service ticket came to be in a delegated
// flow: "constrained" when the PAC carries S4U delegation info (S4U2Proxy,
// classic or resource-based), "unconstrained" when the ticket is FORWARDED
// (obtained with a forwarded TGT), "" for a direct logon.
func delegationMechanism(sec *gss.SecContext) string {
	if d := delegationInfo(sec); d != nil && (d.S4U2ProxyTarget != "" || len(d.TransitedServices) > 0) {
		return "constrained"
	}
	if sec != nil && kmsg.HasFlag(sec.Flags, kmsg.FlagForwarded) {
		return "unconstrained"
	}
	return ""
}

func (c *conn) successEvent() events.Event {
	s := c.sess
	ev := events.Event{
		ID: events.SQLLoginSuccess, Outcome: events.Success, Address: c.addr,
		Message:    fmt.Sprintf("Login succeeded for user '%s'. Connection made using Windows authentication. [CLIENT: %s]", s.login, c.addr),
		Login:      s.login,
		AuthScheme: s.authScheme,
	}
	c.kerberosEvidence(&ev, s.sec)
	return ev
}
