package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/doublehop/doublehop/client"
	"github.com/doublehop/doublehop/lab"
)

// Flow runs the full double hop repeatedly against an embedded lab: Bob's
// TGS for HTTP/web.lab.local, Negotiate to the web tier, the web tier's
// S4U2Proxy, a TDS login as Bob and the page's queries. With ntlm, Bob opens
// the site by its address instead: NTLM's three legs on one connection, the
// DC's pass-through validation over Netlogon, the site's S4U2Self and refused
// S4U2Proxy, and SQL Server's anonymous NTLM login (the broken page).
func Flow(ctx context.Context, conc, n int, max time.Duration, ntlm bool) (Result, error) {
	dir, err := os.MkdirTemp("", "doublehop-flow-")
	if err != nil {
		return Result{}, err
	}
	defer os.RemoveAll(dir)
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	l, err := lab.Start(lctx, lab.Options{StateDir: filepath.Join(dir, "state")})
	if err != nil {
		return Result{}, err
	}
	defer l.Close()
	clients := make([]*client.Client, conc)
	for i := range clients {
		cfg := client.Config{CCache: filepath.Join(dir, fmt.Sprintf("cc%d", i)), Dialer: l.Dialer}
		if err := client.FromKrb5Conf(l.Krb5Conf(), &cfg); err != nil {
			return Result{}, err
		}
		clients[i] = client.New(cfg)
		if _, err := clients[i].Kinit(ctx, "bob", l.Password("bob")); err != nil {
			return Result{}, err
		}
	}
	return Run(ctx, conc, n, max, func(ctx context.Context, w, i int) error {
		c := clients[w]
		if ntlm {
			r, err := c.Get(ctx, "http://"+l.WebAddr+"/", client.GetOptions{Accept: "application/json"})
			if err != nil {
				return err
			}
			if r.Status != 200 || r.Mechanism != "NTLM" {
				return fmt.Errorf("HTTP %d by %s", r.Status, r.Mechanism)
			}
			return nil
		}
		cred, err := c.FreshServiceTicket(ctx, "HTTP/web.lab.local")
		if err != nil {
			return err
		}
		r, err := c.GetWith(ctx, l.WebURL, cred, client.GetOptions{Accept: "application/json"})
		if err != nil {
			return err
		}
		if r.Status != 200 {
			return fmt.Errorf("HTTP %d", r.Status)
		}
		return nil
	}), nil
}

// StartupResult is the embedded lab's start-up time.
type StartupResult struct {
	N        int
	P50, Max time.Duration
}

// Startup measures embedded lab start to the first AS reply.
func Startup(ctx context.Context, n int) (StartupResult, error) {
	var ds []time.Duration
	for i := 0; i < n; i++ {
		dir, err := os.MkdirTemp("", "doublehop-start-")
		if err != nil {
			return StartupResult{}, err
		}
		start := time.Now()
		lctx, cancel := context.WithCancel(ctx)
		l, err := lab.Start(lctx, lab.Options{StateDir: dir})
		if err != nil {
			cancel()
			return StartupResult{}, err
		}
		cfg := client.Config{CCache: filepath.Join(dir, "cc"), Dialer: l.Dialer}
		client.FromKrb5Conf(l.Krb5Conf(), &cfg)
		_, err = client.New(cfg).Kinit(ctx, "bob", l.Password("bob"))
		d := time.Since(start)
		cancel()
		l.Close()
		os.RemoveAll(dir)
		if err != nil {
			return StartupResult{}, err
		}
		ds = append(ds, d)
	}
	r := StartupResult{N: n}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	r.P50, r.Max = ds[len(ds)/2], ds[len(ds)-1]
	return r, nil
}
