package explain

import (
	"fmt"
	"strings"

	"github.com/doublehop/doublehop/directory"
	"github.com/doublehop/doublehop/events"
)

// The failure families, in the order a flow meets them: Bob's logon at the
// DC, the site's ticket, the site itself, the site's requests to the DC, SQL
// Server. Within a hop the cause comes before its symptom (an account state
// before the delegation it defeats; a wrong key before the 401 it causes).
// Each family reads its evidence from any tier's events and prints commands
// that work as pasted.
var rules = []rule{
	ldapRefusal,       // tool → dc   LDAP (when the last failure is one): a bind without signing or a password in clear; a write without the right, or a duplicate SPN
	accountState,      // any → dc    disabled, locked out, expired, logon hours, password to change
	preauth,           // ws01 → dc   4771 KDC_ERR_PREAUTH_FAILED
	etype,             // any → dc    KDC_ERR_ETYPE_NOSUPP
	clockSkew,         // any         KRB_AP_ERR_SKEW
	keytabUnreadable,  // web         5021 (the seed's 503)
	ntlmFallback,      // ws01 → web  4624 package NTLM + 18456 ANONYMOUS LOGON
	duplicateSPN,      // any → dc    KDC event 11
	wrongKey,          // → web, sql  4625 / 18452 KRB_AP_ERR_MODIFIED + the 4769 that issued it
	serviceLogon,      // web → dc    4771 for the account a tier runs as: its keytab is stale
	unknownService,    // any → dc    KDC_ERR_S_PRINCIPAL_UNKNOWN SERVER_UNKNOWN
	sensitiveUser,     // web → dc    the user cannot be delegated (before the delegation it defeats)
	delegationRefused, // web → dc    S4U2Proxy KDC_ERR_BADOPTION
	bronzeBit,         // web → dc    TICKET_SIGNATURE
	sqlLoginDenied,    // web → sql   18456 with a Windows login
	anonymousLogon,    // web → sql   18456 ANONYMOUS LOGON, no cause found at the DC
}

// cmd renders a doublehop command line, quoting what the shell would split.
func cmd(args ...string) string {
	out := []string{"doublehop"}
	for _, a := range args {
		if a == "" || strings.ContainsAny(a, " \\'\"$*?;&|<>()") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		out = append(out, a)
	}
	return strings.Join(out, " ")
}

// tierOf maps an event's tier to the keytab it uses.
func tierOf(e events.Event) string {
	if e.Tier == "sql" {
		return "sql"
	}
	return "web"
}

// rightOwner is the account an SPN belongs on: HOST/x on x's computer
// account, any other service on the account its host's tier runs as.
func rightOwner(v *directory.View, spn string) string {
	if v == nil {
		return ""
	}
	class, rest, ok := strings.Cut(spn, "/")
	if !ok {
		return ""
	}
	host, _, _ := strings.Cut(rest, ":")
	h, ok := v.Lab.Machine(host)
	if !ok {
		return ""
	}
	if strings.EqualFold(class, "HOST") || h.RunsAs == "" {
		return h.Account
	}
	return h.RunsAs
}

// holders lists the accounts that hold spn.
func holders(v *directory.View, spn string) []string {
	if v == nil {
		return nil
	}
	var out []string
	for _, a := range v.Lab.Accounts {
		for _, s := range a.SPNs {
			if strings.EqualFold(s, spn) {
				out = append(out, a.Name)
			}
		}
	}
	return out
}

// spnFix puts spn on owner alone: removed from every other holder first,
// then added with setspn -S (which checks for duplicates).
func spnFix(v *directory.View, spn, owner string) []string {
	var fix []string
	has := false
	for _, h := range holders(v, spn) {
		if strings.EqualFold(h, owner) {
			has = true
			continue
		}
		fix = append(fix, cmd("setspn", "-D", spn, h))
	}
	if !has && owner != "" {
		fix = append(fix, cmd("setspn", "-S", spn, owner))
	}
	return fix
}

func preauth(in Input, fail events.Event) (Diagnosis, bool) {
	e, ok := find(in.Events, func(e events.Event) bool {
		return is(events.PreauthFailed, "KDC_ERR_PREAUTH_FAILED")(e) && tierRunningAs(in.View, user(e.Client)) == ""
	})
	if !ok {
		return Diagnosis{}, false
	}
	return Diagnosis{ID: "wrong-password", Hop: "ws01 → dc", Evidence: []events.Event{e},
		Summary: fmt.Sprintf("%s's password is wrong (pre-authentication failed)", user(e.Client)),
		Why:     "The client proves its password by encrypting a timestamp with its key (PA-ENC-TIMESTAMP); the KDC could not decrypt it: KDC_ERR_PREAUTH_FAILED (24), Security event 4771.",
		Fix:     []string{cmd("client", "kinit", user(e.Client))},
		Note:    "type the right password (the lab's are in lab.env)"}, true
}

// tierRunningAs is the tier ("web", "sql") that runs as the account, or "".
func tierRunningAs(v *directory.View, account string) string {
	if v == nil {
		return ""
	}
	for _, role := range []string{"web", "sql"} {
		if h := v.Lab.HostByRole(role); h != nil && strings.EqualFold(h.RunsAs, account) {
			return role
		}
	}
	return ""
}

// A tier's own logon refused for its password (the Netlogon channel's or
// S4U's logon with the keytab): the account's password changed after the
// keytab was exported. Its place is the web → dc hop, after Bob's ticket.
func serviceLogon(in Input, fail events.Event) (Diagnosis, bool) {
	e, ok := find(in.Events, func(e events.Event) bool {
		return is(events.PreauthFailed, "KDC_ERR_PREAUTH_FAILED")(e) && tierRunningAs(in.View, user(e.Client)) != ""
	})
	if !ok {
		return Diagnosis{}, false
	}
	acct := user(e.Client)
	tier := tierRunningAs(in.View, acct)
	return Diagnosis{ID: "stale-keytab", Hop: tier + " → dc", Evidence: []events.Event{e},
		Summary: fmt.Sprintf("the %s tier's keytab holds an old key of %s: its own logon at the KDC fails (4771)", tier, acct),
		Why:     "A service logs on with the keys in its keytab (for its Netlogon channel, or before S4U2Proxy); a password reset gave the account new keys and a new kvno, and the exported keytab still holds the old ones: KDC_ERR_PREAUTH_FAILED (24).",
		Fix:     []string{cmd("keytab", "-o", in.keytabPath(tier), acct)},
		Note:    "on Windows: ktpass again after the reset, or let the service run as a gMSA"}, true
}

// An account the KDC will not issue for: its state (disabled, locked out,
// expired, outside its logon hours, a password to change), for the user's
// logon, a service's own logon, or a ticket to a disabled service's SPN.
func accountState(in Input, fail events.Event) (Diagnosis, bool) {
	e, ok := find(in.Events, func(e events.Event) bool {
		if e.Outcome != events.Failure || (e.Tier != "kdc" && e.ID != events.CredentialValidation) {
			return false
		}
		_, known := accountStates[e.Reason]
		return known
	})
	if !ok {
		return Diagnosis{}, false
	}
	st := accountStates[e.Reason]
	acct := user(e.Client)
	if e.Reason == "SERVICE_DISABLED" {
		acct = e.Account
	}
	hop := "ws01 → dc"
	if !strings.EqualFold(acct, "bob") && e.ID != events.CredentialValidation {
		hop = "web → dc"
	}
	d := Diagnosis{ID: st.id, Hop: hop, Evidence: []events.Event{e},
		Summary: fmt.Sprintf("the account %s %s: the DC refuses its logon (%s)", acct, st.what, e.Status),
		Why:     st.why, Fix: []string{cmd(append([]string{"account"}, st.fix(acct)...)...)}, Note: st.note}
	if lock, ok := find(in.Events, is(events.AccountLockedOut, "")); ok && e.Reason == "LOCKED_OUT" {
		d.Evidence = append([]events.Event{lock}, d.Evidence...)
	}
	return d, true
}

type accountStateFamily struct {
	id, what, why, note string
	fix                 func(acct string) []string
}

var accountStates = map[string]accountStateFamily{
	"DISABLED": {id: "account-disabled", what: "is disabled",
		why: "A disabled account (userAccountControl ACCOUNTDISABLE) gets no TGT: KDC_ERR_CLIENT_REVOKED (18), status 0xC0000072; NTLM says the same (4776).",
		fix: func(a string) []string { return []string{"set", a, "disabled=false"} }},
	"SERVICE_DISABLED": {id: "account-disabled", what: "is disabled (a service account)",
		why: "No service ticket is issued for the SPNs of a disabled account (KDC_ERR_S_PRINCIPAL_UNKNOWN), and it cannot log on itself.",
		fix: func(a string) []string { return []string{"set", a, "disabled=false"} }},
	"LOCKED_OUT": {id: "account-locked-out", what: "is locked out",
		why:  "After the domain's lockout threshold of bad passwords within the observation window (each a 4771 with 0x18, or a 4776 with 0xC000006A) the DC locks the account (4740) and refuses every logon until the lockout duration passes: KDC_ERR_CLIENT_REVOKED (18), status 0xC0000234.",
		note: "find who sent the bad passwords first (the 4771s' client addresses); a service with an old password in its configuration locks accounts again and again",
		fix:  func(a string) []string { return []string{"unlock", a} }},
	"ACCOUNT_EXPIRED": {id: "account-expired", what: "has expired",
		why: "Past accountExpires the DC refuses the account's logons: KDC_ERR_CLIENT_REVOKED (18), status 0xC0000193.",
		fix: func(a string) []string { return []string{"set", a, "expires=never"} }},
	"LOGON_HOURS": {id: "logon-hours", what: "is outside its logon hours",
		why: "logonHours restricts when an account may obtain a TGT: KDC_ERR_CLIENT_REVOKED (18), status 0xC000006F.",
		fix: func(a string) []string { return []string{"set", a, "logon_hours=all"} }},
	"PASSWORD_MUST_CHANGE": {id: "password-must-change", what: "must change its password",
		why:  "\"User must change password at next logon\" (pwdLastSet = 0): the password is right, but the KDC issues no TGT until it is changed: KDC_ERR_KEY_EXPIRED (23), status 0xC0000224.",
		note: "on Windows the user sets a new password at the next interactive logon, or an admin resets it (doublehop account password ACCOUNT NEW-PASSWORD)",
		fix:  func(a string) []string { return []string{"set", a, "must_change_password=false"} }},
	"PASSWORD_EXPIRED": {id: "password-expired", what: "has an expired password",
		why:  "A password older than the domain's maximum password age must be changed before the KDC issues a TGT: KDC_ERR_KEY_EXPIRED (23), status 0xC0000071.",
		note: "in AD the user changes it (kpasswd, Ctrl+Alt+Del), or an admin resets it",
		fix:  func(a string) []string { return []string{"set", a, "password_expired=false"} }},
}

func etype(in Input, fail events.Event) (Diagnosis, bool) {
	e, ok := find(in.Events, func(e events.Event) bool {
		return e.Tier == "kdc" && e.Outcome == events.Failure && e.CodeName == "KDC_ERR_ETYPE_NOSUPP"
	})
	if !ok {
		return Diagnosis{}, false
	}
	acct := e.Account
	if acct == "" || strings.EqualFold(acct, "krbtgt") {
		acct = user(e.Client)
	}
	if in.View != nil && !strings.HasPrefix(strings.ToLower(e.Service), "krbtgt/") {
		if r, ok := in.View.ResolveSPN(e.Service); ok {
			acct = r
		}
	}
	return Diagnosis{ID: "etype-mismatch", Hop: "ws01 → dc", Evidence: []events.Event{e},
		Summary: fmt.Sprintf("no encryption type is common to the request and %s's keys", acct),
		Why:     "The lab (like a hardened domain) allows AES only; an account whose msDS-SupportedEncryptionTypes lists only RC4 has no usable key, so the KDC answers KDC_ERR_ETYPE_NOSUPP (14, RFC 4120 §3.1.3).",
		Fix:     []string{cmd("account", "set", acct, "enctypes=aes256,aes128")}}, true
}

func clockSkew(in Input, fail events.Event) (Diagnosis, bool) {
	e, ok := find(in.Events, func(e events.Event) bool { return e.Outcome == events.Failure && e.CodeName == "KRB_AP_ERR_SKEW" })
	if !ok {
		return Diagnosis{}, false
	}
	hop := "ws01 → dc"
	if e.Tier == "web" {
		hop = "ws01 → web"
	}
	d := Diagnosis{ID: "clock-skew", Hop: hop, Evidence: []events.Event{e},
		Summary: fmt.Sprintf("the clocks of %s and %s differ by more than the allowed skew", "the client", e.Host),
		Why:     "Kerberos authenticators carry the client's time; a server or KDC refuses them when its own clock differs by more than the allowed skew, 5 minutes by default (RFC 4120 §1.6, KRB_AP_ERR_SKEW 37).",
		Note:    "on Windows: w32tm /resync on the machine whose clock is off"}
	if in.View != nil {
		p := in.View.Lab.Policy
		if p.KDCClockOffset != 0 {
			d.Fix = append(d.Fix, cmd("policy", "set", "kdc_clock_offset=0s"))
		}
		if p.ClientClockOffset != 0 {
			d.Summary = fmt.Sprintf("the workstation's clock is %s off the domain's (more than the allowed skew)", p.ClientClockOffset.D())
			d.Note = "on Windows: w32tm /resync on ws01"
			d.Fix = append(d.Fix, cmd("policy", "set", "client_clock_offset=0s"))
		}
		if p.MaxSkew.D() > 0 && p.MaxSkew.D() < directory.DefaultMaxSkew {
			d.Fix = append(d.Fix, cmd("policy", "set", "max_skew="+directory.DefaultMaxSkew.String()))
		}
	}
	if len(d.Fix) == 0 {
		d.Note = "synchronize the client's clock (w32tm /resync; in the lab, run the client without --clock-offset)"
	}
	return d, true
}

func keytabUnreadable(in Input, fail events.Event) (Diagnosis, bool) {
	e, ok := find(in.Events, is(events.AppPoolIdentityInvalid, ""))
	if !ok {
		return Diagnosis{}, false
	}
	if e.Reason == "KEYTAB_NO_KEY" {
		return Diagnosis{ID: "keytab-wrong-account", Hop: "web → dc", Evidence: []events.Event{e},
			Summary: fmt.Sprintf("the site's keytab holds no key for %s, the account it runs as: it cannot log on to get its own tickets", e.Account),
			Why:     "A service logs on with its own account's key (the app pool identity's logon) before it can ask for S4U or delegated tickets; a keytab exported for another account has none.",
			Fix:     []string{cmd("keytab", "-o", in.keytabPath("web"), e.Account)}}, true
	}
	return Diagnosis{ID: "keytab-unreadable", Hop: "web", Evidence: []events.Event{e},
		Summary: "the site cannot read its service account's keytab: HTTP 503 Service Unavailable",
		Why:     "Like an IIS application pool whose identity is invalid (the seed's Service Unavailable before aspnet_regiis -ga), the site cannot accept any Kerberos ticket without its account's keys.",
		Fix:     []string{cmd("keytab", "-o", in.keytabPath("web"), e.Account)}}, true
}

// The silent fallback: the site logged the user on with NTLM (4624, package
// NTLM) and the page works, but NTLM cannot be delegated, so SQL Server saw
// ANONYMOUS LOGON. The cause is why Negotiate did not use Kerberos.
func ntlmFallback(in Input, fail events.Event) (Diagnosis, bool) {
	web, ok := find(in.Events, func(e events.Event) bool {
		return e.ID == events.LogonSuccess && e.Tier == "web" && strings.EqualFold(e.Package, "NTLM")
	})
	if !ok {
		return Diagnosis{}, false
	}
	sql, ok := find(in.Events, func(e events.Event) bool {
		return e.ID == events.SQLLoginFailed && strings.Contains(e.Login, "ANONYMOUS")
	})
	if !ok {
		return Diagnosis{}, false
	}
	u := user(web.Client)
	why := "Negotiate (MS-SPNG) uses Kerberos only when the client gets a service ticket for the site's SPN; otherwise it silently uses NTLM, and the page still shows the user. " +
		"NTLM proves the user to the site and to nothing else: it carries no ticket the site could pass on (MS-NLMP has no delegation). " +
		"Constrained delegation from an NTLM logon needs protocol transition (S4U2Self, \"use any authentication protocol\"); without it the site's SQL connection has no credential and goes out anonymously: " +
		"18456 \"Login failed for user 'NT AUTHORITY\\ANONYMOUS LOGON'\"."
	d := Diagnosis{Hop: "ws01 → web", Evidence: []events.Event{web, sql}, Why: why}
	if s4u, ok := find(in.Events, func(e events.Event) bool {
		return e.ID == events.ServiceTicket && e.Outcome == events.Failure && e.CodeName == "KDC_ERR_BADOPTION"
	}); ok {
		d.Evidence = append(d.Evidence, s4u) // the site's S4U2Proxy, refused for want of a forwardable ticket: the symptom
	}
	if dup, ok := find(in.Events, is(events.KDCDuplicateName, "")); ok {
		d.ID = "duplicate-spn"
		d.Evidence = append([]events.Event{dup}, d.Evidence...)
		d.Summary = fmt.Sprintf("%s is registered on more than one account, so %s got no Kerberos ticket and Negotiate fell back to NTLM: the page works, SQL Server says ANONYMOUS LOGON", dup.Service, u)
		d.Why = "An SPN must identify exactly one account; with duplicates the KDC logs event 11 (KDCEVENT_NAME_NOT_UNIQUE) and answers KDC_ERR_S_PRINCIPAL_UNKNOWN. " + why
		d.Fix = spnFix(in.View, dup.Service, orDefault(rightOwner(in.View, dup.Service), web.Account))
		d.Note = "doublehop setspn -X lists every duplicate"
		return d, true
	}
	if unk, ok := find(in.Events, func(e events.Event) bool {
		return e.ID == events.ServiceTicket && e.Outcome == events.Failure && e.CodeName == "KDC_ERR_S_PRINCIPAL_UNKNOWN" && strings.HasPrefix(strings.ToUpper(e.Service), "HTTP/")
	}); ok {
		d.ID = "ntlm-fallback-no-spn"
		d.Evidence = append([]events.Event{unk}, d.Evidence...)
		d.Summary = fmt.Sprintf("no account holds %s, so %s's Negotiate fell back to NTLM: the page works, SQL Server says ANONYMOUS LOGON", unk.Service, u)
		d.Why = fmt.Sprintf("The browser asked the KDC for %s (the name as typed, or as its resolver canonicalized it) and got KDC_ERR_S_PRINCIPAL_UNKNOWN. ", unk.Service) + why
		d.Fix = spnFix(in.View, unk.Service, web.Account)
		d.Note = "or open the site by the name that has the SPN (or publish the alias as a CNAME)"
		return d, true
	}
	if in.View != nil && len(in.View.Lab.Web.Providers) > 0 && !strings.EqualFold(in.View.Lab.Web.Providers[0], "Negotiate") {
		d.ID = "web-ntlm-provider"
		d.Summary = fmt.Sprintf("the site offers %s first, not Negotiate, so %s logged on with NTLM: the page works, SQL Server says ANONYMOUS LOGON", in.View.Lab.Web.Providers[0], u)
		d.Why = "IIS's Windows Authentication providers decide what the browser may use; with NTLM first (or alone) no Kerberos ticket is ever requested. " + why
		d.Fix = []string{cmd("policy", "set", "web.providers=Negotiate,NTLM")}
		return d, true
	}
	d.ID = "ntlm-fallback"
	d.Summary = fmt.Sprintf("%s logged on to the site with NTLM, not Kerberos: the page works, SQL Server says ANONYMOUS LOGON", u)
	d.Why = "No Kerberos ticket was requested for the site (an IP address in the URL, no KDC reachable, or a client that chose NTLM). " + why
	d.Note = "open the site by its host name with an SPN (http://web.lab.local/); to delegate NTLM users anyway, allow protocol transition"
	d.Fix = []string{cmd("delegation", "set", web.Account, "constrained", "--to", "MSSQLSvc/sql.lab.local:1433", "--protocol-transition")}
	return d, true
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func duplicateSPN(in Input, fail events.Event) (Diagnosis, bool) {
	e, ok := find(in.Events, is(events.KDCDuplicateName, ""))
	if !ok {
		return Diagnosis{}, false
	}
	owner := rightOwner(in.View, e.Service)
	fix := spnFix(in.View, e.Service, owner)
	if len(fix) == 0 {
		fix = []string{cmd("setspn", "-X")}
	}
	hop := "ws01 → dc"
	if strings.HasPrefix(strings.ToUpper(e.Service), "MSSQLSVC/") {
		hop = "web → dc"
	}
	return Diagnosis{ID: "duplicate-spn", Hop: hop, Evidence: []events.Event{e},
		Summary: fmt.Sprintf("%s is registered on more than one account (%s): the KDC issues no ticket", e.Service, strings.Join(holders(in.View, e.Service), ", ")),
		Why:     "An SPN must identify exactly one account; with duplicates the KDC cannot know whose key to use, logs KDC event 11 (KDCEVENT_NAME_NOT_UNIQUE) and answers KDC_ERR_S_PRINCIPAL_UNKNOWN. A Windows client then falls back to NTLM; one that may not (Restrict NTLM) gets no access at all.",
		Fix:     fix, Note: "setspn -S refuses duplicates; setspn -A (the old way) does not"}, true
}

// A tier could not decrypt the ticket it was given (the web tier's 4625 or
// SQL Server's 18452 with KRB_AP_ERR_MODIFIED). The KDC's 4769 for that
// service names the account whose key it used; that settles which side is
// wrong: the SPN is on another account (or was mapped to HOST), the tier's
// keytab is stale, or the tier holds another account's keytab.
func wrongKey(in Input, fail events.Event) (Diagnosis, bool) {
	tier, ok := find(in.Events, func(e events.Event) bool {
		return (e.ID == events.LogonFailure || e.ID == events.SQLUntrustedDomain || e.ID == events.NetlogonSessionFailed) && e.CodeName == "KRB_AP_ERR_MODIFIED"
	})
	if !ok {
		return Diagnosis{}, false
	}
	hop := "ws01 → web"
	switch {
	case tier.Tier == "sql":
		hop = "web → sql"
	case tier.ID == events.NetlogonSessionFailed:
		hop = "web → dc (Netlogon)" // a member's secure channel: its ticket for the DC's HOST SPN
	}
	keytabFix := []string{cmd("keytab", "-o", in.keytabPath(tierOf(tier)), tier.Account)}
	// The KDC's 4769 for the service says whose key it used: another
	// account's means the SPN is in the wrong place, whatever the kvno.
	tgs, ok := find(in.Events, func(e events.Event) bool {
		return e.ID == events.ServiceTicket && e.Outcome == events.Success && strings.EqualFold(e.Service, tier.Service)
	})
	wrongOwner := ok && !strings.EqualFold(tgs.Account, tier.Account)
	if tier.Reason == "KVNO_MISMATCH" && !wrongOwner {
		// Which side is stale? A ticket older than the account's current kvno
		// was cached before the reset; a ticket at the current kvno means the
		// keytab is old.
		if in.View != nil {
			if a, ok := in.View.Account(tier.Account); ok && tier.KVNO != 0 && tier.KVNO < a.KVNO {
				return Diagnosis{ID: "stale-ticket", Hop: hop, Evidence: []events.Event{tier},
					Summary: fmt.Sprintf("the client presented a ticket for %s at key version %d, cached before %s's password reset (now kvno %d)", tier.Service, tier.KVNO, tier.Account, a.KVNO),
					Why:     "Tickets stay in the client's cache until they expire; one issued before the reset is encrypted with the old key, which the service no longer holds (RFC 4120 §3.2.3).",
					Fix:     []string{cmd("client", "kdestroy"), cmd("client", "kinit")}, Note: "klist purge on Windows"}, true
			}
		}
		return Diagnosis{ID: "stale-keytab", Hop: hop, Evidence: []events.Event{tier},
			Summary: fmt.Sprintf("the ticket for %s uses %s's key version %d, but the %s tier's keytab holds an older key", tier.Service, tier.Account, tier.KVNO, tierOf(tier)),
			Why:     "Resetting an account's password creates a new key and bumps msDS-KeyVersionNumber; the KDC encrypts new tickets with it. A keytab exported before the reset holds the old key, so the service cannot decrypt: KRB_AP_ERR_MODIFIED (RFC 4120 §3.2.3; MIT would say KRB_AP_ERR_BADKEYVER).",
			Fix:     keytabFix, Note: "re-export the keytab after every password change"}, true
	}
	if !ok {
		return Diagnosis{}, false
	}
	if strings.EqualFold(tgs.Account, tier.Account) && tier.ID != events.NetlogonSessionFailed {
		return Diagnosis{ID: "keytab-wrong-account", Hop: hop, Evidence: []events.Event{tgs, tier},
			Summary: fmt.Sprintf("the KDC encrypted the ticket for %s with %s's key, as it should, but the %s tier's keytab holds another account's keys", tier.Service, tier.Account, tierOf(tier)),
			Why:     fmt.Sprintf("A service decrypts tickets with the keys of the account it runs as (%s). A keytab exported for another account cannot decrypt them: KRB_AP_ERR_MODIFIED (RFC 4120 §3.2.3).", tier.Account),
			Fix:     keytabFix}, true
	}
	d := Diagnosis{Hop: hop, Evidence: []events.Event{tgs, tier}, Fix: spnFix(in.View, tier.Service, tier.Account)}
	if in.View == nil {
		d.Fix = []string{cmd("setspn", "-S", tier.Service, tier.Account)}
	}
	if tgs.Reason == "SPN_MAPPED_TO_HOST" {
		d.ID = "missing-http-spn"
		host := strings.SplitN(tier.Service, "/", 2)[1]
		d.Summary = fmt.Sprintf("%s's ticket for %s was encrypted with %s's key (implicit HOST mapping) but the site runs as %s",
			user(tgs.Client), tier.Service, tgs.Account, tier.Account)
		d.Why = fmt.Sprintf("No account registers %s, so the KDC applied sPNMappings (HTTP is an alias of HOST) and used the account holding HOST/%s, the machine account %s. "+
			"The site decrypts tickets with %s's key, fails, and answers KRB_AP_ERR_MODIFIED (41, 0x29; RFC 4120 §3.2.3) — the lsass log's \"KerbVerifyApRequest failed ... 29\" and the client's Kerberos event 4.",
			tier.Service, host, tgs.Account, tier.Account)
		return d, true
	}
	d.ID = "spn-on-wrong-account"
	d.Summary = fmt.Sprintf("%s is registered on %s but the %s tier runs as %s", tier.Service, tgs.Account, tierOf(tier), tier.Account)
	d.Why = fmt.Sprintf("The KDC encrypts a service ticket with the key of the account that holds the SPN (%s); the service holds %s's keys and cannot decrypt it: KRB_AP_ERR_MODIFIED (RFC 4120 §3.2.3).", tgs.Account, tier.Account)
	return d, true
}

func unknownService(in Input, fail events.Event) (Diagnosis, bool) {
	e, ok := find(in.Events, func(e events.Event) bool {
		return e.Tier == "kdc" && e.Outcome == events.Failure && e.CodeName == "KDC_ERR_S_PRINCIPAL_UNKNOWN" && e.Reason == "SERVER_UNKNOWN"
	})
	if !ok {
		return Diagnosis{}, false
	}
	owner := rightOwner(in.View, e.Service)
	d := Diagnosis{ID: "spn-unknown", Hop: "ws01 → dc", Evidence: []events.Event{e},
		Summary: fmt.Sprintf("no account holds %s (and no implicit mapping applies)", e.Service),
		Why:     "The KDC looks the requested SPN up in the directory; MSSQLSvc is not aliased to HOST by sPNMappings, so a missing SQL SPN is KDC_ERR_S_PRINCIPAL_UNKNOWN (7). The SQL client then falls back to NTLM: a user connecting directly logs in with auth_scheme NTLM, and a site impersonating the user (whose token cannot leave its host) arrives as NT AUTHORITY\\ANONYMOUS LOGON.",
		Fix:     spnFix(in.View, e.Service, owner)}
	if strings.HasPrefix(strings.ToUpper(e.Service), "MSSQLSVC/") {
		d.Hop = "web → dc"
	}
	if owner == "" {
		d.Fix = nil
		d.Note = fmt.Sprintf("register %s on the account the service runs as (doublehop setspn -S %s ACCOUNT)", e.Service, e.Service)
	}
	return d, true
}

// The user cannot be delegated (sensitive, or in Protected Users): every
// delegation the site tries fails for this user, whatever it is configured
// with, so this is named before the delegation refusal it causes.
func sensitiveUser(in Input, fail events.Event) (Diagnosis, bool) {
	if in.View == nil {
		return Diagnosis{}, false
	}
	e, ok := find(in.Events, func(e events.Event) bool {
		return e.ID == events.ServiceTicket && e.Outcome == events.Failure && e.CodeName == "KDC_ERR_BADOPTION"
	})
	if !ok {
		return Diagnosis{}, false
	}
	u := user(e.Client)
	a, ok := in.View.Account(u)
	if !ok || !a.CannotBeDelegated() {
		return Diagnosis{}, false
	}
	d := Diagnosis{ID: "user-sensitive", Hop: "web → dc", Evidence: []events.Event{e},
		Summary: fmt.Sprintf("%s is marked \"sensitive and cannot be delegated\" (or is in Protected Users): no service may act as %s elsewhere", u, u),
		Why:     "NOT_DELEGATED users never get forwardable tickets (MS-KILE 3.3.5.7, MS-SFU 3.2.5.1.2), and the KDC refuses S4U2Proxy and RBCD for them (KDC_ERR_BADOPTION, STATUS_ACCOUNT_RESTRICTION). This is a protection working as designed.",
		Note:    fmt.Sprintf("lift it only if %s really may be delegated", u)}
	if a.Sensitive {
		d.Fix = append(d.Fix, cmd("account", "set", u, "sensitive=false"))
	}
	if a.InGroup("Protected Users") {
		d.Fix = append(d.Fix, cmd("account", "set", u, "groups=-Protected Users"))
	}
	return d, true
}

// The web tier asked the KDC for a ticket to SQL as the user and was refused.
func delegationRefused(in Input, fail events.Event) (Diagnosis, bool) {
	e, ok := find(in.Events, func(e events.Event) bool {
		return e.ID == events.ServiceTicket && e.Outcome == events.Failure && e.CodeName == "KDC_ERR_BADOPTION"
	})
	if !ok {
		return Diagnosis{}, false
	}
	svc := ""
	if len(e.Transited) > 0 {
		svc = strings.SplitN(e.Transited[len(e.Transited)-1], "@", 2)[0]
	}
	u := user(e.Client)
	d := Diagnosis{Hop: "web → sql", Evidence: []events.Event{e}}
	if sql, ok := find(in.Events, is(events.SQLLoginFailed, "")); ok {
		d.Evidence = append(d.Evidence, sql)
	}
	kcd := cmd("delegation", "set", svc, "constrained", "--to", e.Target)
	switch e.Reason {
	case "NOT_TRUSTED_FOR_DELEGATION", "NOT_ALLOWED_TO_DELEGATE":
		if in.View != nil {
			if a, ok := in.View.Account(svc); ok && a.Delegation.Mode == directory.DelegUnconstrained {
				d.ID = "unconstrained-no-tgt"
				d.Summary = fmt.Sprintf("%s is trusted for unconstrained delegation, but %s's client sent no forwarded TGT, so the site had nothing to delegate", svc, u)
				d.Why = "Unconstrained delegation only works when the client forwards its TGT (RFC 4121 §4.1.1 DlgOpt); Windows clients do so for ok-as-delegate services when the TGT is forwardable and delegation is allowed. The site's fallback, S4U2Proxy, is refused because the account has no constrained delegation (KDC_ERR_BADOPTION)."
				d.Fix = []string{kcd}
				d.Note = "constrained delegation is the safer setting; unconstrained hands the site every user's TGT"
				return d, true
			}
		}
		if e.Reason == "NOT_TRUSTED_FOR_DELEGATION" {
			d.ID = "no-delegation"
			d.Summary = fmt.Sprintf("%s is not trusted for delegation: the site could not get a ticket to %s as %s, and SQL Server saw NT AUTHORITY\\ANONYMOUS LOGON", svc, e.Target, u)
			d.Why = "Impersonation gives the site the user's identity on its own host only. To reach another host as the user it needs a delegable credential: a forwarded TGT (unconstrained), or the KDC's consent to S4U2Proxy (constrained delegation, MS-SFU 3.2.5.2) — refused here with KDC_ERR_BADOPTION. Without one the connection goes out anonymously: 18456 \"Login failed for user 'NT AUTHORITY\\ANONYMOUS LOGON'\"."
			d.Fix = []string{kcd}
			misplaced, note := misplacedDelegation(in.View, svc, e.Account)
			d.Fix = append(d.Fix, misplaced...)
			d.Note = note
			return d, true
		}
		d.ID = "kcd-wrong-spn"
		d.Summary = fmt.Sprintf("%s may delegate, but not to %s: that SPN is not in its msDS-AllowedToDelegateTo", svc, e.Target)
		d.Why = "Constrained delegation is an exact list of SPNs (MS-SFU 3.2.5.2.1); MSSQLSvc/sql.lab.local and MSSQLSvc/sql.lab.local:1433 are different names. The KDC answered KDC_ERR_BADOPTION (STATUS_NO_MATCH / STATUS_NOT_FOUND)."
		d.Fix = []string{kcd}
		if in.View != nil {
			if a, ok := in.View.Account(svc); ok && len(a.Delegation.AllowedTo) > 0 {
				args := []string{"delegation", "set", svc, "constrained", "--to", strings.Join(append(a.Delegation.AllowedTo, e.Target), ",")}
				if a.Delegation.ProtocolTransition {
					args = append(args, "--protocol-transition")
				}
				d.Fix = []string{cmd(args...)}
			}
		}
	case "EVIDENCE_TKT_NOT_FORWARDABLE":
		d.ID = "evidence-not-forwardable"
		d.Summary = fmt.Sprintf("%s's ticket to %s is not forwardable, so constrained delegation refuses it", u, svc)
		d.Why = "Classic constrained delegation requires a forwardable evidence ticket (MS-SFU 3.2.5.2.1). A ticket obtained by S4U2Self is forwardable only when the service is trusted to authenticate for delegation (\"use any authentication protocol\", MS-SFU 3.2.5.1.2)."
		d.Fix = []string{kcd + " --protocol-transition"}
	default:
		d.ID = "delegation-refused"
		d.Summary = fmt.Sprintf("the KDC refused delegation for %s: %s", u, e.Reason)
		d.Why = "KDC_ERR_BADOPTION: " + e.Message
	}
	return d, true
}

// misplacedDelegation finds delegation set where it has no effect: on an
// account the site does not run as (its machine account, typically), or
// RBCD written on the front end instead of the back end (backEnd). It
// returns the commands that remove it and a note naming the alternative.
func misplacedDelegation(v *directory.View, svc, backEnd string) ([]string, string) {
	if v == nil {
		return nil, ""
	}
	var fix []string
	note := ""
	for _, a := range v.Lab.Accounts {
		if strings.EqualFold(a.Name, svc) || a.Type == directory.TypeKrbtgt {
			continue
		}
		if a.Delegation.Mode == directory.DelegConstrained || a.Delegation.Mode == directory.DelegUnconstrained {
			for _, h := range v.Lab.Hosts {
				if strings.EqualFold(h.Account, a.Name) && strings.EqualFold(h.RunsAs, svc) {
					fix = append(fix, cmd("delegation", "set", a.Name, "none"))
					note = fmt.Sprintf("delegation was set on %s, the machine account of the site's host; the site runs as %s, so that setting did nothing", a.Name, svc)
				}
			}
		}
	}
	if front := v.Lab.Account(svc); front != nil && backEnd != "" {
		for _, x := range front.AllowedToActOnBehalfOf {
			if strings.EqualFold(x, backEnd) {
				fix = append(fix, cmd("delegation", "rbcd", svc, "--clear"))
				note = fmt.Sprintf("RBCD was written on the front end (%s allows %s): it belongs on the back end; the alternative to constrained delegation is %s",
					svc, backEnd, cmd("delegation", "rbcd", backEnd, "--allow", svc))
			}
		}
	}
	return fix, note
}

func bronzeBit(in Input, fail events.Event) (Diagnosis, bool) {
	e, ok := find(in.Events, func(e events.Event) bool { return e.Outcome == events.Failure && e.Reason == "TICKET_SIGNATURE" })
	if !ok {
		return Diagnosis{}, false
	}
	return Diagnosis{ID: "bronze-bit", Hop: "web → dc", Evidence: []events.Event{e},
		Summary: "a service presented an evidence ticket it had modified (the forwardable bit): the KDC refused it",
		Why:     "CVE-2020-17049 (\"Bronze Bit\"): a service can decrypt and re-encrypt tickets to itself and set FORWARDABLE. The PAC ticket signature (MS-PAC 2.8.3), computed by the KDC with the krbtgt key over the whole ticket, exposes the change: KRB_AP_ERR_MODIFIED.",
		Note:    "nothing to fix: this is the protection working; investigate the service account that sent it"}, true
}

func sqlLoginDenied(in Input, fail events.Event) (Diagnosis, bool) {
	e, ok := find(in.Events, is(events.SQLLoginFailed, ""))
	if !ok || strings.Contains(e.Login, "ANONYMOUS") || e.AuthScheme != "KERBEROS" {
		return Diagnosis{}, false
	}
	d := Diagnosis{Hop: "web → sql", Evidence: []events.Event{e}}
	if strings.HasSuffix(strings.ToLower(e.Login), `\svc_iispool`) {
		d.ID = "impersonation-off"
		d.Summary = "the site reached SQL Server as its own identity (LAB\\svc_iispool), not as the user"
		d.Why = "Without <identity impersonate=\"true\"/> the page runs as the application pool identity, and so does its SQL connection; SQL Server has no login for it (18456)."
		d.Fix = []string{cmd("policy", "set", "web.impersonate=true")}
		return d, true
	}
	d.ID = "sql-login-denied"
	d.Summary = fmt.Sprintf("Kerberos worked end to end, but SQL Server does not let %s connect (18456 state %d)", e.Login, e.State)
	d.Why = "Authentication succeeded (the SQL tier decrypted a ticket for the user); authorization did not: the login is missing, denied CONNECT SQL or disabled. SQL Server tells the client only \"Login failed\" with state 1; the server's errorlog has the real state."
	d.Fix = []string{cmd("policy", "set", "sql.login="+e.Login+":grant")}
	return d, true
}

// ANONYMOUS LOGON with no KDC refusal in the flow: the site had no delegable
// credential and did not even try (e.g. the client sent no forwarded TGT and
// the site is only trusted for unconstrained delegation).
func anonymousLogon(in Input, fail events.Event) (Diagnosis, bool) {
	e, ok := find(in.Events, func(e events.Event) bool {
		return e.ID == events.SQLLoginFailed && strings.Contains(e.Login, "ANONYMOUS")
	})
	if !ok {
		return Diagnosis{}, false
	}
	return Diagnosis{ID: "anonymous-logon", Hop: "web → sql", Evidence: []events.Event{e},
		Summary: "SQL Server saw NT AUTHORITY\\ANONYMOUS LOGON: the site had no delegable credential for the user",
		Why:     "The site impersonates the user on its own host, but the connection to SQL Server needs a ticket as the user, and nothing provided one (no forwarded TGT, no S4U2Proxy).",
		Fix:     []string{cmd("delegation", "set", "svc_iispool", "constrained", "--to", "MSSQLSvc/sql.lab.local:1433")}}, true
}
