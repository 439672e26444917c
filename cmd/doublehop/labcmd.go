//go:build !nolab

// The `lab` command: the container lab on a Docker engine, driven by the
// labtest harness (the image binary is built with -tags nolab, without it).

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/doublehop/doublehop/admin"
	"github.com/doublehop/doublehop/events"
	"github.com/doublehop/doublehop/explain"
	"github.com/doublehop/doublehop/labtest"
	"github.com/doublehop/doublehop/scenarios"
	tclog "github.com/testcontainers/testcontainers-go/log"
)

func init() {
	register("lab", "the container lab on Docker: up, down, status, client, scenario, events, explain, measure", cmdLab)
}

const labUsage = `Usage: doublehop lab <verb> [--name LAB] [flags]

  up [--fresh] [--lab FILE] [--scenario ID] [--ports fixed|random] [--no-flow]
        build the image if missing, start dc, web, sql and ws01 on network doublehop-LAB
        with their real host names, provision the realm (each tier only its own keytab),
        wait until every tier is ready, run Bob's flow from ws01 and say how to go on.
        A running lab of that name is reused when it runs the current image (--fresh
        replaces it). Without a Docker engine it runs the embedded lab instead.
  down [--all]                 remove the lab's containers, network and state (--all: every lab)
  status                       the labs on this engine: tiers, ports, image
  client [--user U] [ARGS]     doublehop client ARGS inside ws01 (no ARGS: Bob's flow);
                               kinit gets the lab password on stdin
  admin VERB ARGS              an admin command in the DC (setspn, account, delegation, policy);
                               setspn, account, delegation and policy also work without "admin"
  keytab refresh|remove|restore web|sql   copy a tier's keytab (re-exported, empty, current)
  scenario list|show ID|run ID [--step]|run --all|reset   the catalog against the container lab
  events [--tier T] [--host H] [--id N] [--client X] [--failures] [--since D] [--json] [--follow]
  explain [--since D] [--json] what went wrong, at which hop, why, and the fixing command
  exec dc|web|sql|ws01 ARGS    /doublehop ARGS in a tier's container
  logs dc|web|sql|ws01         a tier's log (stderr)
  image                        build/import the image; stage build/image for docker build
  measure [--labs N]           time to first flow, image size, idle memory per lab, labs that fit

Flags:
`

type labFlags struct {
	fs     *flag.FlagSet
	name   *string
	dir    *string
	quiet  *bool
	tmo    *time.Duration
	stdout io.Writer
}

func newLabFlags(verb string, stderr io.Writer) *labFlags {
	fs := newFlags("lab "+verb, "lab "+verb, stderr)
	fs.Usage = func() { fmt.Fprint(stderr, labUsage); fs.PrintDefaults() }
	def := os.Getenv("DOUBLEHOP_LAB")
	if def == "" {
		def = "default"
	}
	return &labFlags{fs: fs,
		name:  fs.String("name", def, "lab name (containers doublehop-NAME-*, network doublehop-NAME); $DOUBLEHOP_LAB"),
		dir:   fs.String("dir", "", "host-side files of the lab (krb5.conf, lab.env, hosts; default build/labs/NAME)"),
		quiet: fs.Bool("q", false, "less output"),
		tmo:   fs.Duration("timeout", 5*time.Minute, "give up after this long"),
	}
}

func (f *labFlags) stateDir() string {
	if *f.dir != "" {
		return *f.dir
	}
	return filepath.Join("build", "labs", *f.name)
}

// roleOf maps a tier as people name it (dc, web, sql, ws01, kdc, client) to its role.
func roleOf(s string) (string, error) {
	switch strings.ToLower(s) {
	case "dc", "kdc", "dc.lab.local":
		return labtest.RoleKDC, nil
	case "web", "web.lab.local":
		return labtest.RoleWeb, nil
	case "sql", "sql.lab.local":
		return labtest.RoleSQL, nil
	case "ws01", "client", "ws01.lab.local":
		return labtest.RoleClient, nil
	}
	return "", fmt.Errorf("no tier %q (dc, web, sql, ws01): %w", s, errUsage)
}

func cmdLab(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, labUsage)
		newLabFlags("", stdout).fs.PrintDefaults()
		return nil
	}
	if _, ok := os.LookupEnv("TESTCONTAINERS_RYUK_DISABLED"); !ok {
		os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true") // exactly lowercase: labs are removed by label
	}
	tclog.SetDefault(tclog.NewNoopLogger())
	verb, rest := args[0], args[1:]
	for _, v := range admin.Verbs {
		if v.Name == verb {
			verb, rest = "admin", args
		}
	}
	f := newLabFlags(verb, stderr)
	switch verb {
	case "up":
		return labUp(ctx, f, rest, stdout, stderr)
	case "down":
		return labDown(ctx, f, rest, stdout)
	case "status", "ls", "ps":
		return labStatus(ctx, f, rest, stdout)
	case "client":
		return labClient(ctx, f, rest, stdout, stderr)
	case "admin":
		return labAdmin(ctx, f, rest, stdout, stderr)
	case "keytab":
		return labKeytab(ctx, f, rest, stdout)
	case "scenario":
		return labScenario(ctx, f, rest, stdout, stderr)
	case "events":
		return labEvents(ctx, f, rest, stdout)
	case "explain":
		return labExplain(ctx, f, rest, stdout)
	case "exec", "logs":
		return labExec(ctx, f, verb, rest, stdout, stderr)
	case "image", "images":
		return labImage(ctx, f, rest, stdout)
	case "measure":
		return labMeasure(ctx, f, rest, stdout)
	}
	fmt.Fprint(stderr, labUsage)
	return fmt.Errorf("unknown verb %q: %w", verb, errUsage)
}

// dockerOrSay checks the engine; the error says what to do without one.
func dockerOrSay(ctx context.Context) error {
	if err := labtest.Available(ctx); err != nil {
		return fmt.Errorf("Docker engine not reachable (%v); without Docker use the embedded lab: doublehop up --state .lab", err)
	}
	return nil
}

func attach(ctx context.Context, f *labFlags) (*labtest.Lab, error) {
	if err := dockerOrSay(ctx); err != nil {
		return nil, err
	}
	return labtest.Attach(ctx, *f.name, labtest.WithStateDir(f.stateDir()))
}

func labUp(ctx context.Context, f *labFlags, args []string, stdout, stderr io.Writer) error {
	fresh := f.fs.Bool("fresh", false, "replace a running lab of that name even when it runs the current image")
	labFile := f.fs.String("lab", "", "lab file to start from instead of the default lab")
	scenario := f.fs.String("scenario", "", "start with this catalog scenario's setup applied (its broken state)")
	ports := f.fs.String("ports", "fixed", "fixed: a stable loopback port block for the lab name (default lab: 10088, 10080, 11433); random")
	noFlow := f.fs.Bool("no-flow", false, "do not run Bob's flow at the end")
	if err := f.fs.Parse(args); err != nil {
		return err
	}
	if err := labtest.ValidName(*f.name); err != nil {
		return fmt.Errorf("%v: %w", err, errUsage)
	}
	parent := ctx // interrupted by Ctrl-C only (the embedded lab runs until then)
	ctx, cancel := context.WithTimeout(ctx, *f.tmo)
	defer cancel()
	start := time.Now()
	if err := labtest.Available(ctx); err != nil {
		if parent.Err() != nil {
			return nil
		}
		fmt.Fprintf(stdout, "Docker engine not reachable (%v): running the embedded lab instead\n", err)
		upArgs := []string{"--state", ".lab"}
		if *labFile != "" {
			upArgs = append(upArgs, "--lab", *labFile, "--reset")
		}
		return cmdUp(parent, upArgs, stdout, stderr)
	}
	out := stdout
	if *f.quiet {
		out = io.Discard
	}
	if e, err := labtest.Engine(ctx); err == nil {
		fmt.Fprintf(out, "lab %q on Docker %s (API %s, %s/%s, %s)\n", *f.name, e.Version, e.APIVersion, e.OS, e.Arch, e.StorageDriver)
	}
	img, err := labtest.EnsureImage(ctx, labtest.ImageOptions{})
	if err != nil {
		return fmt.Errorf("image: %w", err)
	}
	// Reuse a healthy lab that runs this image (lab-up twice is safe and quick).
	if !*fresh && *labFile == "" && *scenario == "" {
		if l, ok := reusable(ctx, f, img.Ref); ok {
			fmt.Fprintf(out, "[1/2] lab %q already runs image %s: reusing it (--fresh replaces it)\n", *f.name, img.Ref)
			fr, err := l.Flow(ctx, "bob")
			if err != nil {
				fmt.Fprintf(out, "[2/2] Bob's flow from ws01: %v\n", err)
				printUp(stdout, f, l, fr, time.Since(start))
				fmt.Fprintf(stdout, "The lab is not in its working state (a scenario left it broken?): %s lab scenario reset --name %s, or make lab-up LAB=%s FRESH=1\n",
					self(), *f.name, *f.name)
				return exitError(1)
			}
			fmt.Fprintf(out, "[2/2] Bob's flow from ws01: %s\n", fr.Summary())
			printUp(stdout, f, l, fr, time.Since(start))
			return nil
		}
	}
	os.RemoveAll(f.stateDir())
	opts := []labtest.Option{labtest.WithName(*f.name), labtest.WithOwner("cli"), labtest.WithStateDir(f.stateDir()),
		labtest.WithEnsuredImage(img), labtest.WithProgress(out)}
	if *ports == "fixed" {
		opts = append(opts, labtest.WithPorts(labtest.DefaultPorts(*f.name)))
	}
	if !*noFlow {
		opts = append(opts, labtest.WithFlow("bob"))
	}
	if *labFile != "" {
		opts = append(opts, labtest.WithLabFile(*labFile))
	}
	if *scenario != "" {
		opts = append(opts, labtest.WithScenario(*scenario))
	}
	l, err := labtest.Run(ctx, opts...)
	if err != nil {
		if l == nil || len(l.Tiers) == 0 {
			return err
		}
		if l.FirstFlow != nil && (l.FirstFlow.Page != nil || l.FirstFlow.Get.ExitCode != 0) {
			// The lab runs; the flow shows a broken state (e.g. --scenario).
			printUp(stdout, f, l, l.FirstFlow, time.Since(start))
			if *scenario != "" {
				fmt.Fprintf(stdout, "As the scenario %s intends, Bob's flow fails: %s lab explain --name %s says why.\n", *scenario, self(), *f.name)
				return nil
			}
			fmt.Fprintf(stdout, "Bob's flow failed: %s\n  %s lab explain --name %s\n", l.FirstFlow.Summary(), self(), *f.name)
			return exitError(1)
		}
		if parent.Err() != nil { // Ctrl-C: leave nothing half-made behind
			dctx, c := context.WithTimeout(context.WithoutCancel(parent), time.Minute)
			defer c()
			labtest.Down(dctx, *f.name)
			os.RemoveAll(f.stateDir())
			fmt.Fprintf(stderr, "interrupted: lab %q removed\n", *f.name)
			return exitError(130)
		}
		fmt.Fprintf(stderr, "lab %q did not come up:\n%v\n", *f.name, err)
		fmt.Fprintf(stderr, "The containers are left for inspection (%s lab logs --name %s web); %s lab down --name %s removes them.\n",
			self(), *f.name, self(), *f.name)
		return exitError(1)
	}
	printUp(stdout, f, l, l.FirstFlow, time.Since(start))
	return nil
}

// reusable returns the running lab of that name when every tier runs image ref.
func reusable(ctx context.Context, f *labFlags, ref string) (*labtest.Lab, bool) {
	list, err := labtest.List(ctx)
	if err != nil {
		return nil, false
	}
	for _, s := range list {
		if s.Name == *f.name && s.Image == ref && s.Running() && len(s.Tiers) == len(labtest.Roles) && s.Owner == "cli" {
			l, err := labtest.Attach(ctx, *f.name, labtest.WithStateDir(f.stateDir()))
			return l, err == nil
		}
	}
	return nil, false
}

func self() string {
	if _, err := os.Stat("bin/doublehop"); err == nil {
		return "bin/doublehop"
	}
	return "doublehop"
}

func printUp(w io.Writer, f *labFlags, l *labtest.Lab, fr *labtest.FlowResult, took time.Duration) {
	name := *f.name
	mk := ""
	if name != "default" {
		mk = " LAB=" + name
	}
	fmt.Fprintf(w, "\ndoublehop lab %q (realm %s) is up — %s, network %s, image %s\n", name, l.Realm, took.Round(time.Millisecond), l.Network, l.Image)
	web := l.Tiers[labtest.RoleWeb]
	sql := l.Tiers[labtest.RoleSQL]
	dc := l.Tiers[labtest.RoleKDC]
	ws := l.Tiers[labtest.RoleClient]
	webHost := "web.lab.local"
	if web != nil {
		webHost = web.Host
	}
	if dc != nil {
		fmt.Fprintf(w, "  %-16s KDC        127.0.0.1:%d (TCP) → %s:88\n", dc.Host, l.Ports.KDC, dc.Host)
	}
	runsAs := func(role string) string {
		if h := l.LabFile().HostByRole(role); h != nil {
			return h.RunsAs
		}
		return "?"
	}
	if web != nil {
		fmt.Fprintf(w, "  %-16s web tier   http://127.0.0.1:%d/ → http://%s/ (runs as %s)\n", web.Host, l.Ports.Web, web.Host, runsAs(labtest.RoleWeb))
	}
	if sql != nil {
		fmt.Fprintf(w, "  %-16s SQL tier   127.0.0.1:%d → %s (runs as %s)\n", sql.Host, l.Ports.SQL, sql.Host, runsAs(labtest.RoleSQL))
	}
	if ws != nil {
		fmt.Fprintf(w, "  %-16s Bob's workstation (docker exec %s /doublehop client ...)\n", ws.Host, ws.Container)
	}
	if fr != nil {
		fmt.Fprintf(w, "\nBob's flow from ws01: kinit bob, then %s\n", fr.URL)
		if p := fr.Page; p != nil {
			fmt.Fprintf(w, "  This page is running as: %s (authenticated by %s)\n", p.RunningAs, p.AuthenticatedBy)
			fmt.Fprintf(w, "  Second hop to SQL Server: %s\n", p.Mechanism)
			if p.SQL.Error != nil {
				fmt.Fprintf(w, "  SQL Server says: Msg %d, Level 14, State %d: %s\n", p.SQL.Error.Number, p.SQL.Error.State, p.SQL.Error.Message)
			} else {
				fmt.Fprintf(w, "  SQL Server says: SUSER_SNAME() = %s, auth_scheme = %s, %d orders of Bob's\n", p.SQL.Login, p.SQL.AuthScheme, len(p.SQL.Orders))
			}
		} else {
			fmt.Fprintf(w, "  %s\n", fr.Summary())
		}
	}
	fmt.Fprintf(w, `
Go on:
  make lab-client%[1]s ARGS="get -v http://web.lab.local/"   Bob's client inside ws01 (klist, kvno, kinit alice ...)
  make lab-scenario%[1]s NAME=no-delegation                 break and fix the double hop (NAME=list for the catalog)
  %[2]s lab setspn --name %[3]s -L svc_iispool               admin commands run in the DC container
  %[2]s lab events --name %[3]s; %[2]s lab explain --name %[3]s   the timeline of every tier; why a flow failed
  make lab-down%[1]s                                          remove it (containers, network, state)
From this host (MIT tools, curl): . %[4]s; kinit bob   (password: $DOUBLEHOP_BOB_PASSWORD)
  curl --negotiate -u : --resolve %[5]s:%[6]d:127.0.0.1 http://%[5]s:%[6]d/
`, mk, self(), name, filepath.Join(f.stateDir(), "lab.env"), webHost, l.Ports.Web)
}

func labDown(ctx context.Context, f *labFlags, args []string, stdout io.Writer) error {
	all := f.fs.Bool("all", false, "every doublehop lab on this engine (also leftovers of tests)")
	if err := f.fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *f.tmo)
	defer cancel()
	if err := labtest.Available(ctx); err != nil {
		fmt.Fprintf(stdout, "Docker engine not reachable (%v): no container lab to remove (an embedded lab stops with Ctrl-C; its state is .lab)\n", err)
		return nil
	}
	names := []string{*f.name}
	if *all {
		list, err := labtest.List(ctx)
		if err != nil {
			return err
		}
		names = nil
		for _, s := range list {
			names = append(names, s.Name)
		}
	}
	var mu sync.Mutex
	err := downAll(ctx, names, func(n string, took time.Duration, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			fmt.Fprintf(stdout, "lab %q: %v\n", n, err)
			return
		}
		dir := f.stateDir()
		if *all || *f.dir == "" {
			dir = filepath.Join("build", "labs", n)
		}
		os.RemoveAll(dir)
		fmt.Fprintf(stdout, "lab %q removed (containers, network doublehop-%s, %s) in %s\n", n, n, dir, took.Round(time.Millisecond))
	})
	if err != nil {
		return err
	}
	if len(names) == 0 {
		fmt.Fprintln(stdout, "no doublehop lab on this engine")
	}
	return nil
}

// downAll removes labs, four at a time.
func downAll(ctx context.Context, names []string, done func(string, time.Duration, error)) error {
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for _, n := range names {
		wg.Add(1)
		go func(n string) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			t := time.Now()
			err := labtest.Down(ctx, n)
			if err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("lab %s: %w", n, err))
				mu.Unlock()
			}
			if done != nil {
				done(n, time.Since(t), err)
			}
		}(n)
	}
	wg.Wait()
	return errors.Join(errs...)
}

func labStatus(ctx context.Context, f *labFlags, args []string, stdout io.Writer) error {
	mem := f.fs.Bool("mem", true, "show each lab's memory (docker stats)")
	if err := f.fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *f.tmo)
	defer cancel()
	if err := dockerOrSay(ctx); err != nil {
		return err
	}
	list, err := labtest.List(ctx)
	if err != nil {
		return err
	}
	if len(list) == 0 {
		fmt.Fprintln(stdout, "no doublehop lab on this engine (make lab-up starts one)")
		return nil
	}
	fmt.Fprintf(stdout, "%-16s %-8s %-8s %-16s %-22s %-16s %-9s %s\n", "LAB", "OWNER", "TIERS", "KDC", "WEB", "SQL", "MEMORY", "IMAGE")
	for _, s := range list {
		up := 0
		for _, st := range s.Tiers {
			if st == "running" {
				up++
			}
		}
		m := "-"
		if *mem && s.Running() {
			if l, err := labtest.Attach(ctx, s.Name); err == nil {
				if st, err := l.Stats(ctx); err == nil {
					m = fmt.Sprintf("%.1f MB", float64(labtest.Memory(st))/1e6)
				}
				os.RemoveAll(l.StateDir)
			}
		}
		fmt.Fprintf(stdout, "%-16s %-8s %d/%-6d %-16s %-22s %-16s %-9s %s\n", s.Name, s.Owner, up, len(s.Tiers),
			fmt.Sprintf("127.0.0.1:%d", s.Ports.KDC), fmt.Sprintf("http://127.0.0.1:%d/", s.Ports.Web), fmt.Sprintf("127.0.0.1:%d", s.Ports.SQL), m, s.Image)
	}
	return nil
}

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

// splitLabFlags takes --name/--dir/--timeout out of args that otherwise go
// to another command (AD-style switches such as setspn -S).
func splitLabFlags(f *labFlags, args []string) []string {
	var rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--name" || a == "--dir" || a == "--timeout":
			if i+1 < len(args) {
				f.fs.Set(strings.TrimPrefix(a, "--"), args[i+1])
				i++
			}
		case strings.HasPrefix(a, "--name=") || strings.HasPrefix(a, "--dir=") || strings.HasPrefix(a, "--timeout="):
			k, v, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
			f.fs.Set(k, v)
		default:
			rest = append(rest, a)
		}
	}
	return rest
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

func labKeytab(ctx context.Context, f *labFlags, args []string, stdout io.Writer) error {
	rest := splitLabFlags(f, args)
	if len(rest) != 2 {
		return fmt.Errorf("keytab refresh|remove|restore web|sql: %w", errUsage)
	}
	role, err := roleOf(rest[1])
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *f.tmo)
	defer cancel()
	l, err := attach(ctx, f)
	if err != nil {
		return err
	}
	if err := l.Keytab(ctx, rest[0], role); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "keytab %s %s: done (%s in %s)\n", rest[0], rest[1], labtest.KeytabPath(role), l.Tiers[role].Container)
	return nil
}

func labExec(ctx context.Context, f *labFlags, verb string, args []string, stdout, stderr io.Writer) error {
	rest := splitLabFlags(f, args)
	if len(rest) == 0 || (verb == "exec" && len(rest) < 2) {
		return fmt.Errorf("%s dc|web|sql|ws01 ...: %w", verb, errUsage)
	}
	role, err := roleOf(rest[0])
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *f.tmo)
	defer cancel()
	l, err := attach(ctx, f)
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

func labImage(ctx context.Context, f *labFlags, args []string, stdout io.Writer) error {
	if err := f.fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *f.tmo)
	defer cancel()
	if err := dockerOrSay(ctx); err != nil {
		return err
	}
	img, err := labtest.EnsureImage(ctx, labtest.ImageOptions{})
	if err != nil {
		return err
	}
	how := "cached"
	if !img.Cached {
		how = "imported in " + img.ImportTime.Round(time.Millisecond).String()
	}
	fmt.Fprintf(stdout, "image %s (%s): %.1f MB, from %s (%s)\n", img.Ref, how, float64(img.Size)/1e6, img.Binary, img.Built)
	// A docker build context with the same content, for the docker CLI.
	if src, main, err := labtest.SourceDir(ctx); err == nil && main {
		df, err := os.ReadFile(filepath.Join(src, "docker", "Dockerfile"))
		if err == nil {
			dir := filepath.Join(src, "build", "image")
			if err := labtest.StageDockerContext(df, img.Binary, dir); err == nil {
				rel, _ := filepath.Rel(mustGetwd(), dir)
				fmt.Fprintf(stdout, "docker CLI: docker build -t %s %s   (same image, from docker/Dockerfile)\n", labtest.ImageRepo, rel)
			}
		}
	}
	return nil
}

func mustGetwd() string {
	d, _ := os.Getwd()
	return d
}

// labMeasure measures what the issue asks: time from no image to Bob's first
// successful flow, the image size, idle memory per lab, and how many labs fit.
func labMeasure(ctx context.Context, f *labFlags, args []string, stdout io.Writer) error {
	n := f.fs.Int("labs", 10, "how many labs to start for the per-lab figures")
	settle := f.fs.Duration("settle", 5*time.Second, "idle time before taking memory samples")
	keepImage := f.fs.Bool("keep-image", false, "do not remove the image first (measure a warm start)")
	if err := f.fs.Parse(args); err != nil {
		return err
	}
	if *n < 1 {
		*n = 1
	}
	ctx, cancel := context.WithTimeout(ctx, *f.tmo+time.Duration(*n)*30*time.Second)
	defer cancel()
	if err := dockerOrSay(ctx); err != nil {
		return err
	}
	e, _ := labtest.Engine(ctx)
	fmt.Fprintf(stdout, "measuring on Docker %s (%s, cgroup v%s), %d CPUs, %.1f GiB\n", e.Version, e.StorageDriver, e.CgroupVersion, e.CPUs, float64(e.Memory)/(1<<30))
	name := func(i int) string { return fmt.Sprintf("measure-%02d", i) }
	var labs []*labtest.Lab
	defer func() {
		t := time.Now()
		dctx, c := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
		defer c()
		var names []string
		for i := 1; i <= *n; i++ {
			names = append(names, name(i))
		}
		downAll(dctx, names, nil)
		for _, l := range labs {
			os.RemoveAll(l.StateDir)
		}
		fmt.Fprintf(stdout, "removed the %d measurement labs in %s\n", *n, time.Since(t).Round(time.Millisecond))
	}()
	for i := 1; i <= *n; i++ {
		labtest.Down(ctx, name(i))
	}
	if !*keepImage {
		removed, inUse, err := labtest.RemoveImages(ctx)
		if err != nil {
			return err
		}
		switch {
		case len(inUse) > 0:
			fmt.Fprintf(stdout, "note: image(s) %s in use by running labs: the first start below finds the image cached\n", strings.Join(inUse, ", "))
		case len(removed) > 0:
			fmt.Fprintf(stdout, "removed image(s) %s: the first start builds (go build, warm cache) and imports it\n", strings.Join(removed, ", "))
		}
	}
	memBefore := labtest.HostMemAvailable()
	ovBefore := labtest.EngineOverhead()
	// 1. Time to first flow, from no image.
	start := time.Now()
	img, err := labtest.EnsureImage(ctx, labtest.ImageOptions{})
	if err != nil {
		return err
	}
	l, err := labtest.Run(ctx, labtest.WithName(name(1)), labtest.WithOwner("measure"), labtest.WithEnsuredImage(img), labtest.WithFlow("bob"))
	if l != nil {
		labs = append(labs, l)
	}
	if err != nil {
		return fmt.Errorf("first lab: %w", err)
	}
	ttff := time.Since(start)
	how := "cached"
	if !img.Cached {
		how = "imported"
	}
	fmt.Fprintf(stdout, "time to first flow: %s (image %s: go build %s, import %s; tiers ready %s; Bob's flow %s)\n", ttff.Round(time.Millisecond), how,
		img.BuildTime.Round(time.Millisecond), img.ImportTime.Round(time.Millisecond), l.Timing.Tiers.Round(time.Millisecond), l.Timing.Flow.Round(time.Millisecond))
	fmt.Fprintf(stdout, "image %s: %.1f MB\n", img.Ref, float64(img.Size)/1e6)
	// 2. More labs.
	var ups []time.Duration
	for i := 2; i <= *n; i++ {
		t := time.Now()
		l, err := labtest.Run(ctx, labtest.WithName(name(i)), labtest.WithOwner("measure"), labtest.WithEnsuredImage(img), labtest.WithFlow("bob"))
		if l != nil {
			labs = append(labs, l)
		}
		if err != nil {
			fmt.Fprintf(stdout, "lab %d of %d failed: %v\n", i, *n, err)
			break
		}
		ups = append(ups, time.Since(t))
	}
	if len(ups) > 0 {
		sort.Slice(ups, func(i, j int) bool { return ups[i] < ups[j] })
		fmt.Fprintf(stdout, "%d more labs started one after another: median %s, slowest %s each (up + Bob's flow)\n", len(ups),
			ups[len(ups)/2].Round(time.Millisecond), ups[len(ups)-1].Round(time.Millisecond))
	}
	fmt.Fprintf(stdout, "idling %s before sampling memory...\n", *settle)
	select {
	case <-time.After(*settle):
	case <-ctx.Done():
		return ctx.Err()
	}
	var total, rss uint64
	perTier := map[string]uint64{}
	for _, l := range labs {
		st, err := l.Stats(ctx)
		if err != nil {
			return err
		}
		for role, s := range st {
			total += s.Memory
			rss += s.RSS
			perTier[role] += s.Memory
		}
	}
	memAfter := labtest.HostMemAvailable()
	k := uint64(len(labs))
	perLab := total / k
	fmt.Fprintf(stdout, "idle memory per lab (docker stats, %d labs): %.1f MB (anon RSS %.1f MB); per tier:", k, float64(perLab)/1e6, float64(rss/k)/1e6)
	for _, role := range labtest.Roles {
		fmt.Fprintf(stdout, " %s %.1f MB", role, float64(perTier[role]/k)/1e6)
	}
	fmt.Fprintln(stdout)
	ov := labtest.EngineOverhead()
	var ovPerLab uint64
	if ov.Total() > ovBefore.Total() {
		ovPerLab = (ov.Total() - ovBefore.Total()) / k
	}
	fmt.Fprintf(stdout, "engine overhead per lab: %.1f MB (containerd shims %d→%d: %.1f MB, docker-proxy %d→%d: %.1f MB, dockerd+containerd growth %.1f MB; PSS)\n",
		float64(ovPerLab)/1e6, ovBefore.NShims, ov.NShims, float64(sub(ov.Shims, ovBefore.Shims)/k)/1e6, ovBefore.NProxies, ov.NProxies,
		float64(sub(ov.Proxies, ovBefore.Proxies)/k)/1e6, float64(sub(ov.Daemons, ovBefore.Daemons)/k)/1e6)
	if memBefore > memAfter {
		fmt.Fprintf(stdout, "host MemAvailable dropped by %.1f MB per lab (noisy: other processes, page cache)\n", float64((memBefore-memAfter)/k)/1e6)
	}
	// 3. How many fit: memory is the bound (keeping 10%% of the host free);
	// CPU is idle between flows, each tier takes one loopback port, and lab
	// networks fall back to 10.213.N.0/24 once the engine's pools run out.
	cost := perLab + ovPerLab
	if cost > 0 && memBefore > 0 {
		fit := uint64(float64(memBefore)*0.9) / cost
		fmt.Fprintf(stdout, "labs that fit on this host by memory: about %d (%.1f GiB available before, %.1f MB per lab with the engine's overhead); started %d\n",
			fit, float64(memBefore)/(1<<30), float64(cost)/1e6, len(labs))
	}
	return nil
}

func sub(a, b uint64) uint64 {
	if a > b {
		return a - b
	}
	return 0
}

// relay copies a container command's output and passes its exit status on.
func relay(r labtest.ExecResult, stdout, stderr io.Writer) error {
	io.WriteString(stdout, r.Stdout)
	io.WriteString(stderr, r.Stderr)
	if r.ExitCode != 0 {
		return exitError(r.ExitCode)
	}
	return nil
}
