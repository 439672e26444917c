package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/doublehop/doublehop/directory"
	"github.com/doublehop/doublehop/events"
	"github.com/doublehop/doublehop/explain"
	"github.com/doublehop/doublehop/lab"
	"github.com/doublehop/doublehop/scenarios"
)

func init() {
	register("scenario", "the break/observe/fix catalog: list, show, run [--step] [--all], reset", cmdScenario)
	register("events", "one merged, time-ordered timeline of every tier's audit events", cmdEvents)
	register("explain", "read the timeline and say what went wrong, at which hop, why, and the fixing command", cmdExplain)
}

const scenarioUsage = `Usage: doublehop scenario <verb> [flags]
  list                         the catalog
  show ID                      the story, setup, steps, explanation and fix
  run ID [--step] [--state D]  run it against the lab at --state (a running "doublehop up"),
                               or, when none is running there, against a fresh embedded lab
  run --all                    every scenario (exit status 1 if any fails)
  reset [--state D]            put a running lab back to the default working state

Flags:
`

func cmdScenario(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("scenario", "scenario <verb>", stderr)
	fs.Usage = func() { fmt.Fprint(stderr, scenarioUsage); fs.PrintDefaults() }
	state := fs.String("state", "", "state directory of a running lab (default $DOUBLEHOP_STATE; none: a fresh embedded lab)")
	step := fs.Bool("step", false, "workshop mode: pause before each step (Enter continues, q stops)")
	all := fs.Bool("all", false, "run every scenario")
	quiet := fs.Bool("q", false, "print only the result lines")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		fs.Usage()
		return errUsage
	}
	if *state == "" {
		*state = os.Getenv("DOUBLEHOP_STATE")
	}
	switch pos[0] {
	case "list":
		all, err := scenarios.Catalog()
		if err != nil {
			return err
		}
		for _, s := range all {
			fmt.Fprintf(stdout, "%-22s %s\n", s.ID, s.Title)
		}
		return nil
	case "show":
		if len(pos) != 2 {
			return errUsage
		}
		s, err := scenarios.Find(pos[1])
		if err != nil {
			return err
		}
		showScenario(stdout, s)
		return nil
	case "reset":
		t, err := scenarios.OpenState(orDefault(*state))
		if err != nil {
			return err
		}
		defer t.Close()
		if err := t.Reset(ctx, nil); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "the lab is back to its default working state (keytabs re-exported)")
		return nil
	case "run":
		list, err := pickScenarios(*all, pos)
		if err != nil {
			return err
		}
		return runScenarios(ctx, list, *state, *step, *quiet, stdout)
	}
	fs.Usage()
	return errUsage
}

func orDefault(s string) string {
	if s == "" {
		return defaultState()
	}
	return s
}

// pickScenarios is the list `run ID` or `run --all` (also `run all`) names.
func pickScenarios(all bool, pos []string) ([]*scenarios.Scenario, error) {
	if all || (len(pos) == 2 && pos[1] == "all") {
		return scenarios.Catalog()
	}
	if len(pos) != 2 {
		return nil, fmt.Errorf("run wants a scenario id or --all: %w", errUsage)
	}
	s, err := scenarios.Find(pos[1])
	if err != nil {
		return nil, err
	}
	return []*scenarios.Scenario{s}, nil
}

// runScenarios runs against a live lab at state when one answers there,
// otherwise each scenario gets a fresh embedded lab.
func runScenarios(ctx context.Context, list []*scenarios.Scenario, state string, step, quiet bool, stdout io.Writer) error {
	live := state != "" && labRunning(state)
	return runEach(ctx, list, step, quiet, stdout, "", func() (scenarios.Target, func(), error) {
		if live {
			t, err := scenarios.OpenState(state)
			if err != nil {
				return nil, nil, err
			}
			return t, func() { t.Close() }, nil
		}
		t, stop, err := freshLab(ctx)
		if err != nil {
			return nil, nil, err
		}
		return t, func() { t.Close(); stop() }, nil
	})
}

// runEach runs every scenario of list on the target open gives it, printing
// one PASS/FAIL line each (always with -q or more than one); where names the
// lab in that line. Exit status 1 when any fails.
func runEach(ctx context.Context, list []*scenarios.Scenario, step, quiet bool, stdout io.Writer, where string,
	open func() (scenarios.Target, func(), error)) error {
	opt := scenarios.Options{Out: stdout}
	if quiet {
		opt.Out = io.Discard
	}
	if step {
		in := bufio.NewReader(os.Stdin)
		opt.Pause = func(next scenarios.Step) bool {
			fmt.Fprintf(stdout, "\n[next: %s] Enter to run, q to stop: ", next.Do)
			line, _ := in.ReadString('\n')
			return !strings.HasPrefix(strings.TrimSpace(line), "q")
		}
	}
	failed := 0
	for _, s := range list {
		t, done, err := open()
		if err != nil {
			return err
		}
		start := time.Now()
		rep, err := scenarios.NewEngine(t, opt).Run(ctx, s)
		done()
		if err != nil {
			return fmt.Errorf("%s: %w", s.ID, err)
		}
		status := "PASS"
		if !rep.OK() {
			status, failed = "FAIL", failed+1
		}
		if quiet || len(list) > 1 {
			fmt.Fprintf(stdout, "%-4s %-22s %s (%s%s)\n", status, s.ID, s.Title, time.Since(start).Round(time.Millisecond), where)
		}
	}
	if failed > 0 {
		fmt.Fprintf(stdout, "%d of %d scenarios failed\n", failed, len(list))
		return exitError(1)
	}
	return nil
}

// labRunning reports whether the lab at state answers on its KDC.
func labRunning(state string) bool {
	t, err := scenarios.OpenState(state)
	if err != nil {
		return false
	}
	defer t.Close()
	addr, _ := t.KDC()
	c, err := net.DialTimeout("tcp", addr, 500*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func freshLab(ctx context.Context) (*scenarios.StateTarget, func(), error) {
	dir, err := os.MkdirTemp("", "doublehop-lab-")
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	l, err := lab.Start(ctx, lab.Options{StateDir: dir})
	if err != nil {
		cancel()
		return nil, nil, err
	}
	stop := func() { cancel(); l.Close(); os.RemoveAll(dir) }
	t, err := scenarios.OpenState(dir)
	if err != nil {
		stop()
		return nil, nil, err
	}
	return t, stop, nil
}

func showScenario(w io.Writer, s *scenarios.Scenario) {
	fmt.Fprintf(w, "%s — %s\n\n%s\n", s.ID, s.Title, strings.TrimSpace(s.Story))
	if len(s.Setup) > 0 {
		fmt.Fprintln(w, "\nSetup (changes to the default lab):")
		for _, c := range s.Setup {
			fmt.Fprintf(w, "  doublehop %s\n", c)
		}
	}
	fmt.Fprintln(w, "\nSteps:")
	for i, st := range s.Steps {
		name := st.Name
		if name != "" {
			name = "  # " + name
		}
		fmt.Fprintf(w, "  %2d. %s%s\n", i+1, st.Do, name)
	}
	fmt.Fprintf(w, "\nWhy:\n%s\n", indentText(strings.TrimSpace(s.Explanation), "  "))
	if len(s.Fix) > 0 {
		fmt.Fprintln(w, "\nFix:")
		for _, f := range s.Fix {
			fmt.Fprintf(w, "  %s\n", f)
		}
	}
}

func indentText(s, p string) string { return p + strings.ReplaceAll(s, "\n", "\n"+p) }

func cmdEvents(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("events", "events [--state DIR] [filters] [--json] [--follow]", stderr)
	state := fs.String("state", defaultState(), "state directory")
	tier := fs.String("tier", "", "only this tier: kdc, web, sql, client")
	host := fs.String("host", "", "only this host: dc, web, sql, ws01")
	id := fs.Int("id", 0, "only this event ID (4768, 4769, 4771, 4624, 4625, 18453, 18456, ...)")
	who := fs.String("client", "", "only events about this principal or login (substring)")
	failures := fs.Bool("failures", false, "only failures")
	since := fs.Duration("since", 0, "only the last DURATION (e.g. 5m)")
	asJSON := fs.Bool("json", false, "JSON lines")
	follow := fs.Bool("follow", false, "keep printing new events")
	if err := fs.Parse(args); err != nil {
		return err
	}
	f := events.Filter{Tier: *tier, Host: *host, ID: *id, Client: *who, Failure: *failures}
	if *since > 0 {
		f.Since = time.Now().Add(-*since)
	}
	if _, err := directory.OpenExisting(*state); err != nil {
		return err
	}
	dir := filepath.Join(*state, lab.EventsDir)
	return printEvents(ctx, stdout, f, *asJSON, *follow, 500*time.Millisecond, func(context.Context) ([]events.Event, error) {
		return events.ReadDir(dir)
	})
}

// printEvents prints the timeline (read by read) through f, once or, with
// follow, again every interval with only what is new.
func printEvents(ctx context.Context, w io.Writer, f events.Filter, asJSON, follow bool, every time.Duration, read func(context.Context) ([]events.Event, error)) error {
	printed := 0
	for {
		rctx, cancel := context.WithTimeout(ctx, time.Minute)
		evs, err := read(rctx)
		cancel()
		if err != nil {
			return err
		}
		sel := f.Apply(evs)
		for _, e := range sel[min(printed, len(sel)):] {
			if asJSON {
				b, _ := json.Marshal(e)
				fmt.Fprintln(w, string(b))
			} else {
				fmt.Fprintln(w, e.String())
			}
		}
		printed = len(sel)
		if !follow {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(every):
		}
	}
}

func cmdExplain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("explain", "explain [--state DIR] [--since D] [--json]", stderr)
	state := fs.String("state", defaultState(), "state directory")
	since := fs.Duration("since", 0, "only consider the last DURATION of events")
	asJSON := fs.Bool("json", false, "JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	s, err := directory.OpenExisting(*state)
	if err != nil {
		return err
	}
	evs, err := events.ReadDir(filepath.Join(*state, lab.EventsDir))
	if err != nil {
		return err
	}
	if *since > 0 {
		evs = events.Filter{Since: time.Now().Add(-*since)}.Apply(evs)
	}
	in := explain.Input{Events: evs, View: s.View(), StateDir: *state}
	d := explain.Explain(in)
	if *state != defaultState() {
		d.Fix = withState(d.Fix, *state)
	}
	return printDiagnosis(stdout, d, *asJSON, nil)
}

// withState adds --state DIR to each doublehop command of a fix, so that it
// runs as pasted against a lab that is not in the default place.
func withState(fix []string, state string) []string {
	out := make([]string, len(fix))
	for i, f := range fix {
		parts := strings.Split(f, "; ")
		for j, p := range parts {
			if rest, ok := strings.CutPrefix(p, "doublehop "); ok {
				verb, args, _ := strings.Cut(rest, " ")
				parts[j] = "doublehop " + verb + " --state " + shellQuote(state)
				if args != "" {
					parts[j] += " " + args
				}
			}
		}
		out[i] = strings.Join(parts, "; ")
	}
	return out
}

func shellQuote(s string) string {
	if s != "" && !strings.ContainsAny(s, ` \'"$*?;&|<>()`) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// printDiagnosis prints explain's answer; hint, when set, adds a line after
// each fix (the container lab shows how to run it there).
func printDiagnosis(w io.Writer, d explain.Diagnosis, asJSON bool, hint func(fix string) string) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(d)
	}
	fmt.Fprintf(w, "[%s] %s\n", d.ID, d.Summary)
	if d.Hop != "" {
		fmt.Fprintf(w, "  hop: %s\n", d.Hop)
	}
	if d.Why != "" {
		fmt.Fprintf(w, "  why: %s\n", d.Why)
	}
	for _, f := range d.Fix {
		fmt.Fprintf(w, "  fix: %s\n", f)
		if hint != nil {
			if h := hint(f); h != "" {
				fmt.Fprintf(w, "       %s\n", h)
			}
		}
	}
	if d.Note != "" {
		fmt.Fprintf(w, "  note: %s\n", d.Note)
	}
	if len(d.More) > 0 {
		fmt.Fprintf(w, "  then: this flow also shows %s: run it again after the fix, and explain names the next\n", strings.Join(d.More, ", "))
	}
	if len(d.Evidence) > 0 {
		fmt.Fprintln(w, "  evidence:")
		for _, e := range d.Evidence {
			fmt.Fprintf(w, "    %s\n", e.String())
		}
	}
	return nil
}
