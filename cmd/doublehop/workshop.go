//go:build !nolab

package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/doublehop/doublehop/dockerlab"
	"github.com/doublehop/doublehop/workshop"
)

func init() {
	register("workshop", "a lab per seat on Docker Swarm: workshop up --seats N | status | down", cmdWorkshop)
}

func cmdWorkshop(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") || args[0] == "help" {
		w := stderr
		if len(args) > 0 {
			w = stdout
		}
		fmt.Fprint(w, `usage: doublehop workshop up|status|down [flags]

  up      deploy N seats on this swarm manager, each its own lab (dc, web, sql,
          ws01) on its own overlay network, its ports published through the
          routing mesh (or on the seat's node where the kernel has no IPVS);
          print the seat table, write seats.csv and a krb5.conf per seat, run
          Bob's flow in every seat
  status  each seat's tasks and whether its published ports answer
  down    remove every service, network, secret, config and volume it made

Run "doublehop workshop VERB -h" for the flags.
`)
		if len(args) > 0 {
			return nil
		}
		return errUsage
	}
	verb, args := args[0], args[1:]
	fs := newFlags("workshop "+verb, "workshop "+verb+" [flags]", stderr)
	name := fs.String("name", "workshop", "the workshop's name (prefixes every swarm object)")
	address := fs.String("address", "127.0.0.1", "a node's address: where the seat table points and the ports are checked")
	timeout := fs.Duration("timeout", 10*time.Minute, "give up after this long")
	switch verb {
	case "up":
		seats := fs.Int("seats", 3, "number of seats")
		basePort := fs.Int("base-port", 30000, "seat 1's first port (KDC; +1 web, +2 LDAP, +3 SQL, +4 LDAPS); 5 ports per seat")
		var public hostList
		fs.Var(&public, "public-host", "a name attendees type for the page (http://NAME:PORT/); HTTP/NAME goes on every seat's web account (repeatable)")
		dir := fs.String("dir", "", "where seats.csv and the seats' krb5.conf files go (default STATE/workshop/NAME)")
		initSwarm := fs.Bool("init-swarm", false, "when this engine is in no swarm, make a single-node one on 127.0.0.1 (down --leave-swarm undoes it)")
		image := fs.String("image", "", "run this image (e.g. from your registry) instead of building one")
		publish := fs.String("publish", "auto", "ingress: the routing mesh (any node's address reaches any seat); host: each seat on one node, its ports there; auto: ingress where the kernel has IPVS")
		noFlow := fs.Bool("no-flow", false, "do not run Bob's flow in each seat at the end")
		state := fs.String("state", defaultState(), "state directory (for the default --dir)")
		if err := fs.Parse(args); err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		if err := dockerlab.Available(ctx); err != nil {
			return fmt.Errorf("a workshop needs a Docker engine in swarm mode; none reachable: %v", err)
		}
		w, err := workshop.Up(ctx, workshop.Options{Name: *name, Seats: *seats, BasePort: *basePort, PublicHosts: public, Address: *address,
			Publish: strings.TrimPrefix(*publish, "auto"), InitSwarm: *initSwarm, Flow: !*noFlow, Image: dockerlab.ImageOptions{Ref: *image}, Progress: stdout})
		if w == nil || len(w.Seats) == 0 {
			return err
		}
		if *dir == "" {
			*dir = filepath.Join(*state, "workshop", *name)
		}
		csvPath, werr := w.WriteFiles(*dir)
		fmt.Fprintln(stdout)
		w.WriteTable(stdout)
		fmt.Fprintln(stdout)
		if werr == nil {
			fmt.Fprintf(stdout, "seat table: %s (it holds the passwords); krb5.conf per seat: %s/seat-N.krb5.conf\n", csvPath, *dir)
		}
		fmt.Fprintf(stdout, "attendees: put \"%s web.lab.local\" in the hosts file (any node's address), use the seat's krb5.conf, then\n", *address)
		fmt.Fprintf(stdout, "  kinit bob   and open   http://web.lab.local:PORT/   (curl --negotiate -u : http://web.lab.local:PORT/)\n")
		if len(public) > 0 {
			fmt.Fprintf(stdout, "  or http://%s:PORT/ (HTTP/%s is on every seat's svc account)\n", public[0], public[0])
		}
		fmt.Fprintf(stdout, "status: doublehop workshop status --name %s    remove: doublehop workshop down --name %s%s\n", *name, *name, map[bool]string{true: " --leave-swarm", false: ""}[w.InitedSwarm])
		if err != nil {
			return err
		}
		return werr
	case "status":
		if err := fs.Parse(args); err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		st, err := workshop.Status(ctx, *name, *address)
		if err != nil {
			if strings.Contains(err.Error(), "not a swarm manager") {
				return fmt.Errorf("this Docker engine is not a swarm manager: no workshop runs here (doublehop workshop up --init-swarm makes one)")
			}
			return err
		}
		if len(st) == 0 {
			fmt.Fprintf(stdout, "workshop %s: no seats\n", *name)
			return nil
		}
		bad := 0
		for _, s := range st {
			fmt.Fprintln(stdout, s.Line())
			if !s.Healthy() {
				bad++
			}
		}
		fmt.Fprintf(stdout, "workshop %s: %d of %d seats healthy\n", *name, len(st)-bad, len(st))
		if bad > 0 {
			return exitError(1)
		}
		return nil
	case "down":
		leave := fs.Bool("leave-swarm", false, "also leave the swarm when `workshop up --init-swarm` made it and nothing else runs in it")
		if err := fs.Parse(args); err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		rm, err := workshop.Down(ctx, *name, *leave)
		fmt.Fprintf(stdout, "workshop %s removed: %s\n", *name, rm)
		return err
	}
	return fmt.Errorf("unknown verb %q (up, status, down): %w", verb, errUsage)
}
