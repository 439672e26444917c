// Package explain reads the lab's merged event timeline (and the directory)
// and says why a flow failed, at which hop, and which command fixes it — or
// that it does not know. Every rule names the evidence it used.
package explain

import (
	"fmt"
	"strings"

	"github.com/doublehop/doublehop/directory"
	"github.com/doublehop/doublehop/events"
)

// Diagnosis is explain's answer.
type Diagnosis struct {
	ID       string         `json:"id"`      // stable rule id, e.g. missing-http-spn; "unknown" when no rule fits
	Hop      string         `json:"hop"`     // "ws01 → web", "web → sql", "ws01 → dc"
	Summary  string         `json:"summary"` // one sentence
	Why      string         `json:"why"`     // the protocol reason, citing the spec
	Fix      []string       `json:"fix"`     // exact commands
	Evidence []events.Event `json:"evidence"`
}

// Unknown is the answer when the evidence fits no rule.
const Unknown = "unknown"

// OK is the answer when the last flow succeeded.
const OK = "ok"

// Input is what a diagnosis may look at.
type Input struct {
	Events []events.Event
	View   *directory.View // may be nil (container labs read it from the KDC)
}

// rule inspects the failure and the events around it.
type rule func(in Input, fail events.Event) (Diagnosis, bool)

// Explain diagnoses the most recent failure in the timeline.
func Explain(in Input) Diagnosis {
	evs := in.Events
	if len(evs) == 0 {
		return Diagnosis{ID: Unknown, Summary: "no events: nothing has happened in the lab yet (run a flow first)"}
	}
	// The latest failure that ended a flow: SQL and web failures are the
	// symptoms users see; KDC failures explain them.
	last := -1
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].Outcome == events.Failure {
			last = i
			break
		}
	}
	if last < 0 {
		return Diagnosis{ID: OK, Summary: "the last flow succeeded: no failure in the timeline"}
	}
	// A failure followed by a later success of the same kind was fixed.
	if fixedLater(evs, last) {
		return Diagnosis{ID: OK, Summary: "the last failure was followed by a successful flow: it is fixed"}
	}
	in.Events = flow(evs, last)
	fail := evs[last]
	for _, r := range rules {
		if d, ok := r(in, fail); ok {
			return d
		}
	}
	return Diagnosis{ID: Unknown, Summary: "don't know: the evidence fits no known cause",
		Why: "explain only names a cause when the events prove it; look at `doublehop events --failures`", Evidence: []events.Event{fail}}
}

// flow returns the events of the flow that ended at index last: everything
// within a few seconds before it.
func flow(evs []events.Event, last int) []events.Event {
	end := evs[last].Time
	start := last
	for start > 0 && end.Sub(evs[start-1].Time).Seconds() < 5 {
		start--
	}
	return evs[start : last+1]
}

// fixedLater reports a later success of the same kind for the same party:
// the same host and the same principal or login (a success for Bob does not
// fix Alice's failure), or for KDC and workstation failures a later ticket for
// the same client.
func fixedLater(evs []events.Event, last int) bool {
	f := evs[last]
	who := func(e events.Event) string {
		if e.Login != "" && !strings.Contains(e.Login, "ANONYMOUS") {
			return strings.ToLower(e.Login)
		}
		return strings.ToLower(e.Client)
	}
	for _, e := range evs[last+1:] {
		if e.Outcome != events.Success {
			continue
		}
		switch f.Tier {
		case "kdc", "client":
			if (e.ID == events.TGTRequested || e.ID == events.ServiceTicket || e.ID == events.LogonSuccess) &&
				f.Client != "" && strings.EqualFold(e.Client, f.Client) && (f.Service == "" || strings.EqualFold(e.Service, f.Service) || e.ID == events.LogonSuccess) {
				return true
			}
		default:
			if e.Host == f.Host && (e.ID == events.SQLLoginSuccess || e.ID == events.LogonSuccess) && (who(f) == "" || who(e) == who(f)) {
				return true
			}
		}
	}
	return false
}

// find returns the last event in the flow matching f.
func find(evs []events.Event, f func(events.Event) bool) (events.Event, bool) {
	for i := len(evs) - 1; i >= 0; i-- {
		if f(evs[i]) {
			return evs[i], true
		}
	}
	return events.Event{}, false
}

func is(id int, code string) func(events.Event) bool {
	return func(e events.Event) bool {
		return e.ID == id && (code == "" || e.CodeName == code || e.Reason == code)
	}
}

func user(principal string) string { return strings.SplitN(principal, "@", 2)[0] }

var rules = []rule{
	keytabUnreadable, ntlmFallback, duplicateSPN, clockSkew, etype, preauth, spnWrongAccount, staleKeytab,
	delegationRefused, bronzeBit, unknownService, sqlLoginDenied, anonymousLogon,
}

// The seed's first failure, and its cousins: the ticket was encrypted for an
// account other than the one the web tier runs as.
func spnWrongAccount(in Input, fail events.Event) (Diagnosis, bool) {
	web, ok := find(in.Events, is(events.LogonFailure, "KRB_AP_ERR_MODIFIED"))
	if !ok || web.Reason == "KVNO_MISMATCH" {
		return Diagnosis{}, false
	}
	tgs, ok := find(in.Events, func(e events.Event) bool {
		return e.ID == events.ServiceTicket && e.Outcome == events.Success && strings.EqualFold(e.Service, web.Service)
	})
	if !ok || strings.EqualFold(tgs.Account, web.Account) {
		return Diagnosis{}, false
	}
	d := Diagnosis{Hop: "ws01 → web", Evidence: []events.Event{tgs, web},
		Fix: []string{fmt.Sprintf("doublehop setspn -S %s %s", web.Service, web.Account)}}
	if tgs.Reason == "SPN_MAPPED_TO_HOST" {
		d.ID = "missing-http-spn"
		host := strings.SplitN(web.Service, "/", 2)[1]
		d.Summary = fmt.Sprintf("%s's ticket for %s was encrypted with %s's key (implicit HOST mapping) but the site runs as %s",
			user(tgs.Client), web.Service, tgs.Account, web.Account)
		d.Why = fmt.Sprintf("No account registers %s, so the KDC applied sPNMappings (HTTP is an alias of HOST) and used the account holding HOST/%s, the machine account %s. "+
			"The site decrypts tickets with %s's key, fails, and answers KRB_AP_ERR_MODIFIED (41, 0x29; RFC 4120 §3.2.3) — the lsass log's \"KerbVerifyApRequest failed ... 29\" and the client's Kerberos event 4.",
			web.Service, host, tgs.Account, web.Account)
		return d, true
	}
	d.ID = "spn-on-wrong-account"
	d.Summary = fmt.Sprintf("%s is registered on %s but the site runs as %s", web.Service, tgs.Account, web.Account)
	d.Why = fmt.Sprintf("The KDC encrypts a service ticket with the key of the account that holds the SPN (%s); the site holds %s's keys and cannot decrypt it: KRB_AP_ERR_MODIFIED (RFC 4120 §3.2.3).", tgs.Account, web.Account)
	d.Fix = []string{fmt.Sprintf("doublehop setspn -D %s %s", web.Service, tgs.Account), fmt.Sprintf("doublehop setspn -S %s %s", web.Service, web.Account)}
	return d, true
}

// A password reset after the keytab was exported: the KDC uses the new kvno.
func staleKeytab(in Input, fail events.Event) (Diagnosis, bool) {
	web, ok := find(in.Events, func(e events.Event) bool { return e.ID == events.LogonFailure && e.Reason == "KVNO_MISMATCH" })
	if !ok {
		return Diagnosis{}, false
	}
	// Which side is stale? A ticket older than the account's current kvno was
	// cached before the reset; a ticket at the current kvno means the keytab is old.
	if in.View != nil {
		if a, ok := in.View.Account(web.Account); ok && web.KVNO != 0 && web.KVNO < a.KVNO {
			return Diagnosis{ID: "stale-ticket", Hop: "ws01 → web", Evidence: []events.Event{web},
				Summary: fmt.Sprintf("the client presented a ticket for %s at key version %d, cached before %s's password reset (now kvno %d)", web.Service, web.KVNO, web.Account, a.KVNO),
				Why:     "Tickets stay in the client's cache until they expire; one issued before the reset is encrypted with the old key, which the site no longer holds (RFC 4120 §3.2.3).",
				Fix:     []string{"doublehop client kdestroy; doublehop client kinit   (klist purge on Windows)"}}, true
		}
	}
	return Diagnosis{ID: "stale-keytab", Hop: "ws01 → web", Evidence: []events.Event{web},
		Summary: fmt.Sprintf("the ticket for %s uses %s's key version %d, but the site's keytab holds an older key", web.Service, web.Account, web.KVNO),
		Why:     "Resetting an account's password creates a new key and bumps msDS-KeyVersionNumber; the KDC encrypts new tickets with it. A keytab exported before the reset holds the old key, so the service cannot decrypt: KRB_AP_ERR_MODIFIED (RFC 4120 §3.2.3; MIT would say KRB_AP_ERR_BADKEYVER).",
		Fix:     []string{fmt.Sprintf("doublehop keytab -o STATE/keytabs/web.keytab %s   (re-export the keytab after the password change)", web.Account)}}, true
}

func keytabUnreadable(in Input, fail events.Event) (Diagnosis, bool) {
	e, ok := find(in.Events, is(events.AppPoolIdentityInvalid, ""))
	if !ok {
		return Diagnosis{}, false
	}
	return Diagnosis{ID: "keytab-unreadable", Hop: "web", Evidence: []events.Event{e},
		Summary: "the site cannot read its service account's keytab: HTTP 503 Service Unavailable",
		Why:     "Like an IIS application pool whose identity is invalid (the seed's Service Unavailable before aspnet_regiis -ga), the site cannot accept any Kerberos ticket without its account's keys.",
		Fix:     []string{fmt.Sprintf("doublehop keytab -o STATE/keytabs/web.keytab %s   (restore a readable keytab)", e.Account)}}, true
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
	if dup, ok := find(in.Events, is(events.KDCDuplicateName, "")); ok {
		d.ID = "duplicate-spn"
		d.Evidence = append([]events.Event{dup}, d.Evidence...)
		d.Summary = fmt.Sprintf("%s is registered on more than one account, so %s got no Kerberos ticket and Negotiate fell back to NTLM: the page works, SQL Server says ANONYMOUS LOGON", dup.Service, u)
		d.Why = "An SPN must identify exactly one account; with duplicates the KDC logs event 11 (KDCEVENT_NAME_NOT_UNIQUE) and answers KDC_ERR_S_PRINCIPAL_UNKNOWN. " + why
		d.Fix = []string{"doublehop setspn -X", fmt.Sprintf("doublehop setspn -D %s <the account that does not run the site>", dup.Service)}
		return d, true
	}
	if unk, ok := find(in.Events, func(e events.Event) bool {
		return e.ID == events.ServiceTicket && e.Outcome == events.Failure && e.CodeName == "KDC_ERR_S_PRINCIPAL_UNKNOWN" && strings.HasPrefix(strings.ToUpper(e.Service), "HTTP/")
	}); ok {
		d.ID = "ntlm-fallback-no-spn"
		d.Evidence = append([]events.Event{unk}, d.Evidence...)
		d.Summary = fmt.Sprintf("no account holds %s, so %s's Negotiate fell back to NTLM: the page works, SQL Server says ANONYMOUS LOGON", unk.Service, u)
		d.Why = fmt.Sprintf("The browser asked the KDC for %s (the name as typed, or as its resolver canonicalized it) and got KDC_ERR_S_PRINCIPAL_UNKNOWN. ", unk.Service) + why
		d.Fix = []string{fmt.Sprintf("doublehop setspn -S %s %s   (or open the site by the name that has the SPN)", unk.Service, web.Account)}
		return d, true
	}
	if in.View != nil && len(in.View.Lab.Web.Providers) > 0 && !strings.EqualFold(in.View.Lab.Web.Providers[0], "Negotiate") {
		d.ID = "web-ntlm-provider"
		d.Summary = fmt.Sprintf("the site offers %s first, not Negotiate, so %s logged on with NTLM: the page works, SQL Server says ANONYMOUS LOGON", in.View.Lab.Web.Providers[0], u)
		d.Why = "IIS's Windows Authentication providers decide what the browser may use; with NTLM first (or alone) no Kerberos ticket is ever requested. " + why
		d.Fix = []string{"doublehop policy set web.providers=Negotiate,NTLM"}
		return d, true
	}
	d.ID = "ntlm-fallback"
	d.Summary = fmt.Sprintf("%s logged on to the site with NTLM, not Kerberos: the page works, SQL Server says ANONYMOUS LOGON", u)
	d.Why = "No Kerberos ticket was requested for the site (an IP address in the URL, no KDC reachable, or a client that chose NTLM). " + why
	d.Fix = []string{"open the site by its host name with an SPN (http://web.lab.local/)", fmt.Sprintf("doublehop delegation set %s constrained --to MSSQLSvc/sql.lab.local:1433 --protocol-transition   (to delegate NTLM users anyway)", web.Account)}
	return d, true
}

func duplicateSPN(in Input, fail events.Event) (Diagnosis, bool) {
	e, ok := find(in.Events, is(events.KDCDuplicateName, ""))
	if !ok {
		return Diagnosis{}, false
	}
	return Diagnosis{ID: "duplicate-spn", Hop: "ws01 → dc", Evidence: []events.Event{e},
		Summary: fmt.Sprintf("%s is registered on more than one account: the KDC issues no ticket", e.Service),
		Why:     "An SPN must identify exactly one account; with duplicates the KDC cannot know whose key to use, logs KDC event 11 (KDCEVENT_NAME_NOT_UNIQUE) and answers KDC_ERR_S_PRINCIPAL_UNKNOWN. A Windows client then falls back to NTLM; one that may not (Restrict NTLM) gets no access at all.",
		Fix:     []string{"doublehop setspn -X", fmt.Sprintf("doublehop setspn -D %s <the account that should not hold it>", e.Service)}}, true
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
	return Diagnosis{ID: "clock-skew", Hop: hop, Evidence: []events.Event{e},
		Summary: fmt.Sprintf("the clocks of %s and %s differ by more than the allowed skew", "the client", e.Host),
		Why:     "Kerberos authenticators carry the client's time; a server or KDC refuses them when its own clock differs by more than 5 minutes (RFC 4120 §1.6, KRB_AP_ERR_SKEW 37).",
		Fix:     []string{"synchronize the clocks (w32tm /resync); in the lab: doublehop policy set kdc_clock_offset=0s, or run the client without --clock-offset"}}, true
}

func etype(in Input, fail events.Event) (Diagnosis, bool) {
	e, ok := find(in.Events, func(e events.Event) bool { return e.Outcome == events.Failure && e.CodeName == "KDC_ERR_ETYPE_NOSUPP" })
	if !ok {
		return Diagnosis{}, false
	}
	acct := e.Account
	if acct == "" {
		acct = user(e.Client)
	}
	return Diagnosis{ID: "etype-mismatch", Hop: "ws01 → dc", Evidence: []events.Event{e},
		Summary: fmt.Sprintf("no encryption type is common to the request and %s's keys", acct),
		Why:     "The lab (like a hardened domain) allows AES only; an account whose msDS-SupportedEncryptionTypes lists only RC4 has no usable key, so the KDC answers KDC_ERR_ETYPE_NOSUPP (14, RFC 4120 §3.1.3).",
		Fix:     []string{fmt.Sprintf("doublehop account set %s enctypes=aes256,aes128", acct)}}, true
}

func preauth(in Input, fail events.Event) (Diagnosis, bool) {
	e, ok := find(in.Events, is(events.PreauthFailed, "KDC_ERR_PREAUTH_FAILED"))
	if !ok {
		return Diagnosis{}, false
	}
	return Diagnosis{ID: "wrong-password", Hop: "ws01 → dc", Evidence: []events.Event{e},
		Summary: fmt.Sprintf("%s's password is wrong (pre-authentication failed)", user(e.Client)),
		Why:     "The client proves its password by encrypting a timestamp with its key (PA-ENC-TIMESTAMP); the KDC could not decrypt it: KDC_ERR_PREAUTH_FAILED (24), Security event 4771.",
		Fix:     []string{fmt.Sprintf("doublehop client kinit %s   (with the right password; the lab's is in lab.env)", user(e.Client))}}, true
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
	switch e.Reason {
	case "NOT_TRUSTED_FOR_DELEGATION", "NOT_ALLOWED_TO_DELEGATE":
		if in.View != nil {
			if a, ok := in.View.Account(svc); ok && a.Delegation.Mode == directory.DelegUnconstrained {
				d.ID = "unconstrained-no-tgt"
				d.Summary = fmt.Sprintf("%s is trusted for unconstrained delegation, but %s's client sent no forwarded TGT, so the site had nothing to delegate", svc, u)
				d.Why = "Unconstrained delegation only works when the client forwards its TGT (RFC 4121 §4.1.1 DlgOpt); Windows clients do so for ok-as-delegate services when the TGT is forwardable and delegation is allowed. The site's fallback, S4U2Proxy, is refused because the account has no constrained delegation (KDC_ERR_BADOPTION)."
				d.Fix = []string{fmt.Sprintf("doublehop delegation set %s constrained --to %s   (prefer constrained; or let the client delegate)", svc, e.Target)}
				return d, true
			}
		}
		if e.Reason == "NOT_TRUSTED_FOR_DELEGATION" {
			d.ID = "no-delegation"
			d.Summary = fmt.Sprintf("%s is not trusted for delegation: the site could not get a ticket to %s as %s, and SQL Server saw NT AUTHORITY\\ANONYMOUS LOGON", svc, e.Target, u)
			d.Why = "Impersonation gives the site the user's identity on its own host only. To reach another host as the user it needs a delegable credential: a forwarded TGT (unconstrained), or the KDC's consent to S4U2Proxy (constrained delegation, MS-SFU 3.2.5.2) — refused here with KDC_ERR_BADOPTION. Without one the connection goes out anonymously: 18456 \"Login failed for user 'NT AUTHORITY\\ANONYMOUS LOGON'\"."
			d.Fix = []string{fmt.Sprintf("doublehop delegation set %s constrained --to %s", svc, e.Target)}
		} else {
			d.ID = "kcd-wrong-spn"
			d.Summary = fmt.Sprintf("%s may delegate, but not to %s: that SPN is not in its msDS-AllowedToDelegateTo", svc, e.Target)
			d.Why = "Constrained delegation is an exact list of SPNs (MS-SFU 3.2.5.2.1); MSSQLSvc/sql.lab.local and MSSQLSvc/sql.lab.local:1433 are different names. The KDC answered KDC_ERR_BADOPTION (STATUS_NO_MATCH / STATUS_NOT_FOUND)."
			d.Fix = []string{fmt.Sprintf("doublehop delegation set %s constrained --to %s", svc, e.Target)}
			if in.View != nil {
				if a, ok := in.View.Account(svc); ok && len(a.Delegation.AllowedTo) > 0 {
					d.Fix = []string{fmt.Sprintf("doublehop delegation set %s constrained --to %s", svc, strings.Join(append(a.Delegation.AllowedTo, e.Target), ","))}
				}
			}
		}
	case "EVIDENCE_TKT_NOT_FORWARDABLE":
		if in.View != nil {
			if a, ok := in.View.Account(u); ok && a.CannotBeDelegated() {
				return sensitive(d, u, e), true
			}
		}
		d.ID = "evidence-not-forwardable"
		d.Summary = fmt.Sprintf("%s's ticket to %s is not forwardable, so constrained delegation refuses it", u, svc)
		d.Why = "Classic constrained delegation requires a forwardable evidence ticket (MS-SFU 3.2.5.2.1). A ticket obtained by S4U2Self is forwardable only when the service is trusted to authenticate for delegation (\"use any authentication protocol\", MS-SFU 3.2.5.1.2)."
		d.Fix = []string{fmt.Sprintf("doublehop delegation set %s constrained --to %s --protocol-transition", svc, e.Target)}
	case "USER_NOT_DELEGATABLE":
		return sensitive(d, u, e), true
	default:
		d.ID = "delegation-refused"
		d.Summary = fmt.Sprintf("the KDC refused delegation for %s: %s", u, e.Reason)
		d.Why = "KDC_ERR_BADOPTION: " + e.Message
	}
	return d, true
}

func sensitive(d Diagnosis, u string, e events.Event) Diagnosis {
	d.ID = "user-sensitive"
	d.Summary = fmt.Sprintf("%s is marked \"sensitive and cannot be delegated\" (or is in Protected Users): no service may act as %s elsewhere", u, u)
	d.Why = "NOT_DELEGATED users never get forwardable tickets (MS-KILE 3.3.5.7, MS-SFU 3.2.5.1.2), and the KDC refuses S4U2Proxy and RBCD for them (KDC_ERR_BADOPTION, STATUS_ACCOUNT_RESTRICTION). This is a protection working as designed."
	d.Fix = []string{fmt.Sprintf("doublehop account set %s sensitive=false 'groups=-Protected Users'   (only if %s really may be delegated)", u, u)}
	return d
}

func bronzeBit(in Input, fail events.Event) (Diagnosis, bool) {
	e, ok := find(in.Events, func(e events.Event) bool { return e.Outcome == events.Failure && e.Reason == "TICKET_SIGNATURE" })
	if !ok {
		return Diagnosis{}, false
	}
	return Diagnosis{ID: "bronze-bit", Hop: "web → dc", Evidence: []events.Event{e},
		Summary: "a service presented an evidence ticket it had modified (the forwardable bit): the KDC refused it",
		Why:     "CVE-2020-17049 (\"Bronze Bit\"): a service can decrypt and re-encrypt tickets to itself and set FORWARDABLE. The PAC ticket signature (MS-PAC 2.8.3), computed by the KDC with the krbtgt key over the whole ticket, exposes the change: KRB_AP_ERR_MODIFIED.",
		Fix:     []string{"nothing to fix: this is the protection working; investigate the service account that sent it"}}, true
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
		d.Fix = []string{"doublehop policy set web.impersonate=true"}
		return d, true
	}
	d.ID = "sql-login-denied"
	d.Summary = fmt.Sprintf("Kerberos worked end to end, but SQL Server does not let %s connect (18456 state %d)", e.Login, e.State)
	d.Why = "Authentication succeeded (the SQL tier decrypted a ticket for the user); authorization did not: the login is missing, denied CONNECT SQL or disabled. SQL Server tells the client only \"Login failed\" with state 1; the server's errorlog has the real state."
	d.Fix = []string{fmt.Sprintf(`doublehop policy set 'sql.login=%s:grant'`, e.Login)}
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
		Fix:     []string{"doublehop delegation set svc_iispool constrained --to MSSQLSvc/sql.lab.local:1433"}}, true
}

func unknownService(in Input, fail events.Event) (Diagnosis, bool) {
	e, ok := find(in.Events, func(e events.Event) bool {
		return e.Tier == "kdc" && e.Outcome == events.Failure && e.CodeName == "KDC_ERR_S_PRINCIPAL_UNKNOWN" && e.Reason == "SERVER_UNKNOWN"
	})
	if !ok {
		return Diagnosis{}, false
	}
	return Diagnosis{ID: "spn-unknown", Hop: "ws01 → dc", Evidence: []events.Event{e},
		Summary: fmt.Sprintf("no account holds %s (and no implicit mapping applies)", e.Service),
		Why:     "The KDC looks the requested SPN up in the directory; MSSQLSvc is not aliased to HOST by sPNMappings, so a missing SQL SPN is KDC_ERR_S_PRINCIPAL_UNKNOWN (7). The SQL client then falls back to NTLM: a user connecting directly logs in with auth_scheme NTLM, and a site impersonating the user (whose token cannot leave its host) arrives as NT AUTHORITY\\ANONYMOUS LOGON.",
		Fix:     []string{fmt.Sprintf("doublehop setspn -S %s <the service account>", e.Service)}}, true
}
