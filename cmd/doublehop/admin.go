package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/doublehop/doublehop/directory"
	"github.com/doublehop/doublehop/lab"
)

func init() {
	register("setspn", "manage SPNs like Windows setspn: -S, -A, -D, -L, -Q, -X", cmdSetSPN)
	register("keytab", "export an account's keys as a keytab (MIT kvno -k, tshark, a tier)", cmdKeytab)
	register("account", "show an account, reset its password (new kvno), set flags (sensitive, enctypes, groups)", cmdAccount)
	register("delegation", "show or set delegation: none, unconstrained, constrained [--to], protocol transition, RBCD", cmdDelegation)
	register("policy", "show or set the domain policy (allow_rc4, max_skew, kdc_clock_offset) and tier settings", cmdPolicy)
}

// splitState pulls --state DIR out of args that otherwise use AD-style switches.
func splitState(args []string) (string, []string) {
	state := defaultState()
	var rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--state" || a == "-state":
			if i+1 < len(args) {
				state = args[i+1]
				i++
			}
		case strings.HasPrefix(a, "--state="):
			state = strings.TrimPrefix(a, "--state=")
		default:
			rest = append(rest, a)
		}
	}
	return state, rest
}

func openStore(state string) (*directory.Store, error) {
	return directory.Open(state, nil)
}

func cmdSetSPN(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	state, rest := splitState(args)
	if len(rest) == 0 || rest[0] == "-h" || rest[0] == "--help" {
		fmt.Fprint(stdout, `Usage: doublehop setspn [--state DIR] <switch> ...
  -S <spn> <account>   add the SPN after checking the whole directory for duplicates (refuses them)
  -A <spn> <account>   add without the duplicate check (what setspn did before Windows Server 2008)
  -D <spn> <account>   delete the SPN from the account
  -L <account>         list the account's SPNs
  -Q <spn>             find which account(s) hold the SPN
  -X                   list SPNs registered on more than one account
Changes are live: the KDC uses them on its next request.
`)
		return nil
	}
	s, err := openStore(state)
	if err != nil {
		return err
	}
	err = directory.SetSPN(s, rest, stdout)
	if errors.Is(err, directory.ErrDuplicateSPN) || errors.Is(err, directory.ErrNoSuchSPN) {
		return exitError(1)
	}
	return err
}

func cmdKeytab(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("keytab", "keytab [--state DIR] -o FILE ACCOUNT", stderr)
	state := fs.String("state", defaultState(), "state directory")
	out := fs.String("o", "", "keytab file to write (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 || *out == "" {
		fs.Usage()
		return errUsage
	}
	s, err := openStore(*state)
	if err != nil {
		return err
	}
	if err := lab.ExportKeytab(s, fs.Arg(0), *out); err != nil {
		return err
	}
	e, _ := s.View().Account(fs.Arg(0))
	fmt.Fprintf(stdout, "wrote %s: %s, kvno %d, %d principal(s), etypes %v\n", *out, e.Name, e.KVNO, 1+len(e.SPNs), etypeNames(e.ETypes))
	return nil
}

func etypeNames(ets []int32) []string {
	var out []string
	for _, e := range ets {
		out = append(out, directory.ETypeName(e))
	}
	return out
}

func cmdAccount(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	state, rest := splitState(args)
	if len(rest) < 2 {
		fmt.Fprint(stdout, `Usage: doublehop account [--state DIR] <verb> <account> ...
  show <account>                       attributes as the KDC sees them
  password <account> <new-password>    reset the password: a new key and kvno (old keytabs go stale)
  set <account> key=value ...          sensitive=true|false  enctypes=aes256,aes128,rc4  disabled=true|false
                                       dont_require_preauth=true|false  groups=+Protected Users | groups=-Sales
`)
		if len(rest) == 0 || rest[0] == "-h" || rest[0] == "--help" {
			return nil
		}
		return errUsage
	}
	s, err := openStore(state)
	if err != nil {
		return err
	}
	verb, name := rest[0], rest[1]
	switch verb {
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
			return errUsage
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
	return fmt.Errorf("unknown verb %q: %w", verb, errUsage)
}

func setAccountField(a *directory.Account, k, v string) error {
	b := func() (bool, error) { return strconv.ParseBool(v) }
	var err error
	switch k {
	case "sensitive":
		a.Sensitive, err = b()
	case "disabled":
		a.Disabled, err = b()
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
		v.Lab.DN(e.Account), e.Name, e.Type, e.SID, e.KVNO, e.Salt(v.Lab.Realm), etypeNames(e.ETypes))
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

func cmdDelegation(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	state, rest := splitState(args)
	if len(rest) < 2 {
		fmt.Fprint(stdout, `Usage: doublehop delegation [--state DIR] <verb> <account> ...
  show <account>
  set <account> none|unconstrained|constrained [--to SPN[,SPN]] [--protocol-transition]
  rbcd <target-account> [--allow ACCOUNT[,ACCOUNT]] [--clear]   msDS-AllowedToActOnBehalfOfOtherIdentity
Changes are live and persisted; the KDC applies them on its next request.
`)
		if len(rest) == 0 || rest[0] == "-h" || rest[0] == "--help" {
			return nil
		}
		return errUsage
	}
	s, err := openStore(state)
	if err != nil {
		return err
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
			return errUsage
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
				return fmt.Errorf("unknown option %q: %w", opts[i], errUsage)
			}
		}
		err := directory.Modify(s, name, func(l *directory.Lab, a *directory.Account) error {
			switch mode {
			case directory.DelegNone, directory.DelegUnconstrained:
				a.Delegation = directory.Delegation{Mode: mode, ProtocolTransition: pt}
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
				return fmt.Errorf("unknown option %q: %w", opts[i], errUsage)
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
				a.AllowedToActOnBehalfOf = append(a.AllowedToActOnBehalfOf, x)
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
	return fmt.Errorf("unknown verb %q: %w", verb, errUsage)
}

func cmdPolicy(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	state, rest := splitState(args)
	if len(rest) > 0 && (rest[0] == "-h" || rest[0] == "--help") {
		fmt.Fprint(stdout, `Usage: doublehop policy [--state DIR] [show | set key=value ...]
  allow_rc4=true|false          permit RC4-HMAC keys and tickets (INSECURE)
  max_skew=5m                   allowed clock skew
  kdc_clock_offset=10m          move the KDC's clock (clock-skew scenarios)
  web.impersonate=true|false    the site's <identity impersonate="true"/>
  sql.login=LAB\alice:grant     a SQL Server login's access: grant, deny or disabled
`)
		return nil
	}
	s, err := openStore(state)
	if err != nil {
		return err
	}
	if len(rest) == 0 || rest[0] == "show" {
		l := s.View().Lab
		fmt.Fprintf(stdout, "realm %s (%s)\nallow_rc4=%v max_skew=%s kdc_clock_offset=%s ticket_lifetime=%s\nweb.impersonate=%v\n",
			l.Realm, l.NetBIOS, l.Policy.AllowRC4, l.Policy.MaxSkew.D(), l.Policy.KDCClockOffset.D(), l.Policy.TicketLifetime.D(), l.Web.Impersonate)
		for _, lg := range l.SQL.Logins {
			fmt.Fprintf(stdout, "sql.login=%s:%s\n", lg.Login, lg.Access)
		}
		return nil
	}
	if rest[0] != "set" {
		return errUsage
	}
	_, err = s.Update(func(l *directory.Lab) error {
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
	case "web.impersonate":
		l.Web.Impersonate, err = strconv.ParseBool(v)
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
