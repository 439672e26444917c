//go:build !nolab

// The `lab` command: the container lab on a Docker engine (package dockerlab;
// the image binary is built with -tags nolab, without it). This file parses
// the lab flags and dispatches; lab_up.go and lab_use.go hold the verbs.

package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/doublehop/doublehop/admin"
	"github.com/doublehop/doublehop/dockerlab"
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
	fs    *flag.FlagSet
	name  *string
	dir   *string
	quiet *bool
	tmo   *time.Duration
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
		return dockerlab.RoleKDC, nil
	case "web", "web.lab.local":
		return dockerlab.RoleWeb, nil
	case "sql", "sql.lab.local":
		return dockerlab.RoleSQL, nil
	case "ws01", "client", "ws01.lab.local":
		return dockerlab.RoleClient, nil
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
	if err := dockerlab.Available(ctx); err != nil {
		return fmt.Errorf("Docker engine not reachable (%v); without Docker use the embedded lab: doublehop up --state .lab", err)
	}
	return nil
}

func attach(ctx context.Context, f *labFlags) (*dockerlab.Lab, error) {
	if err := dockerOrSay(ctx); err != nil {
		return nil, err
	}
	return dockerlab.Attach(ctx, *f.name, dockerlab.WithStateDir(f.stateDir()))
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

func self() string {
	if _, err := os.Stat("bin/doublehop"); err == nil {
		return "bin/doublehop"
	}
	return "doublehop"
}

func mustGetwd() string {
	d, _ := os.Getwd()
	return d
}

// relay copies a container command's output and passes its exit status on.
func relay(r dockerlab.ExecResult, stdout, stderr io.Writer) error {
	io.WriteString(stdout, r.Stdout)
	io.WriteString(stderr, r.Stderr)
	if r.ExitCode != 0 {
		return exitError(r.ExitCode)
	}
	return nil
}
