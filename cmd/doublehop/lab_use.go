//go:build !nolab

package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/doublehop/doublehop/admin"
	"github.com/doublehop/doublehop/dockerlab"
	"github.com/doublehop/doublehop/events"
	"github.com/doublehop/doublehop/explain"
	"github.com/doublehop/doublehop/scenarios"
)

func labClient(ctx context.Context, f *labFlags, args []string, stdout, stderr io.Writer) error {
	user := f.fs.String("user", "bob", "the workstation user (own credential cache in ws01)")
	// Everything after the lab's own flags goes to doublehop client.
	var pass []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--name" || a == "-name" || a == "--user" || a == "-user" || a == "--dir" || a == "-dir" || a == "--timeout" || a == "-timeout":
			if i+1 < len(args) {
				f.fs.Set(strings.TrimLeft(a, "-"), args[i+1])
				i++
			}
		case strings.HasPrefix(a, "--name=") || strings.HasPrefix(a, "--user=") || strings.HasPrefix(a, "--dir="):
			k, v, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
			f.fs.Set(k, v)
		case a == "--":
		default:
			pass = append(pass, a)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, *f.tmo)
	defer cancel()
	l, err := attach(ctx, f)
	if err != nil {
		return err
	}
	if len(pass) == 0 {
		fr, err := l.Flow(ctx, *user)
		if fr != nil && fr.Page != nil {
			fmt.Fprintf(stdout, "%s from ws01: %s\n", *user, fr.Summary())
		}
		if err != nil {
			return fmt.Errorf("%v\n  %s lab explain --name %s", err, self(), *f.name)
		}
		return nil
	}
	r, err := l.RunClient(ctx, *user, pass...)
	if err != nil {
		return err
	}
	return relay(r, stdout, stderr)
}

func labAdmin(ctx context.Context, f *labFlags, args []string, stdout, stderr io.Writer) error {
	rest := splitLabFlags(f, args)
	if len(rest) == 0 {
		return fmt.Errorf("admin wants a command (setspn, account, delegation, policy): %w", errUsage)
	}
	ctx, cancel := context.WithTimeout(ctx, *f.tmo)
	defer cancel()
	l, err := attach(ctx, f)
	if err != nil {
		return err
	}
	out, err := l.Admin(ctx, rest)
	io.WriteString(stdout, out)
	if err != nil {
		if strings.HasPrefix(err.Error(), "exit status") {
			return exitError(1)
		}
		return err
	}
	return nil
}

// attachTier parses the arguments of a verb that acts on one tier (named by
// argument tierAt) and attaches to the lab.
func attachTier(ctx context.Context, f *labFlags, args []string, tierAt, minArgs, maxArgs int, usage string) (*dockerlab.Lab, string, []string, error) {
	rest := splitLabFlags(f, args)
	if len(rest) < minArgs || (maxArgs > 0 && len(rest) > maxArgs) {
		return nil, "", nil, fmt.Errorf("%s: %w", usage, errUsage)
	}
	role, err := roleOf(rest[tierAt])
	if err != nil {
		return nil, "", nil, err
	}
	l, err := attach(ctx, f)
	return l, role, rest, err
}

func labKeytab(ctx context.Context, f *labFlags, args []string, stdout io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, *f.tmo)
	defer cancel()
	l, role, rest, err := attachTier(ctx, f, args, 1, 2, 2, "keytab refresh|remove|restore web|sql")
	if err != nil {
		return err
	}
	if err := l.Keytab(ctx, rest[0], role); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "keytab %s %s: done (%s in %s)\n", rest[0], rest[1], dockerlab.KeytabPath(role), l.Tiers[role].Container)
	return nil
}

func labExec(ctx context.Context, f *labFlags, verb string, args []string, stdout, stderr io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, *f.tmo)
	defer cancel()
	min := 1
	if verb == "exec" {
		min = 2
	}
	l, role, rest, err := attachTier(ctx, f, args, 0, min, 0, verb+" dc|web|sql|ws01 ...")
	if err != nil {
		return err
	}
	if verb == "logs" {
		s, err := l.Logs(ctx, role)
		io.WriteString(stdout, s)
		return err
	}
	r, err := l.Exec(ctx, role, nil, rest[1:]...)
	if err != nil {
		return err
	}
	return relay(r, stdout, stderr)
}

func labScenario(ctx context.Context, f *labFlags, args []string, stdout, stderr io.Writer) error {
	step := f.fs.Bool("step", false, "workshop mode: pause before each step (Enter continues, q stops)")
	all := f.fs.Bool("all", false, "run every scenario")
	pos, err := parseInterleaved(f.fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		pos = []string{"list"}
	}
	switch pos[0] {
	case "list", "show":
		return cmdScenario(ctx, pos, stdout, stderr)
	case "reset", "run":
	case "all":
		pos = []string{"run", "all"}
	default:
		if s, err := scenarios.Find(pos[0]); err == nil { // `lab scenario ID` = run ID
			pos = []string{"run", s.ID}
		} else {
			return fmt.Errorf("scenario %q: want list, show ID, run ID, run --all or reset: %w", pos[0], errUsage)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, *f.tmo)
	defer cancel()
	l, err := attach(ctx, f)
	if err != nil {
		return err
	}
	if pos[0] == "reset" {
		if err := l.Reset(ctx, nil); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "lab %q is back to its starting state (directory, keytabs and settings copied into dc, web, sql)\n", *f.name)
		return nil
	}
	list, err := pickScenarios(*all, pos)
	if err != nil {
		return err
	}
	where := ", containers of lab " + *f.name
	if err := runEach(ctx, list, *step, *f.quiet, stdout, where, func() (scenarios.Target, func(), error) {
		return l, func() {}, nil
	}); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "The lab is left in the scenario's final state; %s lab scenario reset --name %s puts it back.\n", self(), *f.name)
	return nil
}

func labEvents(ctx context.Context, f *labFlags, args []string, stdout io.Writer) error {
	tier := f.fs.String("tier", "", "only this tier: kdc, web, sql, client")
	host := f.fs.String("host", "", "only this host: dc, web, sql, ws01")
	id := f.fs.Int("id", 0, "only this event ID (4768, 4769, 4771, 4624, 4625, 18453, 18456, ...)")
	who := f.fs.String("client", "", "only events about this principal or login (substring)")
	failures := f.fs.Bool("failures", false, "only failures")
	since := f.fs.Duration("since", 0, "only the last DURATION (e.g. 5m)")
	asJSON := f.fs.Bool("json", false, "JSON lines (doublehop explain reads them too)")
	follow := f.fs.Bool("follow", false, "keep printing new events")
	if err := f.fs.Parse(args); err != nil {
		return err
	}
	actx, cancel := context.WithTimeout(ctx, time.Minute)
	l, err := attach(actx, f)
	cancel()
	if err != nil {
		return err
	}
	filter := events.Filter{Tier: *tier, Host: *host, ID: *id, Client: *who, Failure: *failures}
	if *since > 0 {
		filter.Since = time.Now().Add(-*since)
	}
	return printEvents(ctx, stdout, filter, *asJSON, *follow, time.Second, l.Events)
}

func labExplain(ctx context.Context, f *labFlags, args []string, stdout io.Writer) error {
	since := f.fs.Duration("since", 0, "only consider the last DURATION of events")
	asJSON := f.fs.Bool("json", false, "JSON")
	if err := f.fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *f.tmo)
	defer cancel()
	l, err := attach(ctx, f)
	if err != nil {
		return err
	}
	evs, err := l.Events(ctx)
	if err != nil {
		return err
	}
	if *since > 0 {
		evs = events.Filter{Since: time.Now().Add(-*since)}.Apply(evs)
	}
	in := explain.Input{Events: evs}
	if v, err := l.View(ctx); err == nil {
		in.View = v
	}
	return printDiagnosis(stdout, explain.Explain(in), *asJSON, func(fx string) string {
		verb, _, _ := strings.Cut(strings.TrimPrefix(fx, "doublehop "), " ")
		for _, v := range admin.Verbs {
			if v.Name == verb && strings.HasPrefix(fx, "doublehop ") {
				return fmt.Sprintf("in this lab: %s lab %s --name %s", self(), strings.TrimPrefix(fx, "doublehop "), *f.name)
			}
		}
		return ""
	})
}
