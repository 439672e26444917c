package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/doublehop/doublehop/directory"
	"github.com/doublehop/doublehop/internal/atomicfile"
	"github.com/doublehop/doublehop/lab"
	"github.com/doublehop/doublehop/labnet"
)

// flowRecord is one flow of the fault phase.
type flowRecord struct {
	end  time.Time
	took time.Duration
	err  error
}

// faults runs the tiers as separate processes, kills each with SIGKILL under
// load and restarts it: during the outage flows must fail fast with a clear
// error, afterwards every flow must succeed, and a directory change made just
// before the KDC was killed must still be there.
func faults(ctx context.Context, o SoakOptions) error {
	dir, err := os.MkdirTemp("", "doublehop-faults-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	state := filepath.Join(dir, "state")
	const users = 8
	store, err := directory.Open(state, withLoadUsers(users))
	if err != nil {
		return err
	}
	for tier, acct := range map[string]string{"web": "svc_iispool", "sql": "svc_mssqlserver"} {
		if err := lab.ExportKeytab(store, acct, filepath.Join(state, lab.KeytabsDir, tier+".keytab")); err != nil {
			return err
		}
	}
	var ports [3]int
	for i := range ports {
		if ports[i], err = freePort(); err != nil {
			return err
		}
	}
	kdcAddr, sqlAddr, webAddr := fmt.Sprintf("127.0.0.1:%d", ports[0]), fmt.Sprintf("127.0.0.1:%d", ports[1]), fmt.Sprintf("127.0.0.1:%d", ports[2])
	conf := filepath.Join(state, lab.Krb5ConfFile)
	if err := atomicfile.WriteFile(conf, []byte(lab.Krb5Conf("LAB.LOCAL", kdcAddr, "", false)), 0o644); err != nil {
		return err
	}
	tiers := []*tierProc{
		{name: "kdc", bin: o.Binary, args: []string{"kdc", "--state", state, "--listen", kdcAddr, "--netlogon-listen", "", "--log-level", "warn"}},
		{name: "sql", bin: o.Binary, args: []string{"sql", "--state", state, "--listen", sqlAddr, "--netlogon", "", "--log-level", "warn"}},
		{name: "web", bin: o.Binary, args: []string{"web", "--state", state, "--listen", webAddr, "--kdc", kdcAddr, "--netlogon", "",
			"--resolve", "sql.lab.local:1433=" + sqlAddr, "--log-level", "warn"}},
	}
	for _, t := range tiers {
		if err := t.start(ctx); err != nil {
			return err
		}
		defer t.kill()
	}
	d := labnet.NewEmpty()
	d.Map("web.lab.local", "127.0.0.1")
	view := store.View()
	clients, err := logOn(ctx, users, dir, conf, d, func(n string) string { return view.Lab.Account(n).Password })
	if err != nil {
		return err
	}
	url := fmt.Sprintf("http://web.lab.local:%d/", ports[2])

	var mu sync.Mutex
	var recs []flowRecord
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				start := time.Now()
				fctx, cancel := context.WithTimeout(ctx, 20*time.Second)
				err := flowOnce(fctx, c, url)
				cancel()
				mu.Lock()
				recs = append(recs, flowRecord{end: time.Now(), took: time.Since(start), err: err})
				mu.Unlock()
				if err != nil {
					time.Sleep(50 * time.Millisecond)
				}
			}
		}()
	}
	window := func(from, to time.Time) (ok, failed int, slowest time.Duration, first error) {
		mu.Lock()
		defer mu.Unlock()
		for _, r := range recs {
			if r.end.Before(from) || r.end.After(to) {
				continue
			}
			if r.err != nil {
				failed++
				if first == nil {
					first = r.err
				}
			} else {
				ok++
			}
			if r.took > slowest {
				slowest = r.took
			}
		}
		return
	}
	var failures []string
	time.Sleep(2 * time.Second)
	for _, t := range tiers {
		if t.name == "kdc" {
			var w bytes.Buffer
			if err := directory.SetSPN(store, []string{"-S", "HTTP/soak.lab.local", "svc_iispool"}, &w); err != nil {
				return err
			}
		}
		t.kill()
		down := time.Now()
		time.Sleep(2 * time.Second)
		if err := t.start(ctx); err != nil {
			return fmt.Errorf("restart %s: %w", t.name, err)
		}
		up := time.Now()
		time.Sleep(1 * time.Second) // settle: flows started during the outage finish
		settled := time.Now()
		time.Sleep(3 * time.Second)
		_, outFailed, slowest, first := window(down, up)
		after, afterFailed, _, afterErr := window(settled, time.Now())
		fmt.Fprintf(o.Out, "fault    %-3s killed (SIGKILL) for 2s: %d flows failed, slowest %s, first error: %v\n", t.name, outFailed, slowest.Round(time.Millisecond), first)
		fmt.Fprintf(o.Out, "         after restart: %d flows ok, %d failed\n", after, afterFailed)
		if afterFailed > 0 {
			failures = append(failures, fmt.Sprintf("%s: %d flows failed after restart: %v", t.name, afterFailed, afterErr))
		}
		if after == 0 {
			failures = append(failures, t.name+": no flow succeeded after restart")
		}
		if slowest > 20*time.Second {
			failures = append(failures, fmt.Sprintf("%s: a flow hung for %s during the outage", t.name, slowest))
		}
		if t.name == "kdc" {
			s2, err := directory.Open(state, nil)
			if err != nil || len(s2.View().SPNOwners("HTTP/soak.lab.local")) != 1 {
				failures = append(failures, "kdc: the directory change made before the kill was lost")
			} else {
				fmt.Fprintln(o.Out, "         the setspn -S made just before the kill is in the directory after restart")
			}
		}
	}
	close(stop)
	wg.Wait()
	if len(failures) > 0 {
		return fmt.Errorf("faults: %v", failures)
	}
	return nil
}
