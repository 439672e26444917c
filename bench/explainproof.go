package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/doublehop/doublehop/client"
	"github.com/doublehop/doublehop/directory"
	"github.com/doublehop/doublehop/events"
	"github.com/doublehop/doublehop/explain"
	"github.com/doublehop/doublehop/lab"
	"github.com/doublehop/doublehop/scenarios"
	"github.com/doublehop/doublehop/webtier"
)

// The proof that explain is right: mutate the lab the way an admin can by
// mistake, one change (or two) at a time, run Bob's flow, and when it breaks
// apply exactly the fix commands explain prints; after a new logon Bob must
// reach SQL Server as LAB\bob over Kerberos.

// Fault is one mistake: admin commands (as on the CLI), or a keytab mishap
// ("keytab web svc_mssqlserver": the web tier gets another account's keys;
// "keytab web -": the file is gone).
type Fault struct {
	Name     string
	Commands [][]string
}

// SingleFaults are the single mistakes over the default lab: every SPN
// removed, moved to each other account, duplicated on it; every account's
// password reset without a new keytab, each flag flipped, each delegation
// mode; each tier given each other account's keytab or none; the domain
// policy and the site's settings.
func SingleFaults() []Fault {
	l := directory.Default()
	var accts []string
	for _, a := range l.Accounts {
		if a.Type != directory.TypeKrbtgt {
			accts = append(accts, a.Name)
		}
	}
	var out []Fault
	add := func(name string, cmds ...[]string) { out = append(out, Fault{Name: name, Commands: cmds}) }
	for _, a := range l.Accounts {
		for _, spn := range a.SPNs {
			add("remove "+spn+" from "+a.Name, []string{"setspn", "-D", spn, a.Name})
			for _, b := range accts {
				if strings.EqualFold(b, a.Name) {
					continue
				}
				add("move "+spn+" to "+b, []string{"setspn", "-D", spn, a.Name}, []string{"setspn", "-A", spn, b})
				add("duplicate "+spn+" on "+b, []string{"setspn", "-A", spn, b})
			}
		}
	}
	sqlSPN := "MSSQLSvc/sql.lab.local:1433"
	for _, a := range accts {
		add("reset "+a+"'s password, no new keytab", []string{"account", "password", a, "Changed-Passw0rd!"})
		for _, kv := range []string{"sensitive=true", "disabled=true", "enctypes=rc4", "dont_require_preauth=true", "groups=+Protected Users",
			"expires=2020-01-01", "must_change_password=true", "password_expired=true", "logon_hours=none"} {
			add(a+" "+kv, []string{"account", "set", a, kv})
		}
		for _, d := range [][]string{{"none"}, {"unconstrained"}, {"constrained", "--to", sqlSPN}, {"constrained", "--to", sqlSPN, "--protocol-transition"},
			{"constrained", "--to", "MSSQLSvc/sql.lab.local"}} {
			add("delegation "+a+" "+strings.Join(d, " "), append([]string{"delegation", "set", a}, d...))
		}
	}
	for _, tier := range []string{"web", "sql"} {
		add(tier+" keytab missing", []string{"keytab", tier, "-"})
		for _, a := range accts {
			if h := l.HostByRole(tier); h != nil && !strings.EqualFold(h.RunsAs, a) {
				add(tier+" keytab of "+a, []string{"keytab", tier, a})
			}
		}
	}
	// A lockout: the domain locks after 3 bad passwords, and someone typed Bob's wrong three times.
	add("bob locked out", []string{"policy", "set", "lockout_threshold=3"}, []string{"bad-password", "bob", "3"})
	// The misplaced settings: delegation on the machine account instead of the
	// account the site runs as; RBCD written on the front end.
	add("delegation on WEB$ instead of svc_iispool", []string{"delegation", "set", "svc_iispool", "none"},
		[]string{"delegation", "set", "WEB$", "constrained", "--to", sqlSPN})
	add("RBCD on the front end", []string{"delegation", "set", "svc_iispool", "none"},
		[]string{"delegation", "rbcd", "svc_iispool", "--allow", "svc_mssqlserver"})
	for _, kv := range []string{"kdc_clock_offset=10m", "client_clock_offset=10m", "client_clock_offset=-7m", "max_skew=1s", "web.impersonate=false", "web.providers=NTLM", "web.providers=Negotiate:Kerberos",
		`sql.login=LAB\bob:deny`, `sql.login=LAB\bob:disabled`, "restrict_ntlm=deny_all", "allow_rc4=true"} {
		add("policy "+kv, []string{"policy", "set", kv})
	}
	return out
}

// FaultPairs samples n pairs of single faults (seeded, reproducible).
func FaultPairs(n int, seed int64) []Fault {
	one := SingleFaults()
	r := rand.New(rand.NewSource(seed))
	out := make([]Fault, 0, n)
	for len(out) < n {
		a, b := one[r.Intn(len(one))], one[r.Intn(len(one))]
		if a.Name == b.Name {
			continue
		}
		out = append(out, Fault{Name: a.Name + " + " + b.Name, Commands: append(append([][]string{}, a.Commands...), b.Commands...)})
	}
	return out
}

// FaultOutcome is what happened to one fault.
type FaultOutcome struct {
	Fault     string
	Broke     bool     // Bob's flow did not end as LAB\bob over Kerberos at SQL
	Diagnoses []string // explain's ids, one per round
	Fixed     bool     // the printed fixes restored the flow
	Unknown   bool     // explain said "don't know"
	Err       string   // why it was not fixed (a fix that would not run, the flow after the fixes)
}

// ProofOptions configure a run.
type ProofOptions struct {
	Parallel int // labs at once (default 2)
	Rounds   int // explain rounds per lab (one per fault: 1 for singles, 2 for pairs)
}

// ProveExplain runs each fault in its own embedded lab.
func ProveExplain(ctx context.Context, faults []Fault, o ProofOptions) []FaultOutcome {
	if o.Parallel <= 0 {
		o.Parallel = 2
	}
	if o.Rounds <= 0 {
		o.Rounds = 1
	}
	out := make([]FaultOutcome, len(faults))
	sem := make(chan struct{}, o.Parallel)
	var wg sync.WaitGroup
	for i, f := range faults {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			out[i] = proveOne(ctx, f, o.Rounds)
		}()
	}
	wg.Wait()
	return out
}

func proveOne(ctx context.Context, f Fault, rounds int) FaultOutcome {
	res := FaultOutcome{Fault: f.Name}
	dir, err := os.MkdirTemp("", "doublehop-proof-")
	if err != nil {
		res.Err = err.Error()
		return res
	}
	defer os.RemoveAll(dir)
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	l, err := lab.Start(lctx, lab.Options{StateDir: dir})
	if err != nil {
		res.Err = err.Error()
		return res
	}
	defer l.Close()
	for _, c := range f.Commands {
		if err := runCommand(l, c); err != nil {
			// A mistake the tools refuse (setspn -S would; -A does not) is no fault.
			res.Err = "fault not applicable: " + err.Error()
			return res
		}
	}
	since := time.Now()
	why := bobFlow(ctx, l, dir, 0)
	if why == "" {
		return res
	}
	res.Broke = true
	for round := 0; round < rounds; round++ {
		// explain sees this round's flow, as `doublehop explain --since` would.
		evs, _ := l.Events()
		evs = events.Filter{Since: since}.Apply(evs)
		d := explain.Explain(explain.Input{Events: evs, View: l.Store.View(), StateDir: l.StateDir})
		res.Diagnoses = append(res.Diagnoses, d.ID)
		if d.ID == explain.Unknown {
			res.Unknown = true
			res.Err = why
			return res
		}
		for _, fix := range d.Fix {
			if err := runFix(l, fix); err != nil {
				res.Err = fmt.Sprintf("fix %q: %v", fix, err)
				return res
			}
		}
		since = time.Now()
		if why = bobFlow(ctx, l, dir, round+1); why == "" {
			res.Fixed = true
			return res
		}
	}
	res.Err = "after the fixes: " + why
	return res
}

// bobFlow logs Bob on with a new cache and opens the site; "" when SQL
// Server saw LAB\bob over Kerberos.
func bobFlow(ctx context.Context, l *lab.Lab, dir string, n int) string {
	off := l.Store.View().Lab.Policy.ClientClockOffset.D() // ws01's clock, as the lab has it
	cfg := client.Config{CCache: filepath.Join(dir, fmt.Sprintf("bob%d.cc", n)), Dialer: l.Dialer,
		Resolver: directory.ZoneResolver{Lab: func() *directory.Lab { return l.Store.View().Lab }},
		Now:      func() time.Time { return time.Now().Add(off) }}
	if err := client.FromKrb5Conf(l.Krb5Conf(), &cfg); err != nil {
		return err.Error()
	}
	w, err := openClientLog(l)
	if err == nil {
		defer w.Close()
		cfg.Events = w
	}
	c := client.New(cfg)
	fctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if _, err := c.Kinit(fctx, "bob", l.Password("bob")); err != nil {
		return "kinit: " + err.Error()
	}
	r, err := c.Get(fctx, l.WebURL, client.GetOptions{Accept: "application/json"})
	if err != nil {
		return "browse: " + err.Error()
	}
	var p webtier.Page
	if r.Status != 200 || json.Unmarshal(r.Body, &p) != nil {
		return fmt.Sprintf("HTTP %d", r.Status)
	}
	if p.SQL.Login != `LAB\bob` || p.SQL.AuthScheme != "KERBEROS" {
		if p.SQL.Error != nil {
			return fmt.Sprintf("SQL %d: %s", p.SQL.Error.Number, p.SQL.Error.Message)
		}
		return fmt.Sprintf("SQL saw %q over %q", p.SQL.Login, p.SQL.AuthScheme)
	}
	return ""
}

func openClientLog(l *lab.Lab) (*events.JSONWriter, error) {
	return events.OpenFile(filepath.Join(l.StateDir, lab.EventsDir, "client.jsonl"))
}

// runCommand applies one fault command.
func runCommand(l *lab.Lab, c []string) error {
	if c[0] == "bad-password" && len(c) == 3 {
		// kinit with a wrong password, n times (a user, or a service with an old one)
		n, _ := strconv.Atoi(c[2])
		cfg := client.Config{CCache: filepath.Join(l.StateDir, "bad.cc"), Dialer: l.Dialer}
		if err := client.FromKrb5Conf(l.Krb5Conf(), &cfg); err != nil {
			return err
		}
		ws := client.New(cfg)
		for i := 0; i < n; i++ {
			ws.Kinit(context.Background(), c[1], "not-the-password")
		}
		return nil
	}
	if c[0] == "keytab" && len(c) == 3 {
		path := l.KeytabPath(c[1])
		if c[2] == "-" {
			return os.Remove(path)
		}
		return lab.ExportKeytab(l.Store, c[2], path)
	}
	_, err := l.Admin(c...)
	return err
}

// runFix runs one line explain printed, as a user would paste it.
func runFix(l *lab.Lab, line string) error {
	for _, part := range strings.Split(line, ";") {
		args, err := scenarios.SplitArgs(strings.TrimSpace(part))
		if err != nil {
			return err
		}
		if len(args) == 0 {
			continue
		}
		if args[0] != "doublehop" {
			return fmt.Errorf("not a doublehop command")
		}
		args = args[1:]
		switch {
		case len(args) == 0:
			return fmt.Errorf("empty command")
		case args[0] == "client" && len(args) >= 2 && (args[1] == "kdestroy" || args[1] == "kinit"):
			// the proof logs Bob on again after every round anyway
		case args[0] == "keytab":
			// keytab -o PATH ACCOUNT, as the CLI takes it
			if len(args) != 4 || args[1] != "-o" {
				return fmt.Errorf("keytab: want -o PATH ACCOUNT")
			}
			if err := lab.ExportKeytab(l.Store, args[3], args[2]); err != nil {
				return err
			}
		default:
			if _, err := l.Admin(args...); err != nil {
				return err
			}
		}
	}
	return nil
}

// ProofTable summarizes outcomes as BENCHMARKS.md shows them.
func ProofTable(w io.Writer, title string, out []FaultOutcome) (broke, fixed, unknown int) {
	tried, na := 0, 0
	byDiag := map[string]int{}
	var failures []FaultOutcome
	for _, o := range out {
		if strings.HasPrefix(o.Err, "fault not applicable") {
			na++
			continue
		}
		tried++
		if !o.Broke {
			continue
		}
		broke++
		for _, d := range o.Diagnoses {
			byDiag[d]++
		}
		switch {
		case o.Fixed:
			fixed++
		case o.Unknown:
			unknown++
			failures = append(failures, o)
		default:
			failures = append(failures, o)
		}
	}
	fmt.Fprintf(w, "%s: %d faults tried (%d refused by the tools), %d broke the flow, %d fixed by the printed fixes, %d \"don't know\", %d not fixed\n",
		title, tried, na, broke, fixed, unknown, broke-fixed-unknown)
	var ids []string
	for id := range byDiag {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		fmt.Fprintf(w, "  %-28s %d\n", id, byDiag[id])
	}
	for _, o := range failures {
		fmt.Fprintf(w, "  NOT FIXED %-50s explain=%v: %s\n", o.Fault, o.Diagnoses, o.Err)
	}
	return broke, fixed, unknown
}
