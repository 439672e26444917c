// Package admin holds the lab's administration commands — setspn, account,
// delegation, policy, keytab — with AD's names and semantics. The CLI, the
// scenario engine and the container harness all run them through Run, so a
// scenario step and a trainer's command line do exactly the same thing.
package admin

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/doublehop/doublehop/directory"
)

// ErrUsage marks a malformed command.
var ErrUsage = errors.New("usage")

// Verbs lists the admin commands with a one-line summary each.
var Verbs = []struct{ Name, Summary string }{
	{"setspn", "manage SPNs like Windows setspn: -S, -A, -D, -L, -Q, -X"},
	{"account", "show an account, reset its password (new kvno), set flags (sensitive, enctypes, groups)"},
	{"delegation", "show or set delegation: none, unconstrained, constrained [--to], protocol transition, RBCD"},
	{"policy", "show or set the domain policy (allow_rc4, max_skew, kdc_clock_offset, restrict_ntlm) and tier settings"},
	{"dns", "the domain's DNS zone: list, add an alias (A or CNAME), remove it"},
}

// Run executes one admin command (verb first) against the directory store.
// Changes are persisted atomically and seen by a running KDC at once.
func Run(s *directory.Store, args []string, w io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("no command: %w", ErrUsage)
	}
	rest := args[1:]
	switch args[0] {
	case "setspn":
		return runSetSPN(s, rest, w)
	case "account":
		return runAccount(s, rest, w)
	case "delegation":
		return runDelegation(s, rest, w)
	case "policy":
		return runPolicy(s, rest, w)
	case "dns":
		return runDNS(s, rest, w)
	}
	return fmt.Errorf("unknown admin command %q: %w", args[0], ErrUsage)
}

// IsHelp reports a help request.
func IsHelp(args []string) bool {
	return len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help"
}

// SetSPNUsage is setspn's help text.
const SetSPNUsage = `Usage: doublehop setspn [--state DIR] <switch> ...
  -S <spn> <account>   add the SPN after checking the whole directory for duplicates (refuses them)
  -A <spn> <account>   add without the duplicate check (what setspn did before Windows Server 2008)
  -D <spn> <account>   delete the SPN from the account
  -L <account>         list the account's SPNs
  -Q <spn>             find which account(s) hold the SPN
  -X                   list SPNs registered on more than one account
Changes are live: the KDC uses them on its next request.
`

func runSetSPN(s *directory.Store, args []string, w io.Writer) error {
	if IsHelp(args) {
		fmt.Fprint(w, SetSPNUsage)
		return nil
	}
	return directory.SetSPN(s, args, w)
}

func ETypeNames(ets []int32) []string {
	var out []string
	for _, e := range ets {
		out = append(out, directory.ETypeName(e))
	}
	return out
}

// AccountUsage is the account command's help text.
const AccountUsage = `Usage: doublehop account [--state DIR] <verb> <account> ...
  add <name> user|service|computer [--password P] [--spn SPN]... [--upn UPN]
                                       a new account with the next RID (a fresh SID), as New-ADUser or
                                       New-ADComputer make it; a computer gets HOST/<name> and
                                       HOST/<name>.<domain> and a random password
  remove <account>                     delete it (and the RBCD entries that name it)
  unlock <account>                     clear a lockout (Unlock-ADAccount): lockoutTime and badPwdCount
  show <account>                       attributes as the KDC sees them
  password <account> <new-password>    reset the password: a new key and kvno (old keytabs go stale)
  set <account> key=value ...          sensitive=true|false  enctypes=aes256,aes128,rc4  disabled=true|false
                                       dont_require_preauth=true|false  groups=+Protected Users | groups=-Sales
                                       expires=2027-01-31|never  must_change_password=true|false
                                       password_expired=true|false  logon_hours=8-18|none|all (UTC)
`

func runAccount(s *directory.Store, rest []string, stdout io.Writer) error {
	if IsHelp(rest) {
		fmt.Fprint(stdout, AccountUsage)
		return nil
	}
	if len(rest) < 2 {
		return fmt.Errorf("account %s: %w", strings.Join(rest, " "), ErrUsage)
	}
	verb, name := rest[0], rest[1]
	switch verb {
	case "add":
		if len(rest) < 3 {
			return fmt.Errorf("account add <name> user|service|computer: %w", ErrUsage)
		}
		a := directory.Account{Name: name, Type: rest[2]}
		for i := 3; i < len(rest); i++ {
			if i+1 >= len(rest) {
				return fmt.Errorf("%s needs a value: %w", rest[i], ErrUsage)
			}
			switch rest[i] {
			case "--password":
				a.Password = rest[i+1]
			case "--spn":
				a.SPNs = append(a.SPNs, rest[i+1])
			case "--upn":
				a.UPN = rest[i+1]
			default:
				return fmt.Errorf("unknown option %q: %w", rest[i], ErrUsage)
			}
			i++
		}
		var made directory.Account
		var dn, sid string
		_, err := s.Update(func(l *directory.Lab) error {
			n, err := l.NewAccount(a)
			if err == nil {
				made, dn = *n, l.DN(n)
			}
			return err
		})
		if err != nil {
			return err
		}
		if e, ok := s.View().Account(made.Name); ok {
			sid = e.SID
		}
		fmt.Fprintf(stdout, "%s created (%s, RID %d, objectSid %s)\n", dn, made.Type, made.RID, sid)
		for _, spn := range made.SPNs {
			fmt.Fprintf(stdout, "  servicePrincipalName: %s\n", spn)
		}
		return nil
	case "unlock":
		err := directory.Modify(s, name, func(_ *directory.Lab, a *directory.Account) error { a.Unlock(); return nil })
		if err == nil {
			fmt.Fprintf(stdout, "%s unlocked (badPwdCount 0)\n", name)
		}
		return err
	case "remove":
		_, err := s.Update(func(l *directory.Lab) error { return l.RemoveAccount(name) })
		if err == nil {
			fmt.Fprintf(stdout, "%s removed\n", name)
		}
		return err
	case "show":
		v := s.View()
		e, ok := v.Account(name)
		if !ok {
			return fmt.Errorf("no account %s", name)
		}
		showAccount(stdout, v, e)
		return nil
	case "password":
		if len(rest) != 3 {
			return fmt.Errorf("account password <account> <new-password>: %w", ErrUsage)
		}
		kvno, err := directory.SetPassword(s, name, rest[2])
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "password of %s reset; msDS-KeyVersionNumber is now %d (re-export keytabs: doublehop keytab)\n", name, kvno)
		return nil
	case "set":
		return directory.Modify(s, name, func(l *directory.Lab, a *directory.Account) error {
			for _, kv := range rest[2:] {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					return fmt.Errorf("%q: want key=value", kv)
				}
				if err := setAccountField(a, k, v); err != nil {
					return err
				}
				fmt.Fprintf(stdout, "%s: %s=%s\n", a.Name, k, v)
			}
			return nil
		})
	}
	return fmt.Errorf("unknown verb %q: %w", verb, ErrUsage)
}

func setAccountField(a *directory.Account, k, v string) error {
	b := func() (bool, error) { return strconv.ParseBool(v) }
	var err error
	switch k {
	case "sensitive":
		a.Sensitive, err = b()
	case "disabled":
		a.Disabled, err = b()
	case "must_change_password":
		a.MustChangePassword, err = b()
	case "password_expired":
		a.PasswordExpired, err = b()
	case "expires":
		if v == "never" || v == "" {
			a.Expires = time.Time{}
			return nil
		}
		a.Expires, err = time.Parse(time.DateOnly, v)
		if err != nil {
			a.Expires, err = time.Parse(time.RFC3339, v)
		}
	case "logon_hours":
		switch v {
		case "all", "":
			a.LogonHours = ""
		case "none":
			a.LogonHours = v
		default:
			var from, to int
			if _, e := fmt.Sscanf(v, "%d-%d", &from, &to); e != nil || from < 0 || from > 23 || to < 0 || to > 24 {
				return fmt.Errorf("logon_hours wants FROM-TO in UTC hours (8-18), none or all")
			}
			a.LogonHours = v
		}
	case "dont_require_preauth":
		a.DontRequirePreauth, err = b()
	case "enctypes":
		a.Enctypes = nil
		if v != "" && v != "default" {
			for _, e := range strings.Split(v, ",") {
				if _, ok := directory.ParseEType(e); !ok {
					return fmt.Errorf("unknown enctype %q", e)
				}
				a.Enctypes = append(a.Enctypes, strings.TrimSpace(e))
			}
		}
	case "groups":
		switch {
		case strings.HasPrefix(v, "+"):
			if !a.InGroup(v[1:]) {
				a.Groups = append(a.Groups, v[1:])
			}
		case strings.HasPrefix(v, "-"):
			var keep []string
			for _, g := range a.Groups {
				if !strings.EqualFold(g, v[1:]) {
					keep = append(keep, g)
				}
			}
			a.Groups = keep
		default:
			a.Groups = strings.Split(v, ",")
		}
	default:
		return fmt.Errorf("unknown account setting %q", k)
	}
	return err
}

func showAccount(w io.Writer, v *directory.View, e *directory.Entry) {
	fmt.Fprintf(w, "%s\n  sAMAccountName: %s (%s)\n  objectSid: %s\n  msDS-KeyVersionNumber: %d\n  salt: %s\n  enctypes: %v\n",
		v.Lab.DN(e.Account), e.Name, e.Type, e.SID, e.KVNO, e.Salt(v.Lab.Realm), ETypeNames(e.ETypes))
	fmt.Fprintf(w, "  servicePrincipalName: %s\n  groups: %s\n", strings.Join(e.SPNs, ", "), strings.Join(e.Groups, ", "))
	fmt.Fprintf(w, "  delegation: %s\n", describeDelegation(e.Account))
	if len(e.AllowedToActOnBehalfOf) > 0 {
		fmt.Fprintf(w, "  msDS-AllowedToActOnBehalfOfOtherIdentity: %s\n", strings.Join(e.AllowedToActOnBehalfOf, ", "))
	}
	if e.CannotBeDelegated() {
		fmt.Fprintln(w, "  account is sensitive and cannot be delegated")
	}
	if e.DontRequirePreauth {
		fmt.Fprintln(w, "  DONT_REQ_PREAUTH: INSECURE (AS-REP roastable)")
	}
	if e.Disabled {
		fmt.Fprintln(w, "  account is disabled")
	}
	if !e.LockedOut.IsZero() {
		fmt.Fprintf(w, "  lockoutTime: %s (badPwdCount %d)\n", e.LockedOut.UTC().Format(time.DateTime), e.BadPwdCount)
	} else if e.BadPwdCount > 0 {
		fmt.Fprintf(w, "  badPwdCount: %d\n", e.BadPwdCount)
	}
	if !e.Expires.IsZero() {
		fmt.Fprintf(w, "  accountExpires: %s\n", e.Expires.UTC().Format(time.DateTime))
	}
	if e.MustChangePassword {
		fmt.Fprintln(w, "  pwdLastSet: 0 (user must change password at next logon)")
	}
	if e.PasswordExpired {
		fmt.Fprintln(w, "  password expired")
	}
	if e.LogonHours != "" {
		fmt.Fprintf(w, "  logonHours: %s (UTC)\n", e.LogonHours)
	}
}

func describeDelegation(a *directory.Account) string {
	switch a.Delegation.Mode {
	case directory.DelegUnconstrained:
		return "trusted for delegation to any service (unconstrained; ok-as-delegate)"
	case directory.DelegConstrained:
		proto := "Kerberos only"
		if a.Delegation.ProtocolTransition {
			proto = "any authentication protocol (protocol transition)"
		}
		return fmt.Sprintf("constrained to %s, %s", strings.Join(a.Delegation.AllowedTo, ", "), proto)
	}
	return "not trusted for delegation"
}

// DelegationUsage is the delegation command's help text.
const DelegationUsage = `Usage: doublehop delegation [--state DIR] <verb> <account> ...
  show <account>
  set <account> none|unconstrained|constrained [--to SPN[,SPN]] [--protocol-transition]
  rbcd <target-account> [--allow ACCOUNT[,ACCOUNT]] [--clear]   msDS-AllowedToActOnBehalfOfOtherIdentity
Changes are live and persisted; the KDC applies them on its next request.
`

func runDelegation(s *directory.Store, rest []string, stdout io.Writer) error {
	if IsHelp(rest) {
		fmt.Fprint(stdout, DelegationUsage)
		return nil
	}
	if len(rest) < 2 {
		return fmt.Errorf("delegation %s: %w", strings.Join(rest, " "), ErrUsage)
	}
	verb, name := rest[0], rest[1]
	opts := rest[2:]
	switch verb {
	case "show":
		e, ok := s.View().Account(name)
		if !ok {
			return fmt.Errorf("no account %s", name)
		}
		fmt.Fprintf(stdout, "%s: %s\n", e.Name, describeDelegation(e.Account))
		if len(e.AllowedToActOnBehalfOf) > 0 {
			fmt.Fprintf(stdout, "%s accepts delegation (RBCD) from: %s\n", e.Name, strings.Join(e.AllowedToActOnBehalfOf, ", "))
		}
		return nil
	case "set":
		if len(opts) == 0 {
			return ErrUsage
		}
		mode := opts[0]
		var to []string
		pt := false
		for i := 1; i < len(opts); i++ {
			switch {
			case opts[i] == "--protocol-transition":
				pt = true
			case opts[i] == "--to" && i+1 < len(opts):
				to = append(to, strings.Split(opts[i+1], ",")...)
				i++
			case strings.HasPrefix(opts[i], "--to="):
				to = append(to, strings.Split(strings.TrimPrefix(opts[i], "--to="), ",")...)
			default:
				return fmt.Errorf("unknown option %q: %w", opts[i], ErrUsage)
			}
		}
		err := directory.Modify(s, name, func(l *directory.Lab, a *directory.Account) error {
			switch mode {
			case directory.DelegNone, directory.DelegUnconstrained:
				if len(to) > 0 || pt {
					return fmt.Errorf("--to and --protocol-transition apply to constrained delegation only: %w", ErrUsage)
				}
				a.Delegation = directory.Delegation{Mode: mode}
			case directory.DelegConstrained:
				a.Delegation = directory.Delegation{Mode: mode, ProtocolTransition: pt, AllowedTo: to}
			default:
				return fmt.Errorf("mode %q: want none, unconstrained or constrained", mode)
			}
			return nil
		})
		if err != nil {
			return err
		}
		e, _ := s.View().Account(name)
		fmt.Fprintf(stdout, "%s: %s\n", e.Name, describeDelegation(e.Account))
		if mode == directory.DelegUnconstrained {
			fmt.Fprintln(stdout, "warning: unconstrained delegation lets this service act as any user who connects, to any service (INSECURE; for the lab)")
		}
		return nil
	case "rbcd":
		var allow []string
		clear := false
		for i := 0; i < len(opts); i++ {
			switch {
			case opts[i] == "--clear":
				clear = true
			case opts[i] == "--allow" && i+1 < len(opts):
				allow = append(allow, strings.Split(opts[i+1], ",")...)
				i++
			case strings.HasPrefix(opts[i], "--allow="):
				allow = append(allow, strings.Split(strings.TrimPrefix(opts[i], "--allow="), ",")...)
			default:
				return fmt.Errorf("unknown option %q: %w", opts[i], ErrUsage)
			}
		}
		err := directory.Modify(s, name, func(l *directory.Lab, a *directory.Account) error {
			if clear {
				a.AllowedToActOnBehalfOf = nil
			}
			for _, x := range allow {
				if l.Account(x) == nil {
					return fmt.Errorf("no account %s", x)
				}
				if !slices.ContainsFunc(a.AllowedToActOnBehalfOf, func(y string) bool { return strings.EqualFold(x, y) }) {
					a.AllowedToActOnBehalfOf = append(a.AllowedToActOnBehalfOf, x)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		e, _ := s.View().Account(name)
		fmt.Fprintf(stdout, "%s accepts delegation (RBCD) from: %s\n", e.Name, strings.Join(e.AllowedToActOnBehalfOf, ", "))
		return nil
	}
	return fmt.Errorf("unknown verb %q: %w", verb, ErrUsage)
}

// PolicyUsage is the policy command's help text.
const PolicyUsage = `Usage: doublehop policy [--state DIR] [show | set key=value ...]
  allow_rc4=true|false          permit RC4-HMAC keys and tickets (INSECURE)
  max_skew=5m                   allowed clock skew
  kdc_clock_offset=10m          move the KDC's clock (clock-skew scenarios)
  client_clock_offset=10m       move the workstation's (ws01's) clock; 0s is w32tm /resync
  restrict_ntlm=deny_all|none   Restrict NTLM: NTLM authentication in this domain (the DC refuses NTLM)
  lockout_threshold=5           bad passwords before an account locks (0 = never, AD's default)
  lockout_duration=30m          how long it stays locked (forever: until account unlock); lockout_window=30m: the observation window
  ldap_simple_bind_in_clear=true  the DC takes LDAP simple binds without TLS (INSECURE)
  ldap_signing_required=true    "LDAP server signing requirements = Require signing": binds
                                without integrity (and without TLS) are refused
  kerberos_armoring=supported   the KDC offers FAST (RFC 6113): "KDC support for claims, compound
                                authentication and Kerberos armoring = Supported"; not_configured
                                (the default) still answers armored requests but offers nothing
  web.impersonate=true|false    the site's <identity impersonate="true"/>
  web.providers=Negotiate,NTLM  IIS's Windows Authentication providers, in order: Negotiate,
                                Negotiate:Kerberos (Kerberos only), NTLM ("default" = Negotiate,NTLM)
  sql.login=LAB\alice:grant     a SQL Server login's access: grant, deny or disabled
`

func orNotConfigured(s string) string {
	if s == "" {
		return "not_configured"
	}
	return s
}

func runPolicy(s *directory.Store, rest []string, stdout io.Writer) error {
	if len(rest) > 0 && (rest[0] == "-h" || rest[0] == "--help") {
		fmt.Fprint(stdout, PolicyUsage)
		return nil
	}
	if len(rest) == 0 || rest[0] == "show" {
		l := s.View().Lab
		fmt.Fprintf(stdout, "realm %s (%s)\nallow_rc4=%v max_skew=%s kdc_clock_offset=%s client_clock_offset=%s ticket_lifetime=%s restrict_ntlm=%s\nlockout_threshold=%d lockout_duration=%s lockout_window=%s ldap_simple_bind_in_clear=%v ldap_signing_required=%v kerberos_armoring=%s\nweb.impersonate=%v web.providers=%s\n",
			l.Realm, l.NetBIOS, l.Policy.AllowRC4, l.Policy.MaxSkew.D(), l.Policy.KDCClockOffset.D(), l.Policy.ClientClockOffset.D(), l.Policy.TicketLifetime.D(), orNone(l.Policy.RestrictNTLM),
			l.Policy.LockoutThreshold, lockoutDuration(l.Policy.LockoutDuration), l.Policy.LockoutWindow.D(), l.Policy.LDAPSimpleBindInClear, l.Policy.LDAPSigningRequired, orNotConfigured(l.Policy.KerberosArmoring), l.Web.Impersonate, providersOrDefault(l.Web.Providers))
		for _, lg := range l.SQL.Logins {
			fmt.Fprintf(stdout, "sql.login=%s:%s\n", lg.Login, lg.Access)
		}
		return nil
	}
	if rest[0] != "set" {
		return ErrUsage
	}
	_, err := s.Update(func(l *directory.Lab) error {
		for _, kv := range rest[1:] {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				return fmt.Errorf("%q: want key=value", kv)
			}
			if err := setPolicy(l, k, v); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%s=%s\n", k, v)
		}
		return nil
	})
	return err
}

// lockoutDuration prints AD's "until an administrator unlocks" as forever.
func lockoutDuration(d directory.Duration) string {
	if d == directory.LockoutForever {
		return "forever"
	}
	return d.D().String()
}

func setPolicy(l *directory.Lab, k, v string) error {
	dur := func() (directory.Duration, error) { d, err := time.ParseDuration(v); return directory.Duration(d), err }
	var err error
	switch k {
	case "allow_rc4":
		l.Policy.AllowRC4, err = strconv.ParseBool(v)
	case "max_skew":
		l.Policy.MaxSkew, err = dur()
	case "kdc_clock_offset":
		l.Policy.KDCClockOffset, err = dur()
	case "client_clock_offset":
		l.Policy.ClientClockOffset, err = dur()
	case "lockout_threshold":
		l.Policy.LockoutThreshold, err = strconv.Atoi(v)
	case "lockout_duration":
		if v == "forever" {
			l.Policy.LockoutDuration = directory.LockoutForever
			return nil
		}
		l.Policy.LockoutDuration, err = dur()
	case "lockout_window":
		l.Policy.LockoutWindow, err = dur()
	case "ldap_simple_bind_in_clear":
		l.Policy.LDAPSimpleBindInClear, err = strconv.ParseBool(v)
	case "ldap_signing_required":
		l.Policy.LDAPSigningRequired, err = strconv.ParseBool(v)
	case "kerberos_armoring":
		if v != "supported" && v != "not_configured" && v != "" {
			return fmt.Errorf("kerberos_armoring wants supported or not_configured")
		}
		if v == "not_configured" {
			v = ""
		}
		l.Policy.KerberosArmoring = v
	case "restrict_ntlm":
		if v != "" && v != "none" && v != directory.RestrictNTLMDenyAll {
			return fmt.Errorf("restrict_ntlm wants none or deny_all")
		}
		if v == "none" {
			v = ""
		}
		l.Policy.RestrictNTLM = v
	case "web.impersonate":
		l.Web.Impersonate, err = strconv.ParseBool(v)
	case "web.providers":
		if v == "default" || v == "" {
			l.Web.Providers = nil
			return nil
		}
		var ps []string
		for _, p := range strings.Split(v, ",") {
			switch strings.ToLower(strings.TrimSpace(p)) {
			case "negotiate":
				ps = append(ps, "Negotiate")
			case "negotiate:kerberos":
				ps = append(ps, "Negotiate:Kerberos")
			case "ntlm":
				ps = append(ps, "NTLM")
			default:
				return fmt.Errorf("web.providers: %q is not Negotiate, Negotiate:Kerberos or NTLM", p)
			}
		}
		l.Web.Providers = ps
	case "sql.login":
		login, access, ok := strings.Cut(v, ":")
		if !ok || (access != "grant" && access != "deny" && access != "disabled") {
			return fmt.Errorf("sql.login wants LOGIN:grant|deny|disabled")
		}
		for i := range l.SQL.Logins {
			if strings.EqualFold(l.SQL.Logins[i].Login, login) {
				l.SQL.Logins[i].Access = access
				return nil
			}
		}
		l.SQL.Logins = append(l.SQL.Logins, directory.SQLLogin{Login: login, Access: access})
	default:
		return fmt.Errorf("unknown setting %q", k)
	}
	return err
}

func providersOrDefault(p []string) string {
	if len(p) == 0 {
		return "Negotiate,NTLM (default)"
	}
	return strings.Join(p, ",")
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// DNSUsage is the dns command's help text.
const DNSUsage = `Usage: doublehop dns [--state DIR] list | add <name> A|CNAME <target> | remove <name>
  list                                 the zone: every host's A record and the aliases
  add intranet.lab.local A web         an A record (to web's address, or an address): a name of its own,
                                       so browsers ask for HTTP/intranet.lab.local
  add intranet.lab.local CNAME web.lab.local
                                       an alias: browsers follow it and ask for HTTP/web.lab.local
  remove intranet.lab.local
`

func runDNS(s *directory.Store, rest []string, w io.Writer) error {
	if len(rest) > 0 && (rest[0] == "-h" || rest[0] == "--help" || rest[0] == "help") {
		fmt.Fprint(w, DNSUsage)
		return nil
	}
	if len(rest) == 0 || rest[0] == "list" {
		l := s.View().Lab
		for _, h := range l.Hosts {
			if h.Address != "" {
				fmt.Fprintf(w, "%-24s A      %s\n", h.Name, h.Address)
			}
		}
		for _, r := range l.DNS {
			fmt.Fprintf(w, "%-24s %-6s %s\n", r.Name, r.Type, r.Target)
		}
		return nil
	}
	switch {
	case rest[0] == "add" && len(rest) == 4:
		r := directory.DNSRecord{Name: rest[1], Type: rest[2], Target: rest[3]}
		_, err := s.Update(func(l *directory.Lab) error { return l.AddDNS(r) })
		if err == nil {
			fmt.Fprintf(w, "Added %s record %s -> %s\n", strings.ToUpper(r.Type), r.Name, r.Target)
		}
		return err
	case rest[0] == "remove" && len(rest) == 2:
		_, err := s.Update(func(l *directory.Lab) error { return l.RemoveDNS(rest[1]) })
		if err == nil {
			fmt.Fprintf(w, "Removed %s\n", rest[1])
		}
		return err
	}
	return fmt.Errorf("dns %s: %w", strings.Join(rest, " "), ErrUsage)
}
