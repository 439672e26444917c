package scenarios

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"time"

	"github.com/doublehop/doublehop/client"
	"github.com/doublehop/doublehop/events"
	"github.com/doublehop/doublehop/explain"
	"github.com/doublehop/doublehop/krb/kerr"
	"github.com/doublehop/doublehop/webtier"
)

// Options tune a run.
type Options struct {
	Out       io.Writer                // narration and outcomes (nil: silent)
	Pause     func(next Step) bool     // workshop mode: called before each step; false stops the run
	Passwords func(user string) string // a user's lab password (kinit)
}

// StepResult is what one step did and whether it matched its expectations.
type StepResult struct {
	Step     Step
	Outcome  Outcome
	Failures []string
}

// Outcome is what a step observed.
type Outcome struct {
	Err         error
	Output      string
	HTTP        int
	Page        *webtier.Page
	ServerError *kerr.Error
	WebAuth     string // Kerberos | NTLM: what Bob's Negotiate used
	Fallback    string // why Negotiate fell back to NTLM
	Events      []events.Event
	Diagnosis   *explain.Diagnosis
}

// Report is a whole run.
type Report struct {
	Scenario *Scenario
	Steps    []StepResult
}

// OK reports whether every step matched.
func (r *Report) OK() bool {
	for _, s := range r.Steps {
		if len(s.Failures) > 0 {
			return false
		}
	}
	return len(r.Steps) == len(r.Scenario.Steps)
}

// Engine runs scenarios against a Target.
type Engine struct {
	T       Target
	opt     Options
	clients map[string]*client.Client
	start   time.Time
}

// NewEngine makes an engine for a target.
func NewEngine(t Target, opt Options) *Engine {
	if opt.Out == nil {
		opt.Out = io.Discard
	}
	return &Engine{T: t, opt: opt, clients: map[string]*client.Client{}}
}

// Run resets the lab, applies the scenario's setup and runs its steps.
func (e *Engine) Run(ctx context.Context, s *Scenario) (*Report, error) {
	rep := &Report{Scenario: s}
	if err := e.T.Reset(ctx, nil); err != nil {
		return rep, fmt.Errorf("reset: %w", err)
	}
	e.clients = map[string]*client.Client{}
	e.start = time.Now()
	fmt.Fprintf(e.opt.Out, "== %s: %s\n", s.ID, s.Title)
	if s.Story != "" {
		fmt.Fprintf(e.opt.Out, "%s\n", indent(strings.TrimSpace(s.Story), "   "))
	}
	for _, c := range s.Setup {
		args, err := SplitArgs(c)
		if err != nil {
			return rep, err
		}
		if out, err := e.T.Admin(ctx, args); err != nil {
			return rep, fmt.Errorf("setup %q: %v\n%s", c, err, out)
		}
		fmt.Fprintf(e.opt.Out, "   setup: doublehop %s\n", c)
	}
	for i, st := range s.Steps {
		if e.opt.Pause != nil && !e.opt.Pause(st) {
			break
		}
		res := e.step(ctx, st)
		rep.Steps = append(rep.Steps, res)
		e.print(i+1, res)
	}
	if rep.OK() {
		fmt.Fprintf(e.opt.Out, "== %s: PASS (%d steps)\n", s.ID, len(rep.Steps))
	} else {
		fmt.Fprintf(e.opt.Out, "== %s: FAIL\n", s.ID)
	}
	return rep, nil
}

func (e *Engine) step(ctx context.Context, st Step) StepResult {
	res := StepResult{Step: st}
	since := time.Now()
	verb, args, _ := parseAction(st.Do)
	o := &res.Outcome
	switch verb {
	case "kinit":
		o.Err = e.kinit(ctx, args)
	case "kdestroy":
		if c, err := e.client(args.user, 0); err == nil {
			o.Err = c.Kdestroy()
		}
	case "browse":
		e.browse(ctx, args, o)
	case "keytab":
		o.Err = e.T.Keytab(ctx, args.pos[0], args.pos[1])
	case "attack":
		o.Output, o.Err = e.attack(ctx, args)
	case "ldap":
		o.Output, o.Err = e.ldap(ctx, args)
	case "explain":
	default: // admin commands
		o.Output, o.Err = e.T.Admin(ctx, append([]string{verb}, args.pos...))
	}
	// Tiers write their events before they answer, but a container lab's
	// events arrive through docker logs, a little later: give them a moment.
	time.Sleep(20 * time.Millisecond)
	all, err := e.T.Events(ctx)
	if err == nil {
		for _, ev := range all {
			if !ev.Time.Before(since.Add(-time.Millisecond)) {
				o.Events = append(o.Events, ev)
			}
		}
		if st.Expect.Explain != "" || verb == "explain" {
			var scoped []events.Event
			horizon := time.Now().Add(time.Second)
			for _, ev := range all {
				// A host whose clock a step moved may have stamped events in the future.
				if !ev.Time.Before(e.start) && ev.Time.Before(horizon) {
					scoped = append(scoped, ev)
				}
			}
			view, _ := e.T.View(ctx)
			d := explain.Explain(explain.Input{Events: scoped, View: view})
			o.Diagnosis = &d
		}
	}
	res.Failures = check(st.Expect, o)
	return res
}

func (e *Engine) client(user string, offset time.Duration) (*client.Client, error) {
	if user == "" {
		user = "bob"
	}
	k := fmt.Sprintf("%s@%s", user, offset)
	if c, ok := e.clients[k]; ok {
		return c, nil
	}
	c, err := e.T.Client(user, offset)
	if err != nil {
		return nil, err
	}
	e.clients[k] = c
	return c, nil
}

func (e *Engine) kinit(ctx context.Context, a action) error {
	c, err := e.client(a.user, a.offset)
	if err != nil {
		return err
	}
	pw := a.password
	if pw == "" && e.opt.Passwords != nil {
		pw = e.opt.Passwords(a.user)
	}
	if pw == "" {
		view, err := e.T.View(ctx)
		if err != nil {
			return err
		}
		if acct := view.Lab.Account(a.userOr("bob")); acct != nil {
			pw = acct.Password
		}
	}
	_, err = c.Kinit(ctx, a.userOr("bob"), pw)
	return err
}

// browse is Bob opening the site: a logon first if his cache has no TGT,
// then Negotiate (or the site's form login with --form), JSON view.
func (e *Engine) browse(ctx context.Context, a action, o *Outcome) {
	target, err := e.T.URL(a.pos[0])
	if err != nil {
		o.Err = err
		return
	}
	c, err := e.client(a.user, a.offset)
	if err != nil {
		o.Err = err
		return
	}
	if a.form {
		e.formBrowse(ctx, target, a, o)
		return
	}
	if _, _, err := c.TGT(); err != nil {
		if err := e.kinit(ctx, a); err != nil {
			o.Err = err
			return
		}
	}
	resp, err := c.Get(ctx, target, client.GetOptions{Delegate: a.delegate, Accept: "application/json", NoNTLM: a.noNTLM})
	if err != nil {
		o.Err = err
		return
	}
	o.HTTP, o.ServerError, o.WebAuth, o.Fallback = resp.Status, resp.ServerError, resp.Mechanism, resp.Fallback
	o.Output = string(resp.Body)
	if resp.Status == 200 {
		var p webtier.Page
		if err := json.Unmarshal(resp.Body, &p); err == nil {
			o.Page = &p
		}
	}
}

func (e *Engine) formBrowse(ctx context.Context, target string, a action, o *Outcome) {
	_, d := e.T.KDC()
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }} // one flow per step: the JSON GET below
	u, _ := url.Parse(target)
	login := *u
	login.Path = "/login"
	pw := a.password
	if pw == "" {
		pw = a.userOr("bob") + "-web"
	}
	form := url.Values{"user": {a.userOr("bob")}, "password": {pw}}.Encode()
	preq, _ := http.NewRequestWithContext(ctx, "POST", login.String(), strings.NewReader(form))
	preq.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r, err := hc.Do(preq)
	if err != nil {
		o.Err = err
		return
	}
	r.Body.Close()
	req, _ := http.NewRequestWithContext(ctx, "GET", target, nil)
	req.Header.Set("Accept", "application/json")
	r, err = hc.Do(req)
	if err != nil {
		o.Err = err
		return
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	o.HTTP, o.Output = r.StatusCode, string(b)
	var p webtier.Page
	if r.StatusCode == 200 && json.Unmarshal(b, &p) == nil {
		o.Page = &p
	}
}

// check compares an outcome with the step's expectations.
func check(x Expect, o *Outcome) []string {
	var f []string
	bad := func(format string, args ...any) { f = append(f, fmt.Sprintf(format, args...)) }
	if x.Fails != (o.Err != nil) {
		if o.Err != nil {
			bad("action failed: %v", o.Err)
		} else {
			bad("action succeeded, expected it to fail")
		}
	}
	if x.Error != "" && (o.Err == nil || !strings.Contains(errString(o.Err), x.Error)) {
		bad("error should contain %q, got %v", x.Error, o.Err)
	}
	if x.HTTP != 0 && o.HTTP != x.HTTP {
		bad("HTTP %d, want %d", o.HTTP, x.HTTP)
	}
	if x.WebAuth != "" && !strings.EqualFold(o.WebAuth, x.WebAuth) {
		bad("Bob's browser authenticated with %q, want %s", o.WebAuth, x.WebAuth)
	}
	if x.KerberosError != "" && (o.ServerError == nil || o.ServerError.Code.Name() != x.KerberosError) {
		bad("server's Kerberos error %v, want %s", o.ServerError, x.KerberosError)
	}
	for _, s := range x.Output {
		if !strings.Contains(o.Output, s) {
			bad("output lacks %q", s)
		}
	}
	for _, s := range x.NoOutput {
		if strings.Contains(o.Output, s) {
			bad("output holds %q", s)
		}
	}
	p := o.Page
	if x.RunningAs != "" || x.Mechanism != "" || x.SQLLogin != "" || x.AuthScheme != "" || x.SQLError != 0 || x.KDCError != "" || x.Delegated != nil || x.Orders != nil ||
		x.SQLDelegation != "" || x.SQLTransited != "" {
		if p == nil {
			bad("no page (HTTP %d)", o.HTTP)
		} else {
			if x.RunningAs != "" && p.RunningAs != x.RunningAs {
				bad("running as %q, want %q", p.RunningAs, x.RunningAs)
			}
			if x.Mechanism != "" && !strings.Contains(p.Mechanism, x.Mechanism) {
				bad("mechanism %q, want %q", p.Mechanism, x.Mechanism)
			}
			if x.Delegated != nil && p.Delegated != *x.Delegated {
				bad("delegated credential %v, want %v", p.Delegated, *x.Delegated)
			}
			if x.KDCError != "" && !strings.Contains(p.KDCError, x.KDCError) {
				bad("KDC error %q, want %q", p.KDCError, x.KDCError)
			}
			if x.SQLLogin != "" && p.SQL.Login != x.SQLLogin {
				bad("SQL login %q, want %q (SQL error %+v)", p.SQL.Login, x.SQLLogin, p.SQL.Error)
			}
			if x.SQLDelegation != "" && !strings.Contains(p.SQL.Delegation, x.SQLDelegation) {
				bad("SQL saw delegation %q, want %q", p.SQL.Delegation, x.SQLDelegation)
			}
			if x.SQLTransited != "" && !strings.Contains(p.SQL.TransitedServices, x.SQLTransited) {
				bad("SQL saw transited services %q, want %q", p.SQL.TransitedServices, x.SQLTransited)
			}
			if x.AuthScheme != "" && p.SQL.AuthScheme != x.AuthScheme {
				bad("auth_scheme %q, want %q", p.SQL.AuthScheme, x.AuthScheme)
			}
			if x.SQLError != 0 && (p.SQL.Error == nil || int(p.SQL.Error.Number) != x.SQLError || (x.SQLState != 0 && int(p.SQL.Error.State) != x.SQLState)) {
				bad("SQL error %+v, want %d state %d", p.SQL.Error, x.SQLError, x.SQLState)
			}
			if x.Orders != nil && len(p.SQL.Orders) != *x.Orders {
				bad("%d orders visible, want %d", len(p.SQL.Orders), *x.Orders)
			}
		}
	}
	for _, m := range x.Events {
		if !anyMatch(o.Events, m) {
			bad("no event matching %s", m)
		}
	}
	for _, m := range x.NoEvents {
		if anyMatch(o.Events, m) {
			bad("unexpected event matching %s", m)
		}
	}
	if x.Explain != "" {
		if o.Diagnosis == nil {
			bad("no diagnosis")
		} else if o.Diagnosis.ID != x.Explain {
			bad("explain says %q (%s), want %q", o.Diagnosis.ID, o.Diagnosis.Summary, x.Explain)
		}
	}
	return f
}

func errString(err error) string {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return err.Error() + " " + ke.Code.Name()
	}
	return err.Error()
}

func anyMatch(evs []events.Event, m EventMatch) bool {
	for _, e := range evs {
		if m.match(e) {
			return true
		}
	}
	return false
}

func (m EventMatch) match(e events.Event) bool {
	eq := func(want, got string) bool { return want == "" || strings.EqualFold(want, got) }
	has := func(want, got string) bool {
		return want == "" || strings.Contains(strings.ToLower(got), strings.ToLower(want))
	}
	host := m.Host == "" || strings.EqualFold(m.Host, e.Host) || strings.HasPrefix(strings.ToLower(e.Host), strings.ToLower(m.Host)+".")
	return host && (m.ID == 0 || m.ID == e.ID) && eq(m.Outcome, e.Outcome) && eq(m.Code, e.CodeName) && eq(m.Reason, e.Reason) &&
		eq(m.Account, e.Account) && has(m.Client, e.Client) && eq(m.Service, e.Service) && eq(m.Mechanism, e.Mechanism) &&
		eq(m.Login, e.Login) && (m.State == 0 || m.State == e.State) && has(m.Status, e.Status) &&
		has(m.Transited, strings.Join(e.Transited, ",")) && eq(m.Package, e.Package) && eq(m.AuthScheme, e.AuthScheme)
}

func (m EventMatch) String() string {
	b, _ := json.Marshal(m)
	return string(b)
}

// print shows one step's outcome the way a trainer wants it on screen.
func (e *Engine) print(n int, r StepResult) {
	w := e.opt.Out
	name := r.Step.Name
	if name == "" {
		name = r.Step.Do
	}
	fmt.Fprintf(w, "-- step %d: %s\n", n, name)
	if r.Step.Say != "" {
		fmt.Fprintf(w, "%s\n", indent(strings.TrimSpace(r.Step.Say), "   "))
	}
	fmt.Fprintf(w, "   $ %s\n", r.Step.Do)
	o := r.Outcome
	if o.Err != nil {
		fmt.Fprintf(w, "   ! %v\n", o.Err)
	}
	if o.HTTP != 0 {
		fmt.Fprintf(w, "   HTTP %d", o.HTTP)
		if o.ServerError != nil {
			fmt.Fprintf(w, " — the server answered %s", o.ServerError.Code)
		}
		fmt.Fprintln(w)
	}
	if o.Fallback != "" {
		fmt.Fprintf(w, "   Negotiate fell back to NTLM: %s\n", o.Fallback)
	}
	if p := o.Page; p != nil {
		fmt.Fprintf(w, "   running as %s; second hop: %s\n", p.RunningAs, p.Mechanism)
		if p.SQL.Error != nil {
			fmt.Fprintf(w, "   SQL Server: Msg %d, State %d: %s\n", p.SQL.Error.Number, p.SQL.Error.State, p.SQL.Error.Message)
		} else {
			fmt.Fprintf(w, "   SQL Server: SUSER_SNAME()=%s auth_scheme=%s, %d orders\n", p.SQL.Login, p.SQL.AuthScheme, len(p.SQL.Orders))
		}
	}
	if o.Output != "" && o.Page == nil && o.HTTP == 0 {
		fmt.Fprintf(w, "%s\n", indent(strings.TrimRight(o.Output, "\n"), "   | "))
	}
	for _, ev := range o.Events {
		if ev.Outcome == events.Failure || ev.ID == events.ServiceTicket {
			fmt.Fprintf(w, "   %s\n", ev.String())
		}
	}
	if d := o.Diagnosis; d != nil {
		fmt.Fprintf(w, "   explain [%s] %s\n", d.ID, d.Summary)
		for _, f := range d.Fix {
			fmt.Fprintf(w, "     fix: %s\n", f)
		}
		if d.Note != "" {
			fmt.Fprintf(w, "     note: %s\n", d.Note)
		}
	}
	for _, f := range r.Failures {
		fmt.Fprintf(w, "   FAIL: %s\n", f)
	}
}

func indent(s, p string) string { return p + strings.ReplaceAll(s, "\n", "\n"+p) }
