package scenarios

import (
	"fmt"
	"strings"
	"time"
)

// Actions a step can do:
//
//	kinit USER [--password P] [--clock-offset D]      log USER on at the workstation
//	kdestroy USER                                      empty USER's credential cache
//	browse URL [--as USER] [--delegate auto|always|never] [--clock-offset D] [--no-ntlm] [--form [--password P]]
//	keytab refresh|remove|restore web|sql              what an admin does to a tier's keytab
//	attack bronze-bit [--as USER]                      CVE-2020-17049 from the web tier's account
//	attack s4u [SPN] [--as USER]                       impacket's getST -impersonate with the web tier's account
//	attack kerberoast [--as USER]                      impacket's GetUserSPNs.py -request: service tickets to crack
//	ldap search BASE FILTER [ATTR...] [--as USER]      the directory as LDP/ldapsearch show it (Kerberos bind)
//	ldap modify DN add|delete|replace ATTR [VALUE...]  an LDAP write, as ADUC or ldapmodify do it
//	ldap rbcd FROM TO [--as USER]                      impacket's rbcd.py -action write
//	explain                                            ask doublehop explain (check with expect.explain)
//	setspn|account|delegation|policy|dns ...           admin commands, exactly as on the CLI
type action struct {
	user     string
	password string
	offset   time.Duration
	delegate string
	form     bool
	noNTLM   bool // the workstation refuses outgoing NTLM (Restrict NTLM)
	pos      []string
}

func (a action) userOr(def string) string {
	if a.user == "" {
		return def
	}
	return a.user
}

var adminVerbs = map[string]bool{"setspn": true, "account": true, "delegation": true, "policy": true, "dns": true}

func parseAction(line string) (string, action, error) {
	args, err := SplitArgs(line)
	if err != nil {
		return "", action{}, err
	}
	if len(args) == 0 {
		return "", action{}, fmt.Errorf("empty action")
	}
	verb, rest := args[0], args[1:]
	if adminVerbs[verb] {
		return verb, action{pos: rest}, nil
	}
	var a action
	for i := 0; i < len(rest); i++ {
		opt := rest[i]
		val := func() (string, error) {
			if i+1 >= len(rest) {
				return "", fmt.Errorf("%s needs a value", opt)
			}
			i++
			return rest[i], nil
		}
		var v string
		switch opt {
		case "--as":
			if a.user, err = val(); err != nil {
				return "", a, err
			}
		case "--password":
			if a.password, err = val(); err != nil {
				return "", a, err
			}
		case "--delegate":
			if a.delegate, err = val(); err != nil {
				return "", a, err
			}
		case "--clock-offset":
			if v, err = val(); err != nil {
				return "", a, err
			}
			if a.offset, err = time.ParseDuration(v); err != nil {
				return "", a, err
			}
		case "--form":
			a.form = true
		case "--no-ntlm":
			a.noNTLM = true
		default:
			if strings.HasPrefix(opt, "--") {
				return "", a, fmt.Errorf("unknown option %s for %s", opt, verb)
			}
			a.pos = append(a.pos, opt)
		}
	}
	need := map[string]int{"kinit": 1, "kdestroy": 1, "browse": 1, "keytab": 2, "attack": 1, "explain": 0, "ldap": -1}
	n, ok := need[verb]
	if !ok {
		return "", a, fmt.Errorf("unknown action %q", verb)
	}
	if n >= 0 && len(a.pos) != n && !(verb == "attack" && len(a.pos) == 2 && a.pos[0] == "s4u") {
		return "", a, fmt.Errorf("%s takes %d argument(s), got %d", verb, n, len(a.pos))
	}
	if (verb == "kinit" || verb == "kdestroy") && a.user == "" {
		a.user = a.pos[0]
	}
	return verb, a, nil
}

// SplitArgs splits a command line with shell-like quoting ('…' and "…"), as
// scenario files write admin commands.
func SplitArgs(s string) ([]string, error) {
	var out []string
	var cur strings.Builder
	inArg := false
	var quote rune
	for _, r := range s {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote, inArg = r, true
		case r == ' ' || r == '\t' || r == '\n':
			if inArg {
				out = append(out, cur.String())
				cur.Reset()
				inArg = false
			}
		default:
			cur.WriteRune(r)
			inArg = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated quote in %q", s)
	}
	if inArg {
		out = append(out, cur.String())
	}
	return out, nil
}
