// Command doublehop is the lab: its KDC, web tier, SQL tier, Bob's client, the
// admin tools (setspn, delegation, keytab export) and the teaching layer
// (scenarios, events, explain), in one binary.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"sort"
	"strings"
	"syscall"
)

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

var commands []command

func register(name, summary string, run func(ctx context.Context, args []string, stdout, stderr io.Writer) error) {
	commands = append(commands, command{name, summary, run})
}

// errUsage marks a usage error (exit status 2).
var errUsage = errors.New("usage")

// exitError carries an exit status without printing anything more.
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		return 0
	}
	sort.Slice(commands, func(i, j int) bool { return commands[i].name < commands[j].name })
	for _, c := range commands {
		if c.name == args[0] {
			err := c.run(ctx, args[1:], stdout, stderr)
			var ee exitError
			switch {
			case err == nil:
				return 0
			case errors.Is(err, flag.ErrHelp):
				return 0
			case errors.As(err, &ee):
				return int(ee)
			case errors.Is(err, errUsage):
				fmt.Fprintln(stderr, "doublehop "+c.name+":", err)
				return 2
			default:
				fmt.Fprintln(stderr, "doublehop "+c.name+":", err)
				return 1
			}
		}
	}
	fmt.Fprintf(stderr, "doublehop: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprint(w, `doublehop — a Kerberos delegation lab (the Windows "double hop", in pure Go)

Usage: doublehop <command> [flags]

Quick start:
  doublehop up --state .lab          the whole lab in one process on loopback
  . .lab/lab.env                     then MIT kinit/klist/kvno, curl --negotiate, tsql work against it
  doublehop client kinit bob && doublehop client get -v "$DOUBLEHOP_WEB_URL"   (after sourcing lab.env)

Commands:
`)
	sort.Slice(commands, func(i, j int) bool { return commands[i].name < commands[j].name })
	for _, c := range commands {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
Every command takes --state DIR (default $DOUBLEHOP_STATE, else ./.lab).
Run "doublehop <command> -h" for its flags.
`)
}

// stateDir resolves the state directory flag default.
func defaultState() string {
	if s := os.Getenv("DOUBLEHOP_STATE"); s != "" {
		return s
	}
	return ".lab"
}

// newFlags makes a FlagSet that prints its usage to w.
func newFlags(name, synopsis string, w io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(w)
	fs.Usage = func() {
		fmt.Fprintf(w, "Usage: doublehop %s\n\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// logger returns a text logger at the given level name.
func logger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	switch strings.ToLower(level) {
	case "debug":
		l = slog.LevelDebug
	case "warn":
		l = slog.LevelWarn
	case "error":
		l = slog.LevelError
	default:
		l = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}

// parseInterleaved parses flags that may come before or after positional
// arguments (doublehop client get URL -v) and returns the positionals.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func init() {
	register("idle", "wait until interrupted (keeps a scratch container such as ws01 running for docker exec)", func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		fmt.Fprintln(stderr, "idle: ready")
		<-ctx.Done()
		return nil
	})
}

// tuneGC trades a little memory for fewer collections in the long-running
// servers (and the load generator): the lab's heaps are a few MB, and GC
// pauses are what shows up in tail latency. GOGC still wins when set.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
}
