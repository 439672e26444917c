package workshop_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/doublehop/doublehop/dockerlab"
	"github.com/doublehop/doublehop/internal/engine"
	"github.com/doublehop/doublehop/internal/enginelock"
	"github.com/doublehop/doublehop/internal/peer"
	"github.com/doublehop/doublehop/workshop"
	"github.com/moby/moby/api/types/swarm"
)

func TestMain(m *testing.M) {
	if _, ok := os.LookupEnv("TESTCONTAINERS_RYUK_DISABLED"); !ok {
		os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	}
	// A swarm made and left resets the engine's networking: no other
	// package's container lab may run meanwhile.
	release, err := enginelock.Exclusive()
	if err != nil {
		fmt.Fprintln(os.Stderr, "workshop: engine lock:", err)
		os.Exit(1)
	}
	code := m.Run()
	release()
	os.Exit(code)
}

const testName = "wstest"

// freeBase finds a block of seats×5 ports that can be bound on this
// machine, below Linux's ephemeral range (32768–60999), where a busy test
// machine's outgoing connections take ports at random.
func freeBase(t *testing.T, seats int) int {
	t.Helper()
next:
	for base := 31000; base+5*seats < 32768; base += 100 {
		for p := base; p < base+5*seats; p++ {
			ln, err := net.Listen("tcp", fmt.Sprintf(":%d", p))
			if err != nil {
				continue next
			}
			ln.Close()
		}
		return base
	}
	t.Fatal("no free block of ports in 31000–32767")
	return 0
}

// swarmFor makes a single-node swarm on loopback when the engine is in none
// and leaves it again at the end (the engine as found).
func swarmFor(t *testing.T, cli *engine.Client) (inited bool) {
	t.Helper()
	info, err := cli.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	switch sw := info.Swarm; {
	case sw.LocalNodeState == swarm.LocalNodeStateInactive:
		return true // Up(InitSwarm) makes it; Down(leave) removes it
	case sw.LocalNodeState == swarm.LocalNodeStateActive && sw.ControlAvailable:
		return false
	default:
		peer.Missing(t, fmt.Sprintf("the Docker engine is in a swarm as %s (manager: %v): run this test on a manager or outside any swarm", sw.LocalNodeState, sw.ControlAvailable))
	}
	return false
}

// The whole workshop on one machine: three seats up with Bob's flow in each,
// the host's MIT kinit and curl against a seat's published ports, the seats
// apart (keys and networks), a seat's web and DC killed and the seat back
// with its directory intact while the others carry on, and Down leaving
// nothing behind.
func TestWorkshopOnSwarm(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	if err := dockerlab.Available(ctx); err != nil {
		peer.Missing(t, "no Docker engine reachable: "+err.Error())
	}
	paths := peer.Need(t, "kinit", "curl")
	kinit, curl := paths[0], paths[1]
	cli, err := dockerlab.APIClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ours := swarmFor(t, cli)
	const seats = 3
	base := freeBase(t, seats)
	downDone := false
	t.Cleanup(func() {
		if !downDone {
			if _, err := workshop.Down(context.Background(), testName, ours); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
	})

	w, err := workshop.Up(ctx, workshop.Options{Name: testName, Seats: seats, BasePort: base, InitSwarm: ours, Flow: true, Progress: testWriter{t}})
	if err != nil {
		t.Fatal(err)
	}
	if len(w.Seats) != seats {
		t.Fatalf("%d seats, want %d", len(w.Seats), seats)
	}
	passwords := map[string]bool{}
	for _, s := range w.Seats {
		if !s.Flow.OK("LAB") {
			t.Errorf("seat %d: %s", s.N, s.FlowLine())
		}
		if got := s.FlowLine(); got != `LAB\bob KERBEROS` {
			t.Errorf("seat %d: flow line %q", s.N, got)
		}
		passwords[s.Password] = true
	}
	if len(passwords) != seats {
		t.Errorf("seats share Bob's password: %v", passwords)
	}
	dir := t.TempDir()
	csvPath, err := w.WriteFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(csvPath)
	if lines := strings.Split(strings.TrimSpace(string(b)), "\n"); len(lines) != seats+1 || !strings.Contains(lines[1], w.Seats[0].Password) {
		t.Errorf("seats.csv:\n%s", b)
	}
	if st, _ := os.Stat(csvPath); st.Mode().Perm() != 0o600 {
		t.Errorf("seats.csv mode %v, want 0600 (it holds passwords)", st.Mode().Perm())
	}

	// From the host, as an attendee's laptop: MIT kinit with the seat's
	// krb5.conf, curl --negotiate to the seat's published web port.
	s1, s2 := w.Seats[0], w.Seats[1]
	page := func(s *workshop.Seat, krb5conf, cc string) (string, error) {
		url := fmt.Sprintf("http://web.lab.local:%d/", s.Ports.Web)
		cmd := exec.CommandContext(ctx, curl, "-s", "-w", "\n%{http_code}", "--negotiate", "-u", ":", "--resolve", fmt.Sprintf("web.lab.local:%d:%s", s.Ports.Web, s.Address), url)
		cmd.Env = []string{"PATH=/usr/bin:/bin", "KRB5_CONFIG=" + krb5conf, "KRB5CCNAME=FILE:" + cc}
		out, err := cmd.Output()
		return string(out), err
	}
	for _, s := range w.Seats {
		conf, cc := filepath.Join(dir, fmt.Sprintf("seat-%d.krb5.conf", s.N)), filepath.Join(dir, fmt.Sprintf("cc%d", s.N))
		env := []string{"KRB5_CONFIG=" + conf, "KRB5CCNAME=FILE:" + cc}
		if out, err := peer.RunErr(env, s.Password+"\n", kinit, "bob"); err != nil {
			t.Fatalf("kinit bob against seat %d's KDC %s: %v\n%s", s.N, s.KDCAddr(), err, out)
		}
		out, err := page(s, conf, cc)
		if err != nil || !strings.HasSuffix(out, "\n200") || !strings.Contains(out, `LAB\bob`) || !strings.Contains(out, "KERBEROS") {
			t.Fatalf("curl --negotiate seat %d: %v\n%s", s.N, err, out)
		}
	}
	// The lab's own client from this host, as the workshop runs a seat whose
	// ws01 is on another node.
	if f, err := w.HostFlow(ctx, s2); err != nil || !f.OK("LAB") {
		t.Errorf("seat 2 from this host: %v", err)
	}
	// Seat 1's ticket means nothing in seat 2: its own keys.
	if out, _ := page(s2, filepath.Join(dir, "seat-2.krb5.conf"), filepath.Join(dir, "cc1")); !strings.HasSuffix(out, "\n401") {
		t.Errorf("seat 1's ticket at seat 2's site: want 401, got\n%s", out)
	}

	// Networks apart: seat 1's ws01 reaches its own DC by name, not seat 2's
	// DC at its address on seat 2's network.
	ws1, err := w.Container(ctx, s1, dockerlab.RoleClient)
	if err != nil {
		t.Fatal(err)
	}
	dc2, err := w.Container(ctx, s2, dockerlab.RoleKDC)
	if err != nil {
		t.Fatal(err)
	}
	ins, err := cli.ContainerInspect(ctx, dc2)
	if err != nil {
		t.Fatal(err)
	}
	var dc2IP string
	for _, n := range ins.NetworkSettings.Networks {
		if n.IPAddress.IsValid() {
			dc2IP = n.IPAddress.String()
		}
	}
	if dc2IP == "" {
		t.Fatal("seat 2's DC has no address")
	}
	// (A Kerberos exchange, not a TCP connect: some sandboxes' egress proxies
	// accept a connection to any address.)
	if r, err := dockerlab.ExecIn(ctx, cli, ws1, nil, "probe", "--kerberos", "LAB.LOCAL", "--timeout", "3s", "dc.lab.local:88"); err != nil || r.ExitCode != 0 {
		t.Errorf("seat 1's ws01 → its own dc.lab.local:88: %v %s", err, r.Stderr)
	}
	if r, err := dockerlab.ExecIn(ctx, cli, ws1, nil, "probe", "--kerberos", "LAB.LOCAL", "--timeout", "3s", net.JoinHostPort(dc2IP, "88")); err != nil || r.ExitCode == 0 {
		t.Errorf("seat 1's ws01 reached seat 2's KDC at %s:88 (%v)", dc2IP, err)
	} else {
		t.Logf("seat 1's ws01 → seat 2's KDC %s:88: %s", dc2IP, strings.TrimSpace(r.Stderr))
	}

	// Load on seat 1 (eight workstations' worth of flows at once) while
	// seat 3's flows go on: every flow of both succeeds.
	var load sync.WaitGroup
	loadErrs := make(chan error, 64)
	for g := 0; g < 8; g++ {
		load.Add(1)
		go func() {
			defer load.Done()
			for i := 0; i < 5; i++ {
				if f, err := w.Flow(ctx, s1); err != nil || !f.OK("LAB") {
					loadErrs <- fmt.Errorf("seat 1 under load: %v", err)
				}
			}
		}()
	}
	for i := 0; i < 10; i++ {
		if f, err := w.Flow(ctx, w.Seats[2]); err != nil || !f.OK("LAB") {
			t.Errorf("seat 3 while seat 1 is loaded: %v", err)
		}
	}
	load.Wait()
	close(loadErrs)
	for err := range loadErrs {
		t.Error(err)
	}

	// Faults: a change in seat 2's directory, then its DC and web containers
	// killed. Swarm starts new ones; the change is still there (the volume)
	// and Bob's flow works again; seats 1 and 3 never notice.
	if r, err := dockerlab.ExecIn(ctx, cli, dc2, nil, "setspn", "--state", dockerlab.StateDir, "-S", "HTTP/intranet.lab.local", "svc_iispool"); err != nil || r.ExitCode != 0 {
		t.Fatalf("setspn in seat 2's DC: %v %s%s", err, r.Stdout, r.Stderr)
	}
	web2, err := w.Container(ctx, s2, dockerlab.RoleWeb)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{web2, dc2} {
		if err := cli.ContainerKill(ctx, id, "SIGKILL"); err != nil {
			t.Fatal(err)
		}
	}
	killed := time.Now()
	var st []workshop.SeatStatus
	for {
		st, err = workshop.Status(ctx, testName, "127.0.0.1")
		newDC, _ := w.Container(ctx, s2, dockerlab.RoleKDC)
		newWeb, _ := w.Container(ctx, s2, dockerlab.RoleWeb)
		if err == nil && len(st) == seats && st[1].Healthy() && newDC != "" && newDC != dc2 && newWeb != "" && newWeb != web2 {
			break
		}
		if time.Since(killed) > 90*time.Second {
			t.Fatalf("seat 2 not back 90s after the kill: %v %+v", err, st)
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("seat 2 healthy again %s after its dc and web were killed", time.Since(killed).Round(time.Millisecond))
	for _, s := range st {
		t.Log(s.Line())
		if !s.Healthy() {
			t.Errorf("after seat 2's fault: %s", s.Line())
		}
	}
	var f2 error
	for i := 0; i < 20; i++ { // the seat's names follow the new tasks
		if _, f2 = w.Flow(ctx, s2); f2 == nil {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if f2 != nil {
		t.Errorf("seat 2's flow after the restart: %v", f2)
	}
	dcNew, _ := w.Container(ctx, s2, dockerlab.RoleKDC)
	if r, err := dockerlab.ExecIn(ctx, cli, dcNew, nil, "setspn", "--state", dockerlab.StateDir, "-L", "svc_iispool"); err != nil || !strings.Contains(r.Stdout, "HTTP/intranet.lab.local") {
		t.Errorf("seat 2's directory lost the change made before the kill: %v\n%s%s", err, r.Stdout, r.Stderr)
	}
	for _, s := range []*workshop.Seat{w.Seats[0], w.Seats[2]} {
		if f, err := w.Flow(ctx, s); err != nil || !f.OK("LAB") {
			t.Errorf("seat %d after seat 2's fault: %v", s.N, err)
		}
	}

	// Down: nothing labelled with the workshop remains.
	rm, err := workshop.Down(ctx, testName, ours)
	downDone = true
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("down: %s", rm)
	if rm.Services != 4*seats || rm.Networks != seats || rm.Volumes != seats {
		t.Errorf("down removed %s", rm)
	}
	f := make(engine.Filters).Add("label", workshop.LabelWorkshop+"="+testName)
	left := []string{}
	if cl, err := cli.ContainerList(ctx, true, f); err == nil && len(cl) > 0 {
		left = append(left, strconv.Itoa(len(cl))+" containers")
	}
	if vl, err := cli.VolumeList(ctx, f); err == nil && len(vl) > 0 {
		left = append(left, strconv.Itoa(len(vl))+" volumes")
	}
	if nl, err := cli.NetworkList(ctx, f); err == nil && len(nl) > 0 {
		left = append(left, strconv.Itoa(len(nl))+" networks")
	}
	info, err := cli.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ours {
		if info.Swarm.LocalNodeState != swarm.LocalNodeStateInactive {
			left = append(left, "the swarm it made")
		}
		if !rm.Left {
			left = append(left, "the swarm (not left)")
		}
	} else {
		if sl, err := cli.ServiceList(ctx, f, false); err == nil && len(sl) > 0 {
			left = append(left, strconv.Itoa(len(sl))+" services")
		}
		if sl, err := cli.SecretList(ctx, f); err == nil && len(sl) > 0 {
			left = append(left, strconv.Itoa(len(sl))+" secrets")
		}
		if cl, err := cli.ConfigList(ctx, f); err == nil && len(cl) > 0 {
			left = append(left, strconv.Itoa(len(cl))+" configs")
		}
	}
	if len(left) > 0 {
		t.Errorf("workshop down left: %s", strings.Join(left, ", "))
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
