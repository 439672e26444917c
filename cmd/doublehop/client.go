package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/doublehop/doublehop/client"
	"github.com/doublehop/doublehop/directory"
	"github.com/doublehop/doublehop/events"
	"github.com/doublehop/doublehop/krb/kerr"
	"github.com/doublehop/doublehop/krb/kmsg"
	"github.com/doublehop/doublehop/lab"
	"github.com/doublehop/doublehop/labnet"
	"github.com/doublehop/doublehop/ldap"
	"golang.org/x/term"
)

func init() {
	register("client", "Bob's workstation: kinit, klist, kdestroy, kvno, get URL (Negotiate, delegation), ldapsearch", cmdClient)
}

const clientUsage = `Usage: doublehop client [flags] <verb> ...
  kinit [user]            log on (password from --password, --password-stdin, --lab-password, or a prompt)
  klist                   list the credential cache (as MIT klist -e -f)
  kdestroy                remove the credential cache
  kvno <spn>...           get service tickets (as MIT kvno)
  get <url>               fetch a page with Negotiate; the SPN comes from the host as typed
  ldapsearch <filter> [attr...]   search the DC's directory as LDP does (Kerberos bind as the
                          cache's user, a ticket for ldap/<dc>); --base DN, default the domain

Flags:
`

func cmdClient(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("client", "client [flags] <verb> ...", stderr)
	fs.Usage = func() { fmt.Fprint(stderr, clientUsage); fs.PrintDefaults() }
	state := fs.String("state", defaultState(), "state directory of the lab (krb5.conf, hosts, events)")
	conf := fs.String("krb5conf", "", "krb5.conf (default $KRB5_CONFIG, else STATE/krb5.conf)")
	cc := fs.String("ccache", "", "credential cache (default $KRB5CCNAME, else STATE/ccache/krb5cc)")
	resolve := fs.String("resolve", "", "host[:port]=address mappings, comma separated (default: STATE/hosts)")
	offset := fs.Duration("clock-offset", 0, "move this workstation's clock (e.g. 10m for a skew scenario)")
	password := fs.String("password", "", "password for kinit (visible in ps; prefer --password-stdin)")
	pwStdin := fs.Bool("password-stdin", false, "read the kinit password from stdin")
	labPw := fs.Bool("lab-password", false, "take the kinit password from the lab directory")
	delegate := fs.String("delegate", client.DelegateAuto, "get: send a forwarded TGT: auto (ok-as-delegate only, like Windows), always, never")
	spn := fs.String("spn", "", "get: use this SPN instead of HTTP/<host>")
	asJSON := fs.Bool("json", false, "get: ask the site for its JSON view and print it")
	verbose := fs.Bool("v", false, "get: print the evidence (mechanism, NTLM fallback, SPN, ticket, delegation, mutual auth)")
	base := fs.String("base", "", "ldapsearch: the search base (default: the domain, DC=lab,DC=local)")
	ldapURL := fs.String("ldap", os.Getenv("DOUBLEHOP_LDAP"), "ldapsearch: where the DC's LDAP listens (ldap://host:port, default $DOUBLEHOP_LDAP, else dc:389)")
	dcName := fs.String("dc", "dc.lab.local", "ldapsearch: the DC's host name (the SPN is ldap/<dc>)")
	noNTLM := fs.Bool("no-ntlm", false, "get: never fall back to NTLM (Restrict NTLM: outgoing NTLM traffic = deny all)")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		fs.Usage()
		return errUsage
	}
	// ws01's clock: --clock-offset plus the lab's client_clock_offset, when
	// the state holds a lab (policy set client_clock_offset=10m).
	labOffset := time.Duration(0)
	if _, err := os.Stat(filepath.Join(*state, directory.FileName)); err == nil {
		if s, err := directory.OpenExisting(*state); err == nil {
			labOffset = s.View().Lab.Policy.ClientClockOffset.D()
		}
	}
	cfg := client.Config{Now: func() time.Time { return time.Now().Add(*offset + labOffset) }}
	if *conf == "" {
		*conf = os.Getenv("KRB5_CONFIG")
	}
	if *conf == "" {
		*conf = filepath.Join(*state, lab.Krb5ConfFile)
	}
	if err := client.FromKrb5Conf(*conf, &cfg); err != nil {
		return err
	}
	cfg.CCache = *cc
	if cfg.CCache == "" {
		cfg.CCache = os.Getenv("KRB5CCNAME")
	}
	if cfg.CCache == "" {
		cfg.CCache = filepath.Join(*state, "ccache", "krb5cc")
	}
	d, err := resolveFlag(*resolve)
	if err != nil {
		return err
	}
	if *resolve == "" {
		if b, err := os.ReadFile(filepath.Join(*state, lab.HostsFile)); err == nil {
			d.ReadHosts(string(b))
		}
	}
	if u, err := url.Parse(*ldapURL); err == nil && u.Host != "" {
		d.Map(*dcName+":"+client.LDAPPort, u.Host)
	}
	cfg.Dialer = d
	if w, err := events.OpenFile(filepath.Join(*state, lab.EventsDir, "client.jsonl")); err == nil {
		defer w.Close()
		cfg.Events = w
	}
	c := client.New(cfg)
	verb, rest := pos[0], pos[1:]
	switch verb {
	case "kinit":
		user := "bob"
		if len(rest) > 0 {
			user = rest[0]
		}
		pw, err := readPassword(*state, user, *password, *pwStdin, *labPw, stdout)
		if err != nil {
			return err
		}
		cred, err := c.Kinit(ctx, user, pw)
		if err != nil {
			return kerberosFailure(err)
		}
		fmt.Fprintf(stdout, "%s: TGT until %s [%s], cache %s\n", cred.Client(), cred.Info.EndTime.Local().Format(time.DateTime), kmsg.FlagLetters(cred.Info.Flags), c.CCachePath())
		return nil
	case "klist":
		return c.Klist(stdout)
	case "kdestroy":
		return c.Kdestroy()
	case "kvno":
		for _, s := range rest {
			cred, err := c.ServiceTicket(ctx, s)
			if err != nil {
				return kerberosFailure(err)
			}
			t := cred.Ticket
			fmt.Fprintf(stdout, "%s@%s: kvno = %d (%s)\n", s, t.Realm, t.EncPart.KVNO, events.ETypeName(t.EncPart.EType))
		}
		return nil
	case "ldapsearch":
		if len(rest) < 1 {
			return fmt.Errorf("ldapsearch wants a filter: %w", errUsage)
		}
		conn, err := c.LDAP(ctx, *dcName)
		if err != nil {
			return kerberosFailure(err)
		}
		defer conn.Close()
		b := *base
		if b == "" {
			parts := strings.Split(strings.ToLower(cfg.Realm), ".")
			b = "DC=" + strings.Join(parts, ",DC=")
		}
		entries, err := conn.Search(b, ldap.ScopeSubtree, rest[0], rest[1:]...)
		ldap.WriteLDIF(stdout, entries)
		return err
	case "get":
		if len(rest) != 1 {
			return fmt.Errorf("get wants one URL: %w", errUsage)
		}
		o := client.GetOptions{Delegate: *delegate, SPN: *spn, NoNTLM: *noNTLM}
		if *asJSON {
			o.Accept = "application/json"
		}
		resp, err := c.Get(ctx, rest[0], o)
		if err != nil {
			return kerberosFailure(err)
		}
		if *verbose || resp.ServerError != nil || resp.Fallback != "" {
			printEvidence(stderr, resp)
		}
		if *asJSON && json.Valid(resp.Body) {
			var v any
			json.Unmarshal(resp.Body, &v)
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			enc.Encode(v)
		} else {
			stdout.Write(resp.Body)
		}
		if resp.Status >= 400 {
			return exitError(1)
		}
		return nil
	}
	fs.Usage()
	return fmt.Errorf("unknown verb %q: %w", verb, errUsage)
}

func printEvidence(w io.Writer, r *client.Response) {
	fmt.Fprintf(w, "* %s -> HTTP %d\n", r.URL, r.Status)
	if r.Mechanism != "" {
		fmt.Fprintf(w, "* authenticated with %s\n", r.Mechanism)
	}
	if r.Fallback != "" {
		fmt.Fprintf(w, "* Negotiate fell back to NTLM: %s (NTLM cannot be delegated)\n", r.Fallback)
	}
	fmt.Fprintf(w, "* SPN %s\n", r.SPN)
	if t := r.Ticket; t != nil {
		fmt.Fprintf(w, "* ticket: kvno %d %s, flags %s\n", t.Ticket.EncPart.KVNO, events.ETypeName(t.Ticket.EncPart.EType), strings.Join(kmsg.FlagNames(t.Info.Flags), ","))
	}
	fmt.Fprintf(w, "* forwarded TGT sent: %v\n", r.Delegated)
	if r.Mutual != "" {
		fmt.Fprintf(w, "* mutual authentication: %s\n", r.Mutual)
	}
	if r.ServerError != nil {
		fmt.Fprintf(w, "* the server rejected the ticket: %s\n", r.ServerError.Error())
	}
}

// kerberosFailure prints Kerberos errors with their code, as the tools do.
func kerberosFailure(err error) error {
	if c, ok := kerr.CodeOf(err); ok {
		return fmt.Errorf("%w [%s]", err, c.Name())
	}
	return err
}

func readPassword(state, user, flagPw string, fromStdin, fromLab bool, stdout io.Writer) (string, error) {
	switch {
	case flagPw != "":
		return flagPw, nil
	case fromLab:
		s, err := openStore(state)
		if err != nil {
			return "", err
		}
		a := s.View().Lab.Account(user)
		if a == nil {
			return "", fmt.Errorf("no account %s in the lab", user)
		}
		return a.Password, nil
	case fromStdin || !term.IsTerminal(int(os.Stdin.Fd())):
		line, err := bufio.NewReader(os.Stdin).ReadString('\n')
		if err != nil && line == "" {
			return "", fmt.Errorf("reading the password from stdin: %w", err)
		}
		return strings.TrimRight(line, "\r\n"), nil
	}
	fmt.Fprintf(stdout, "Password for %s: ", user)
	b, err := term.ReadPassword(int(os.Stdin.Fd()))
	fmt.Fprintln(stdout)
	return string(b), err
}

// resolveFlag parses --resolve host[:port]=address,... into a dialer.
func resolveFlag(v string) (*labnet.Dialer, error) {
	d := labnet.NewEmpty()
	if v == "" {
		return d, nil
	}
	for _, e := range strings.Split(v, ",") {
		k, a, ok := strings.Cut(e, "=")
		if !ok {
			return nil, fmt.Errorf("--resolve %q: want host[:port]=address", e)
		}
		d.Map(k, a)
	}
	return d, nil
}
