// Package hostalias gives the lab's host names to the addresses an
// orchestrator's own names resolve to, in the hosts file, as an admin's hosts
// file (or the domain's DNS) holds them on a real network. Kubernetes names
// its Services "dc", "web", "sql" in each seat's namespace; the lab's tiers
// dial, and ask tickets for, dc.lab.local, web.lab.local and sql.lab.local.
package hostalias

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

// Env is the variable Apply reads: "dc.lab.local=dc,web.lab.local=web".
const Env = "DOUBLEHOP_HOST_ALIASES"

// Parse reads NAME=TARGET pairs separated by commas.
func Parse(spec string) ([][2]string, error) {
	var out [][2]string
	for _, p := range strings.Split(spec, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		name, target, ok := strings.Cut(p, "=")
		if !ok || name == "" || target == "" || strings.ContainsAny(name+target, " \t\n#") {
			return nil, fmt.Errorf("%s: %q is not NAME=TARGET", Env, p)
		}
		out = append(out, [2]string{strings.ToLower(name), target})
	}
	return out, nil
}

// Apply resolves each target (waiting up to wait for names that are not yet
// in DNS) and appends "ADDRESS NAME" to the hosts file for names it does not
// already hold.
func Apply(ctx context.Context, spec, hostsFile string, wait time.Duration) error {
	pairs, err := Parse(spec)
	if err != nil || len(pairs) == 0 {
		return err
	}
	old, err := os.ReadFile(hostsFile)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	have := map[string]bool{}
	for _, line := range strings.Split(string(old), "\n") {
		f := strings.Fields(line)
		for i := 1; i < len(f) && !strings.HasPrefix(f[0], "#"); i++ {
			have[strings.ToLower(f[i])] = true
		}
	}
	var add strings.Builder
	deadline := time.Now().Add(wait)
	for _, p := range pairs {
		if have[p[0]] {
			continue
		}
		var addrs []string
		for {
			addrs, err = net.DefaultResolver.LookupHost(ctx, p[1])
			if err == nil && len(addrs) > 0 {
				break
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				return fmt.Errorf("%s: %s for %s: %v", Env, p[1], p[0], err)
			}
			time.Sleep(500 * time.Millisecond)
		}
		fmt.Fprintf(&add, "%s\t%s\n", addrs[0], p[0])
	}
	if add.Len() == 0 {
		return nil
	}
	f, err := os.OpenFile(hostsFile, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	if len(old) > 0 && old[len(old)-1] != '\n' {
		f.WriteString("\n")
	}
	if _, err := f.WriteString("# " + Env + "\n" + add.String()); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
