package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/doublehop/doublehop/directory"
	"github.com/doublehop/doublehop/internal/mitkdc"
	"github.com/doublehop/doublehop/krb/kmsg"
)

// CompareOptions configure the side-by-side KDC benchmark.
type CompareOptions struct {
	Binary   string        // the doublehop binary (our KDC runs as its own process, as MIT's does)
	Users    int           // load users (default 8)
	Conc     int           // concurrent clients (default 8)
	Ops      int           // requests per measurement (default 20000)
	Max      time.Duration // time bound per measurement (default 60s)
	Password string
	Out      io.Writer
}

// Row is one line of the comparison.
type Row struct {
	Exchange, Transport string
	Ours, MIT, MITNoLS  Result
}

const realm = "LAB.LOCAL"

// CompareKDC starts our KDC and MIT's krb5kdc (default DB settings, and with
// disable_last_success + disable_lockout) with the same principals, drives
// each with the same generator and prints AS and TGS throughput and latency
// with our/MIT ratios.
func CompareKDC(ctx context.Context, o CompareOptions) ([]Row, error) {
	if o.Users == 0 {
		o.Users = 8
	}
	if o.Conc == 0 {
		o.Conc = 8
	}
	if o.Ops == 0 {
		o.Ops = 20000
	}
	if o.Max == 0 {
		o.Max = 60 * time.Second
	}
	if o.Password == "" {
		o.Password = "LoadPassw0rd!"
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if !mitkdc.Available() {
		return nil, fmt.Errorf("MIT krb5kdc is not installed (apt-get install krb5-kdc)")
	}
	users, err := NewUsers(realm, "load", o.Password, o.Users)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "doublehop-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)

	fmt.Fprintf(o.Out, "starting our KDC (doublehop kdc) and MIT krb5kdc (default, and disable_last_success) ...\n")
	ours, stopOurs, err := startOurKDC(ctx, o.Binary, filepath.Join(dir, "ours"), o)
	if err != nil {
		return nil, err
	}
	defer stopOurs()
	princs := []mitkdc.Principal{{Name: "HTTP/web.lab.local"}, {Name: "MSSQLSvc/sql.lab.local:1433"}}
	for _, u := range users {
		princs = append(princs, mitkdc.Principal{Name: u.Name, Password: o.Password, RequiresPreauth: true})
	}
	mit, err := mitkdc.Start(ctx, mitkdc.Options{Realm: realm, Dir: filepath.Join(dir, "mit"), Principals: princs, TCPBacklog: 128})
	if err != nil {
		return nil, err
	}
	defer mit.Stop()
	mitNLS, err := mitkdc.Start(ctx, mitkdc.Options{Realm: realm, Dir: filepath.Join(dir, "mit-nls"), Principals: princs, DisableLastSuccess: true, TCPBacklog: 128})
	if err != nil {
		return nil, err
	}
	defer mitNLS.Stop()

	spns := []string{"HTTP/web.lab.local", "MSSQLSvc/sql.lab.local:1433"}
	var rows []Row
	for _, transport := range []string{"udp", "tcp"} {
		udp := transport == "udp"
		targets := []KDCTarget{{Addr: ours, Realm: realm, UDP: udp}, {Addr: mit.Addr, Realm: realm, UDP: udp}, {Addr: mitNLS.Addr, Realm: realm, UDP: udp}}
		as := Row{Exchange: "AS-REQ", Transport: transport}
		tgs := Row{Exchange: "TGS-REQ", Transport: transport}
		res := make([]Result, 3)
		for i, t := range targets {
			LoadAS(ctx, t, users, o.Conc, 500, o.Max) // warm-up
			res[i] = LoadAS(ctx, t, users, o.Conc, o.Ops, o.Max)
		}
		as.Ours, as.MIT, as.MITNoLS = res[0], res[1], res[2]
		printRow(o.Out, as)
		for i, t := range targets {
			if res[i], err = LoadTGS(ctx, t, users, spns, o.Conc, o.Ops, o.Max); err != nil {
				return rows, err
			}
		}
		tgs.Ours, tgs.MIT, tgs.MITNoLS = res[0], res[1], res[2]
		printRow(o.Out, tgs)
		rows = append(rows, as, tgs)
	}
	// Tail latency at the same offered load (below every KDC's capacity).
	const rate = 2000
	for _, ex := range []string{"AS-REQ", "TGS-REQ"} {
		var res [3]Result
		for i, addr := range []string{ours, mit.Addr, mitNLS.Addr} {
			t := KDCTarget{Addr: addr, Realm: realm, UDP: true}
			us, done, err := t.clients(o.Conc)
			if err != nil {
				return rows, err
			}
			var tgts []kmsg.Credential
			if ex == "TGS-REQ" {
				for w := 0; w < o.Conc; w++ {
					rep, err := t.AS(ctx, us[w], users[w%len(users)])
					if err != nil {
						done()
						return rows, err
					}
					tgts = append(tgts, rep.Credential())
				}
			}
			res[i] = RunRate(ctx, o.Conc, rate, 5*time.Second, func(ctx context.Context, w, k int) error {
				if ex == "AS-REQ" {
					_, err := t.AS(ctx, us[w], users[(w+k)%len(users)])
					return err
				}
				_, err := t.TGS(ctx, us[w], tgts[w], spns[k%len(spns)])
				return err
			})
			done()
		}
		fmt.Fprintf(o.Out, "%-7s udp @%d/s  p99: ours %s  MIT %s  MIT(no last-success) %s  (p50 %s / %s / %s)\n", ex, rate,
			ms(res[0].P99), ms(res[1].P99), ms(res[2].P99), ms(res[0].P50), ms(res[1].P50), ms(res[2].P50))
	}
	return rows, nil
}

func ratio(a, b Result) float64 {
	if b.Rate() == 0 {
		return 0
	}
	return a.Rate() / b.Rate()
}

func printRow(w io.Writer, r Row) {
	fmt.Fprintf(w, "%-7s %-3s  ours %6.0f/s p50 %s p99 %s  MIT %6.0f/s p50 %s p99 %s  %.1fx   MIT(no last-success) %6.0f/s  %.1fx\n",
		r.Exchange, r.Transport, r.Ours.Rate(), ms(r.Ours.P50), ms(r.Ours.P99), r.MIT.Rate(), ms(r.MIT.P50), ms(r.MIT.P99),
		ratio(r.Ours, r.MIT), r.MITNoLS.Rate(), ratio(r.Ours, r.MITNoLS))
	for _, x := range []struct {
		who string
		r   Result
	}{{"ours", r.Ours}, {"MIT", r.MIT}, {"MIT(no last-success)", r.MITNoLS}} {
		if x.r.Errors > 0 {
			fmt.Fprintf(w, "        %s: %d errors, first: %v\n", x.who, x.r.Errors, x.r.FirstErr)
		}
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d.Microseconds())/1000) }

// startOurKDC runs `doublehop kdc` on a directory holding the default lab plus
// the load users, and waits for its ready line.
func startOurKDC(ctx context.Context, bin, state string, o CompareOptions) (string, func(), error) {
	l := directory.Default()
	for i := 1; i <= o.Users; i++ {
		l.Accounts = append(l.Accounts, directory.Account{Name: fmt.Sprintf("load%d", i), Type: directory.TypeUser,
			Password: o.Password, RID: uint32(5000 + i), Groups: []string{"Domain Users"}})
	}
	if _, err := directory.Open(state, l); err != nil {
		return "", nil, err
	}
	port, err := freePort()
	if err != nil {
		return "", nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.CommandContext(ctx, bin, "kdc", "--state", state, "--listen", addr, "--netlogon-listen", "", "--log-level", "warn")
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() { cmd.Process.Kill(); cmd.Wait() }
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "kdc: ready") {
				ready <- nil
				io.Copy(io.Discard, stderr)
				return
			}
		}
		ready <- fmt.Errorf("doublehop kdc exited before its ready line")
	}()
	select {
	case err := <-ready:
		if err != nil {
			stop()
			return "", nil, err
		}
	case <-time.After(15 * time.Second):
		stop()
		return "", nil, fmt.Errorf("doublehop kdc: no ready line after 15s")
	}
	return addr, stop, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	p := l.Addr().(*net.TCPAddr).Port
	// The KDC also needs the UDP port; check it is free too.
	u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", p))
	if err != nil {
		return 0, err
	}
	u.Close()
	return p, nil
}
