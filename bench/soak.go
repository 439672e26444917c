package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/doublehop/doublehop/client"
	"github.com/doublehop/doublehop/directory"
	"github.com/doublehop/doublehop/lab"
	"github.com/doublehop/doublehop/labnet"
)

// SoakOptions configure the load and fault run.
type SoakOptions struct {
	Binary   string        // doublehop binary: the fault phase runs each tier as its own process
	Users    int           // concurrent users (default 64)
	Duration time.Duration // steady phase (default 60s)
	Every    time.Duration // a table row this often during the steady phase (default 30s)
	Out      io.Writer
}

// withLoadUsers is the default lab plus n users with SQL logins.
func withLoadUsers(n int) *directory.Lab {
	l := directory.Default()
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("user%d", i)
		l.Accounts = append(l.Accounts, directory.Account{Name: name, Type: directory.TypeUser, Password: "UserPassw0rd!" + name,
			RID: uint32(6000 + i), Groups: []string{"Domain Users"}})
		l.SQL.Logins = append(l.SQL.Logins, directory.SQLLogin{Login: l.NetBIOS + `\` + name, Access: "grant"})
	}
	return l
}

// flowOnce is one full flow for a logged-on client.
func flowOnce(ctx context.Context, c *client.Client, url string) error {
	cred, err := c.FreshServiceTicket(ctx, "HTTP/web.lab.local")
	if err != nil {
		return err
	}
	r, err := c.GetWith(ctx, url, cred, client.GetOptions{Accept: "application/json"})
	if err != nil {
		return err
	}
	if r.Status != 200 {
		return fmt.Errorf("HTTP %d", r.Status)
	}
	if !strings.Contains(string(r.Body), `"auth_scheme":"KERBEROS"`) {
		return fmt.Errorf("SQL did not answer as the user: %.200s", r.Body)
	}
	return nil
}

// Soak runs the steady phase (N users for Duration against the embedded lab,
// goroutines and RSS sampled) and then the fault phase (tiers as processes,
// each killed with SIGKILL and restarted under load).
func Soak(ctx context.Context, o SoakOptions) error {
	if o.Users == 0 {
		o.Users = 64
	}
	if o.Duration == 0 {
		o.Duration = 60 * time.Second
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Every == 0 {
		o.Every = 30 * time.Second
	}
	if err := steady(ctx, o); err != nil {
		return err
	}
	return faults(ctx, o)
}

func steady(ctx context.Context, o SoakOptions) error {
	dir, err := os.MkdirTemp("", "doublehop-soak-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	l, err := lab.Start(lctx, lab.Options{StateDir: filepath.Join(dir, "state"), Lab: withLoadUsers(o.Users)})
	if err != nil {
		return err
	}
	defer l.Close()
	clients, err := logOn(ctx, o.Users, dir, l.Krb5Conf(), l.Dialer, l.Password)
	if err != nil {
		return err
	}
	var ok, bad atomic.Int64
	var firstErr atomic.Value
	var g0, rss0 int
	sampled := make(chan struct{})
	deadline := time.Now().Add(o.Duration)
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Add(1)
		go func(i int, c *client.Client) {
			defer wg.Done()
			for time.Now().Before(deadline) && ctx.Err() == nil {
				fctx, fcancel := context.WithTimeout(ctx, 30*time.Second)
				err := flowOnce(fctx, c, l.WebURL)
				fcancel()
				if err != nil {
					bad.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				} else {
					ok.Add(1)
				}
			}
		}(i, c)
	}
	go func() {
		time.Sleep(o.Duration / 6) // after warm-up
		g0, rss0 = runtime.NumGoroutine(), rssKB()
		close(sampled)
	}()
	// The table: what a leak looks like over time (goroutines, RSS, heap
	// climbing while the rate stays flat), one row per interval.
	stopTable := make(chan struct{})
	tableDone := make(chan struct{})
	go func() {
		defer close(tableDone)
		fmt.Fprintf(o.Out, "soak     %8s %10s %7s %9s %10s %8s %8s\n", "elapsed", "flows ok", "errors", "flows/s", "goroutines", "RSS MB", "heap MB")
		start, prev := time.Now(), int64(0)
		t := time.NewTicker(o.Every)
		defer t.Stop()
		for {
			select {
			case <-stopTable:
				return
			case <-t.C:
			}
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			n := ok.Load()
			fmt.Fprintf(o.Out, "soak     %8s %10d %7d %9.0f %10d %8d %8d\n", time.Since(start).Round(time.Second), n, bad.Load(),
				float64(n-prev)/o.Every.Seconds(), runtime.NumGoroutine(), rssKB()/1024, ms.HeapAlloc>>20)
			prev = n
		}
	}()
	wg.Wait()
	close(stopTable)
	<-tableDone
	<-sampled
	g1, rss1 := runtime.NumGoroutine(), rssKB()
	runtime.GC()
	time.Sleep(200 * time.Millisecond)
	g2, rss2 := runtime.NumGoroutine(), rssKB()
	fmt.Fprintf(o.Out, "soak     %d users × %s: %d flows ok, %d errors (%.0f flows/s)\n", o.Users, o.Duration, ok.Load(), bad.Load(), float64(ok.Load())/o.Duration.Seconds())
	if v := firstErr.Load(); v != nil {
		fmt.Fprintf(o.Out, "         first error: %v\n", v)
	}
	fmt.Fprintf(o.Out, "         goroutines %d (under load, after warm-up) → %d (load finished) → %d (after GC); RSS %d MB → %d MB → %d MB\n",
		g0, g1, g2, rss0/1024, rss1/1024, rss2/1024)
	if bad.Load() > 0 {
		return fmt.Errorf("soak: %d flows failed", bad.Load())
	}
	return nil
}

func logOn(ctx context.Context, n int, dir, krb5conf string, d *labnet.Dialer, password func(string) string) ([]*client.Client, error) {
	var out []*client.Client
	for i := 1; i <= n; i++ {
		cfg := client.Config{CCache: filepath.Join(dir, fmt.Sprintf("cc%d", i)), Dialer: d}
		if err := client.FromKrb5Conf(krb5conf, &cfg); err != nil {
			return nil, err
		}
		c := client.New(cfg)
		name := fmt.Sprintf("user%d", i)
		if _, err := c.Kinit(ctx, name, password(name)); err != nil {
			return nil, fmt.Errorf("kinit %s: %w", name, err)
		}
		out = append(out, c)
	}
	return out, nil
}

func rssKB() int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			if len(f) >= 2 {
				n, _ := strconv.Atoi(f[1])
				return n
			}
		}
	}
	return 0
}

// tierProc is one tier running as its own process.
type tierProc struct {
	name string
	args []string
	bin  string
	cmd  *exec.Cmd
}

func (t *tierProc) start(ctx context.Context) error {
	t.cmd = exec.Command(t.bin, t.args...)
	stderr, err := t.cmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := t.cmd.Start(); err != nil {
		return err
	}
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if strings.Contains(sc.Text(), t.name+": ready") {
				ready <- true
				io.Copy(io.Discard, stderr)
				return
			}
		}
		ready <- false
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.cmd.Wait()
			return fmt.Errorf("%s exited before its ready line", t.name)
		}
		return nil
	case <-time.After(15 * time.Second):
		t.kill()
		return fmt.Errorf("%s: no ready line after 15s", t.name)
	}
}

// kill is SIGKILL: no chance to flush or clean up.
func (t *tierProc) kill() {
	if t.cmd != nil && t.cmd.Process != nil {
		t.cmd.Process.Signal(syscall.SIGKILL)
		t.cmd.Wait()
	}
}
