//go:build !nolab

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/doublehop/doublehop/bench"
	"github.com/doublehop/doublehop/dockerlab"
)

func labUp(ctx context.Context, f *labFlags, args []string, stdout, stderr io.Writer) error {
	fresh := f.fs.Bool("fresh", false, "replace a running lab of that name even when it runs the current image")
	labFile := f.fs.String("lab", "", "lab file to start from instead of the default lab")
	scenario := f.fs.String("scenario", "", "start with this catalog scenario's setup applied (its broken state)")
	ports := f.fs.String("ports", "fixed", "fixed: a stable loopback port block for the lab name (default lab: 10088, 10080, 11433); random")
	noFlow := f.fs.Bool("no-flow", false, "do not run Bob's flow at the end")
	if err := f.fs.Parse(args); err != nil {
		return err
	}
	if err := dockerlab.ValidName(*f.name); err != nil {
		return fmt.Errorf("%v: %w", err, errUsage)
	}
	parent := ctx // interrupted by Ctrl-C only (the embedded lab runs until then)
	ctx, cancel := context.WithTimeout(ctx, *f.tmo)
	defer cancel()
	if err := dockerlab.Available(ctx); err != nil {
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
	res, err := dockerlab.Up(ctx, dockerlab.UpOptions{Name: *f.name, StateDir: f.stateDir(), Fresh: *fresh, LabFile: *labFile,
		Scenario: *scenario, FixedPorts: *ports == "fixed", Flow: !*noFlow, Progress: out})
	switch {
	case errors.Is(err, dockerlab.ErrInterrupted):
		fmt.Fprintf(stderr, "interrupted: lab %q removed\n", *f.name)
		return exitError(130)
	case res == nil || res.Lab == nil || len(res.Lab.Tiers) == 0:
		return err
	case err == nil:
		printUp(stdout, f, res.Lab, res.Flow, res.Took)
		return nil
	case res.Reused:
		printUp(stdout, f, res.Lab, res.Flow, res.Took)
		fmt.Fprintf(stdout, "The lab is not in its working state (a scenario left it broken?): %s lab scenario reset --name %s, or make lab-up LAB=%s FRESH=1\n",
			self(), *f.name, *f.name)
		return exitError(1)
	case res.Flow != nil && (res.Flow.Page != nil || res.Flow.Get.ExitCode != 0):
		// The lab runs; the flow shows a broken state (e.g. --scenario).
		printUp(stdout, f, res.Lab, res.Flow, res.Took)
		if *scenario != "" {
			fmt.Fprintf(stdout, "As the scenario %s intends, Bob's flow fails: %s lab explain --name %s says why.\n", *scenario, self(), *f.name)
			return nil
		}
		fmt.Fprintf(stdout, "Bob's flow failed: %s\n  %s lab explain --name %s\n", res.Flow.Summary(), self(), *f.name)
		return exitError(1)
	}
	fmt.Fprintf(stderr, "lab %q did not come up:\n%v\n", *f.name, err)
	fmt.Fprintf(stderr, "The containers are left for inspection (%s lab logs --name %s web); %s lab down --name %s removes them.\n",
		self(), *f.name, self(), *f.name)
	return exitError(1)
}

func printUp(w io.Writer, f *labFlags, l *dockerlab.Lab, fr *dockerlab.FlowResult, took time.Duration) {
	name := *f.name
	mk := ""
	if name != "default" {
		mk = " LAB=" + name
	}
	fmt.Fprintf(w, "\ndoublehop lab %q (realm %s) is up — %s, network %s, image %s\n", name, l.Realm, took.Round(time.Millisecond), l.Network, l.Image)
	web := l.Tiers[dockerlab.RoleWeb]
	sql := l.Tiers[dockerlab.RoleSQL]
	dc := l.Tiers[dockerlab.RoleKDC]
	ws := l.Tiers[dockerlab.RoleClient]
	webHost := "web.lab.local"
	if web != nil {
		webHost = web.Host
	}
	if dc != nil {
		fmt.Fprintf(w, "  %-16s KDC        127.0.0.1:%d (TCP) → %s:88\n", dc.Host, l.Ports.KDC, dc.Host)
		fmt.Fprintf(w, "  %-16s LDAP       ldap://127.0.0.1:%d → %s:389, ldaps://127.0.0.1:%d → :636 (the directory, DC=%s)\n", dc.Host, l.Ports.LDAP, dc.Host,
			l.Ports.LDAPS, strings.ReplaceAll(strings.ToLower(l.Realm), ".", ",DC="))
		if ip := l.DCAddr(); ip != "" {
			fmt.Fprintf(w, "  %-16s also on %s:88, :389 and :636, for impacket (-dc-ip %s)\n", dc.Host, ip, ip)
		}
	}
	runsAs := func(role string) string {
		if h := l.LabFile().HostByRole(role); h != nil {
			return h.RunsAs
		}
		return "?"
	}
	if web != nil {
		fmt.Fprintf(w, "  %-16s web tier   http://127.0.0.1:%d/ → http://%s/ (runs as %s)\n", web.Host, l.Ports.Web, web.Host, runsAs(dockerlab.RoleWeb))
	}
	if sql != nil {
		fmt.Fprintf(w, "  %-16s SQL tier   127.0.0.1:%d → %s (runs as %s)\n", sql.Host, l.Ports.SQL, sql.Host, runsAs(dockerlab.RoleSQL))
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
	if err := dockerlab.Available(ctx); err != nil {
		fmt.Fprintf(stdout, "Docker engine not reachable (%v): no container lab to remove (an embedded lab stops with Ctrl-C; its state is .lab)\n", err)
		return nil
	}
	names := []string{*f.name}
	if *all {
		list, err := dockerlab.List(ctx)
		if err != nil {
			return err
		}
		names = nil
		for _, s := range list {
			names = append(names, s.Name)
		}
	}
	var mu sync.Mutex
	err := dockerlab.DownAll(ctx, names, func(n string, took time.Duration, err error) {
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
	list, err := dockerlab.List(ctx)
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
			if l, err := dockerlab.Attach(ctx, s.Name); err == nil {
				if st, err := l.Stats(ctx); err == nil {
					m = fmt.Sprintf("%.1f MB", float64(dockerlab.Memory(st))/1e6)
				}
				os.RemoveAll(l.StateDir)
			}
		}
		fmt.Fprintf(stdout, "%-16s %-8s %d/%-6d %-16s %-22s %-16s %-9s %s\n", s.Name, s.Owner, up, len(s.Tiers),
			fmt.Sprintf("127.0.0.1:%d", s.Ports.KDC), fmt.Sprintf("http://127.0.0.1:%d/", s.Ports.Web), fmt.Sprintf("127.0.0.1:%d", s.Ports.SQL), m, s.Image)
	}
	return nil
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
	img, err := dockerlab.EnsureImage(ctx, dockerlab.ImageOptions{})
	if err != nil {
		return err
	}
	how := "cached"
	if !img.Cached {
		how = "imported in " + img.ImportTime.Round(time.Millisecond).String()
	}
	fmt.Fprintf(stdout, "image %s (%s): %.1f MB, from %s (%s)\n", img.Ref, how, float64(img.Size)/1e6, img.Binary, img.Built)
	// A docker build context with the same content, for the docker CLI.
	if src, main, err := dockerlab.SourceDir(ctx); err == nil && main {
		df, err := os.ReadFile(filepath.Join(src, "docker", "Dockerfile"))
		if err == nil {
			dir := filepath.Join(src, "build", "image")
			if err := dockerlab.StageDockerContext(df, img.Binary, dir); err == nil {
				rel, _ := filepath.Rel(mustGetwd(), dir)
				fmt.Fprintf(stdout, "docker CLI: docker build -t %s %s   (same image, from docker/Dockerfile)\n", dockerlab.ImageRepo, rel)
			}
		}
	}
	return nil
}

func labMeasure(ctx context.Context, f *labFlags, args []string, stdout io.Writer) error {
	var o bench.LabMeasureOptions
	f.fs.IntVar(&o.Labs, "labs", 10, "how many labs to start for the per-lab figures")
	f.fs.DurationVar(&o.Settle, "settle", 5*time.Second, "idle time before taking memory samples")
	f.fs.BoolVar(&o.KeepImage, "keep-image", false, "do not remove the image first (measure a warm start)")
	if err := f.fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *f.tmo+time.Duration(max(o.Labs, 1))*30*time.Second)
	defer cancel()
	if err := dockerOrSay(ctx); err != nil {
		return err
	}
	return bench.MeasureLabs(ctx, o, stdout)
}
