package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/doublehop/doublehop/bench"
)

func init() {
	register("bench", "measure: our KDC vs MIT krb5kdc side by side, the full flow, start-up", cmdBench)
	register("soak", "load and faults: many users for a while, then each tier killed and restarted under load", cmdSoak)
}

func cmdSoak(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("soak", "soak [--users N] [--duration D] [--every D]", stderr)
	users := fs.Int("users", 64, "concurrent users")
	dur := fs.Duration("duration", 60*time.Second, "steady-load phase")
	every := fs.Duration("every", 30*time.Second, "print a row (flows, errors, rate, goroutines, RSS, heap) this often")
	if err := fs.Parse(args); err != nil {
		return err
	}
	bin, err := os.Executable()
	if err != nil {
		return err
	}
	return bench.Soak(ctx, bench.SoakOptions{Binary: bin, Users: *users, Duration: *dur, Every: *every, Out: stdout})
}

func cmdBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench", "bench [kdc|flow|startup|all] [flags]", stderr)
	ops := fs.Int("ops", 20000, "requests per KDC measurement")
	conc := fs.Int("c", 8, "concurrent clients")
	flows := fs.Int("flows", 3000, "full flows to run")
	max := fs.Duration("max", 60*time.Second, "time bound per measurement")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	tuneGC()
	what := "all"
	if len(pos) > 0 {
		what = pos[0]
	}
	switch what {
	case "all", "kdc", "flow", "startup":
	default:
		return fmt.Errorf("bench %q: want kdc, flow, startup or all: %w", what, errUsage)
	}
	bin, err := os.Executable()
	if err != nil {
		return err
	}
	if what == "all" || what == "startup" {
		r, err := bench.Startup(ctx, 20)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "startup  embedded lab start → first AS reply: p50 %s, max %s over %d starts\n", r.P50.Round(time.Microsecond), r.Max.Round(time.Microsecond), r.N)
	}
	if what == "all" || what == "kdc" {
		if _, err := bench.CompareKDC(ctx, bench.CompareOptions{Binary: bin, Ops: *ops, Conc: *conc, Max: *max, Out: stdout}); err != nil {
			return err
		}
	}
	if what == "all" || what == "flow" {
		r, err := bench.Flow(ctx, *conc, *flows, *max, false)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "flow     Bob TGS + Negotiate + S4U2Proxy + TDS login + 4 queries: %.0f flows/s, p50 %s, p99 %s, %d errors (c=%d)\n",
			r.Rate(), ms(r.P50), ms(r.P99), r.Errors, *conc)
		if r.FirstErr != nil {
			fmt.Fprintf(stdout, "         first error: %v\n", r.FirstErr)
		}
		n, err := bench.Flow(ctx, *conc, *flows, *max, true)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "ntlm     by IP: NTLM 3 legs + Netlogon pass-through + S4U2Self + anonymous TDS login: %.0f page logons/s, p50 %s, p99 %s, %d errors (c=%d); %.2fx the Kerberos flow rate\n",
			n.Rate(), ms(n.P50), ms(n.P99), n.Errors, *conc, n.Rate()/max1(r.Rate()))
		if n.FirstErr != nil {
			fmt.Fprintf(stdout, "         first error: %v\n", n.FirstErr)
		}
	}
	return nil
}

func max1(f float64) float64 {
	if f <= 0 {
		return 1
	}
	return f
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d.Microseconds())/1000) }
