// Package workshop runs a lab per seat on Docker Swarm: each seat is the
// container lab's four tiers (dc, web, sql, ws01) as swarm services on an
// overlay network of its own, its keytabs and directory as swarm secrets, its
// settings and krb5.conf as configs, its KDC, LDAP, web and SQL ports
// published through the routing mesh (reachable at any node's address), and
// its own realm keys: every seat's passwords are drawn fresh, so a ticket of
// one seat means nothing in another.
//
//	w, err := workshop.Up(ctx, workshop.Options{Seats: 3, Progress: os.Stdout})
//	for _, s := range w.Seats { fmt.Println(s.N, s.WebURL(), s.Flow.Summary()) }
//	workshop.Down(ctx, "workshop", false)
//
// Everything made is labelled (LabelWorkshop, LabelSeat): Down removes a
// workshop by label, never by name patterns.
package workshop

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	labclient "github.com/doublehop/doublehop/client"
	"github.com/doublehop/doublehop/directory"
	"github.com/doublehop/doublehop/dockerlab"
	"github.com/doublehop/doublehop/internal/engine"
	"github.com/doublehop/doublehop/labnet"
	"github.com/doublehop/doublehop/provision"
	"github.com/doublehop/doublehop/webtier"
)

// Labels on everything a workshop makes (services, their containers,
// networks, secrets, configs, volumes); the swarm-init label goes on the node.
const (
	LabelWorkshop  = "org.doublehop.workshop"   // the workshop's name
	LabelSeat      = "org.doublehop.seat"       // the seat's number
	LabelSwarmInit = "org.doublehop.swarm-init" // node label: doublehop made this swarm (Down may leave it)
)

// How seats' ports are published (Options.Publish).
const (
	PublishIngress = "ingress"
	PublishHost    = "host"
)

// Seat ports are BasePort + 5×(seat−1) + these offsets (300 seats from
// 30000 stay below Linux's ephemeral ports, 32768 and up).
const (
	offKDC = iota
	offWeb
	offLDAP
	offSQL
	offLDAPS
	portsPerSeat
)

// Options configures Up.
type Options struct {
	Name     string // default "workshop"
	Seats    int    // default 1
	BasePort int    // default 30000: seat 1 gets 30000 (KDC), 30001 (web), 30002 (LDAP), 30003 (SQL), 30004 (LDAPS); seat 2 30005…
	Image    dockerlab.ImageOptions
	Lab      *directory.Lab // every seat starts from it (default: the default lab)
	// PublicHosts are names attendees type for their seat's page
	// (http://NAME:PORT/): each seat's web account gets HTTP/NAME so the
	// browser's ticket request finds it. web.lab.local always works (with a
	// hosts entry pointing at any node).
	PublicHosts []string
	// Address is where the published ports are checked and where the seat
	// table points (default 127.0.0.1: this node; the routing mesh answers on
	// every node).
	Address string
	// Publish is how seats' ports are published: PublishIngress (the
	// routing mesh: any node's address reaches any seat), PublishHost (each
	// seat on one node, its ports on that node's address only), or "" for
	// the mesh where this kernel has IPVS and host publishing where not.
	Publish      string
	InitSwarm    bool          // init a single-node swarm on 127.0.0.1 when the engine is in none
	ReadyTimeout time.Duration // for all seats to be healthy (default 2m)
	Flow         bool          // run Bob's flow in every seat once it is healthy
	Progress     io.Writer
}

// Ports are one seat's published ports.
type Ports struct{ KDC, Web, LDAP, SQL, LDAPS int }

// Seat is one attendee's lab.
type Seat struct {
	N        int
	Prefix   string // services, secrets, configs, the network: PREFIX-dc, PREFIX-web.keytab, ...
	Network  string
	Ports    Ports
	Address  string // where the ports are published (Options.Address)
	Password string // Bob's password in this seat
	Node     string // the node the seat's DC (and its directory volume) is placed on
	Flow     *dockerlab.FlowResult
	FlowErr  error
	FlowFrom string // "ws01", or "this host" when ws01 runs on another node

	lab *directory.Lab
}

// Workshop is a deployed set of seats.
type Workshop struct {
	Name        string
	Image       string
	Seats       []*Seat
	InitedSwarm bool // Up made the swarm (single node on 127.0.0.1)
	Nodes       int
	Publish     string // PublishIngress or PublishHost
	Timing      struct{ Deploy, Healthy, Flows, Total time.Duration }

	cli *engine.Client
}

// WebURL is the seat's page as an attendee opens it (with web.lab.local
// resolving to a node's address; the SPN stays HTTP/web.lab.local).
func (s *Seat) WebURL() string { return fmt.Sprintf("http://web.lab.local:%d/", s.Ports.Web) }

// KDCAddr is the seat's KDC at the published port.
func (s *Seat) KDCAddr() string { return net.JoinHostPort(s.Address, strconv.Itoa(s.Ports.KDC)) }

// Krb5Conf is the krb5.conf an attendee's machine uses for this seat (TCP to
// the published KDC port; only TCP is published).
func (s *Seat) Krb5Conf() string { return provision.HostKrb5Conf(s.lab, s.KDCAddr()) }

// Lab is the seat's lab file (with its passwords).
func (s *Seat) Lab() *directory.Lab { return s.lab.Clone() }

func (o *Options) defaults() {
	if o.Name == "" {
		o.Name = "workshop"
	}
	if o.Seats <= 0 {
		o.Seats = 1
	}
	if o.BasePort == 0 {
		o.BasePort = 30000
	}
	if o.Address == "" {
		o.Address = "127.0.0.1"
	}
	if o.ReadyTimeout == 0 {
		o.ReadyTimeout = 2 * time.Minute
	}
}

// ValidName reports whether name can name a workshop (it prefixes swarm
// object names: letters, digits and '-').
func ValidName(name string) error {
	if name == "" || len(name) > 32 {
		return fmt.Errorf("workshop name %q: 1 to 32 characters", name)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return fmt.Errorf("workshop name %q: only a-z, 0-9 and '-'", name)
		}
	}
	return nil
}

func seatPrefix(name string, n int) string { return fmt.Sprintf("%s-s%d", name, n) }

// progress prints numbered steps.
type progress struct {
	w        io.Writer
	n, total int
}

func (p *progress) step(format string, args ...any) {
	if p.w != nil {
		p.n++
		fmt.Fprintf(p.w, "[%d/%d] %s\n", p.n, p.total, fmt.Sprintf(format, args...))
	}
}

func (p *progress) detail(format string, args ...any) {
	if p.w != nil {
		fmt.Fprintf(p.w, "      %s\n", fmt.Sprintf(format, args...))
	}
}

// Up deploys a workshop: a swarm (made when asked and absent), the image,
// each seat's realm (fresh passwords, keytabs, directory), its network,
// secrets, configs and services; then waits until every seat answers on its
// published ports and, with Flow, runs Bob's flow in each. A workshop of
// the same name is removed first. On error the partial workshop is returned
// too (Down removes it).
func Up(ctx context.Context, o Options) (*Workshop, error) {
	o.defaults()
	if err := ValidName(o.Name); err != nil {
		return nil, err
	}
	if last := o.BasePort + portsPerSeat*o.Seats; o.BasePort < 1024 || last > 65535 {
		return nil, fmt.Errorf("ports %d–%d: outside 1024–65535", o.BasePort, last)
	}
	start := time.Now()
	p := &progress{w: o.Progress, total: 5}
	if o.Flow {
		p.total = 6
	}
	cli, err := dockerlab.APIClient(ctx)
	if err != nil {
		return nil, fmt.Errorf("docker engine not reachable: %w", err)
	}
	w := &Workshop{Name: o.Name, cli: cli}

	// 1. The swarm.
	nodes, inited, err := ensureSwarm(ctx, cli, o.InitSwarm)
	if err != nil {
		return nil, err
	}
	w.InitedSwarm, w.Nodes = inited, len(nodes)
	how := "this engine is a manager"
	if inited {
		how = "initialized a single-node swarm on 127.0.0.1 (workshop down --leave-swarm leaves it)"
	}
	switch w.Publish = o.Publish; w.Publish {
	case "":
		w.Publish = PublishIngress
		if !meshWorks() {
			w.Publish = PublishHost
			how += "; no IPVS in this kernel (no /proc/sys/net/ipv4/vs), so no routing mesh: each seat runs on one node and publishes its ports there"
		}
	case PublishIngress, PublishHost:
	default:
		return nil, fmt.Errorf("publish %q: want %s or %s", o.Publish, PublishIngress, PublishHost)
	}
	p.step("swarm: %d node(s), %s", len(nodes), how)
	if _, err := Down(ctx, o.Name, false); err != nil {
		return nil, fmt.Errorf("removing the previous workshop %s: %w", o.Name, err)
	}

	// 2. The image.
	img, err := dockerlab.EnsureImage(ctx, o.Image)
	if err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	w.Image = img.Ref
	p.step("image %s (%.1f MB)", img.Ref, float64(img.Size)/1e6)
	if len(nodes) > 1 {
		p.detail("%d nodes: every node needs the image. It is on this one; for each other node run", len(nodes))
		p.detail("  docker save %s | ssh NODE docker load", img.Ref)
		p.detail("or push it to your registry and pass --image REGISTRY/doublehop:TAG")
	}

	// 3. The seats' realms: fresh passwords, keytabs, directories.
	base := o.Lab
	if base == nil {
		base = directory.Default()
	}
	for n := 1; n <= o.Seats; n++ {
		s, err := newSeat(base, o, n)
		if err != nil {
			return w, fmt.Errorf("seat %d: %w", n, err)
		}
		nd := nodes[(n-1)%len(nodes)]
		s.Node = nd.ID
		if w.Publish == PublishHost && len(nodes) > 1 && nd.Addr != "" {
			s.Address = nd.Addr // the seat's ports are on its node only
		}
		w.Seats = append(w.Seats, s)
	}
	p.step("realms: %d seat(s) of %s, each with its own passwords and keys", o.Seats, base.Realm)

	// 4. Networks, secrets, configs, services.
	t := time.Now()
	if err := deployAll(ctx, cli, w, o); err != nil {
		return w, err
	}
	w.Timing.Deploy = time.Since(t)
	p.step("services: %d seat(s) × 4 (dc, web, sql, ws01) deployed in %s; ports from %d, 5 per seat, published %s", o.Seats, w.Timing.Deploy.Round(time.Millisecond), o.BasePort,
		map[string]string{PublishIngress: "through the routing mesh (any node's address)", PublishHost: "on each seat's node"}[w.Publish])

	// 5. Healthy: every seat answers on its published ports and from its ws01.
	t = time.Now()
	if err := waitHealthy(ctx, w, o.ReadyTimeout); err != nil {
		return w, err
	}
	w.Timing.Healthy = time.Since(t)
	p.step("healthy: %d seat(s) answer on %s in %s", o.Seats, o.Address, w.Timing.Healthy.Round(time.Millisecond))

	// 6. Bob's flow in every seat.
	if o.Flow {
		t = time.Now()
		err := w.Flows(ctx)
		w.Timing.Flows = time.Since(t)
		p.step("Bob's flow in every seat (%s):", w.Timing.Flows.Round(time.Millisecond))
		for _, s := range w.Seats {
			p.detail("seat %d: %s", s.N, s.FlowLine())
		}
		if err != nil {
			w.Timing.Total = time.Since(start)
			return w, err
		}
	}
	w.Timing.Total = time.Since(start)
	return w, nil
}

// newSeat is seat n's realm (provision.Seat) and its ports.
func newSeat(base *directory.Lab, o Options, n int) (*Seat, error) {
	l, pw, err := provision.Seat(base, n, o.PublicHosts)
	if err != nil {
		return nil, err
	}
	s := &Seat{N: n, Prefix: seatPrefix(o.Name, n), Address: o.Address, Password: pw, lab: l}
	s.Network = s.Prefix
	b := o.BasePort + portsPerSeat*(n-1)
	s.Ports = Ports{KDC: b + offKDC, Web: b + offWeb, LDAP: b + offLDAP, SQL: b + offSQL, LDAPS: b + offLDAPS}
	return s, nil
}

// waitHealthy waits until every seat answers on every published port: the
// KDC, LDAP and SQL accept a TCP connection, the web tier's /healthz says 200.
func waitHealthy(ctx context.Context, w *Workshop, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for _, s := range w.Seats {
		wg.Add(1)
		go func(s *Seat) {
			defer wg.Done()
			for {
				err := s.check(ctx)
				if err == nil {
					if err = w.inside(ctx, s); err == nil {
						return
					}
				}
				select {
				case <-ctx.Done():
					mu.Lock()
					errs = append(errs, fmt.Errorf("seat %d not healthy after %s: %v%s", s.N, timeout, err, w.taskErrors(context.WithoutCancel(ctx), s)))
					mu.Unlock()
					return
				case <-time.After(250 * time.Millisecond):
				}
			}
		}(s)
	}
	wg.Wait()
	return errors.Join(errs...)
}

// check probes the seat's published ports once.
func (s *Seat) check(ctx context.Context) error {
	for _, port := range []int{s.Ports.KDC, s.Ports.LDAP, s.Ports.SQL} {
		addr := net.JoinHostPort(s.Address, strconv.Itoa(port))
		c, err := (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		// The routing mesh accepts before a backend is there; a tier that
		// answers keeps the connection open, a missing one resets it.
		c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		var one [1]byte
		_, rerr := c.Read(one[:])
		c.Close()
		if rerr != nil && !isTimeout(rerr) {
			return fmt.Errorf("%s: %v", addr, rerr)
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://%s/healthz", net.JoinHostPort(s.Address, strconv.Itoa(s.Ports.Web))), nil)
	if err != nil {
		return err
	}
	hc := &http.Client{Timeout: 2 * time.Second}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("web /healthz: %s", resp.Status)
	}
	return nil
}

// inside checks the seat from its workstation: the lab's names resolve on
// the seat's network and its tiers answer there (when ws01 runs on this node).
func (w *Workshop) inside(ctx context.Context, s *Seat) error {
	id, err := w.Container(ctx, s, dockerlab.RoleClient)
	if err != nil {
		return err
	}
	var addrs []string
	for _, role := range []string{dockerlab.RoleKDC, dockerlab.RoleWeb, dockerlab.RoleSQL} {
		h := s.lab.HostByRole(role)
		port := map[string]int{dockerlab.RoleKDC: 88, dockerlab.RoleWeb: 80, dockerlab.RoleSQL: 1433}[role]
		if role == dockerlab.RoleSQL && h.Port != 0 {
			port = h.Port
		}
		addrs = append(addrs, net.JoinHostPort(h.Name, strconv.Itoa(port)))
	}
	r, err := dockerlab.ExecIn(ctx, w.cli, id, nil, append([]string{"probe", "--timeout", "1s"}, addrs...)...)
	if err != nil {
		return err
	}
	if r.ExitCode != 0 {
		return fmt.Errorf("from ws01: %s", strings.TrimSpace(r.Stderr))
	}
	return nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Flows runs Bob's flow in every seat from the seat's ws01 (four at a time).
func (w *Workshop) Flows(ctx context.Context) error {
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for _, s := range w.Seats {
		wg.Add(1)
		go func(s *Seat) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			s.Flow, s.FlowErr = w.Flow(ctx, s)
		}(s)
	}
	wg.Wait()
	var errs []error
	for _, s := range w.Seats {
		if s.FlowErr != nil {
			errs = append(errs, fmt.Errorf("seat %d: %w", s.N, s.FlowErr))
		}
	}
	return errors.Join(errs...)
}

// Flow runs Bob's flow in seat s from its ws01 when ws01 runs on this node
// (docker exec reaches only local containers), else from this host through
// the seat's published ports (HostFlow).
func (w *Workshop) Flow(ctx context.Context, s *Seat) (*dockerlab.FlowResult, error) {
	id, err := w.Container(ctx, s, dockerlab.RoleClient)
	if err != nil {
		s.FlowFrom = "this host"
		return w.HostFlow(ctx, s)
	}
	s.FlowFrom = "ws01"
	web := s.lab.HostByRole(dockerlab.RoleWeb)
	run := func(ctx context.Context, stdin io.Reader, args ...string) (dockerlab.ExecResult, error) {
		base := []string{"client", "--state", dockerlab.ClientState, "--krb5conf", dockerlab.Krb5ConfPath, "--ccache", "/tmp/krb5cc_bob"}
		if len(args) > 0 && args[0] == "kinit" {
			args = append([]string{"kinit", "--password-stdin"}, args[1:]...)
			stdin = strings.NewReader(s.Password + "\n")
		}
		return dockerlab.ExecIn(ctx, w.cli, id, stdin, append(base, args...)...)
	}
	return dockerlab.WorkstationFlow(ctx, run, "bob", "http://"+web.Name+"/", s.lab.NetBIOS)
}

// HostFlow is Bob's flow from this machine, as an attendee's laptop runs it:
// kinit against the seat's published KDC with the seat's krb5.conf, then the
// page at http://web.lab.local/ dialled at the seat's published web port (the
// SPN stays HTTP/web.lab.local).
func (w *Workshop) HostFlow(ctx context.Context, s *Seat) (*dockerlab.FlowResult, error) {
	dir, err := os.MkdirTemp("", "doublehop-seat-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	conf := filepath.Join(dir, "krb5.conf")
	if err := os.WriteFile(conf, []byte(s.Krb5Conf()), 0o600); err != nil {
		return nil, err
	}
	web := s.lab.HostByRole(dockerlab.RoleWeb).Name
	d, err := labnet.New(web + ":80=" + net.JoinHostPort(s.Address, strconv.Itoa(s.Ports.Web)))
	if err != nil {
		return nil, err
	}
	cfg := labclient.Config{CCache: "FILE:" + filepath.Join(dir, "cc"), Dialer: d}
	if err := labclient.FromKrb5Conf(conf, &cfg); err != nil {
		return nil, err
	}
	start := time.Now()
	f := &dockerlab.FlowResult{User: "bob", URL: "http://" + web + "/"}
	c := labclient.New(cfg)
	if _, err := c.Kinit(ctx, "bob", s.Password); err != nil {
		f.Kinit = dockerlab.ExecResult{ExitCode: 1, Stderr: err.Error()}
		return f, fmt.Errorf("kinit bob at %s: %w", s.KDCAddr(), err)
	}
	r, err := c.Get(ctx, f.URL, labclient.GetOptions{Accept: "application/json"})
	f.Duration = time.Since(start)
	if err != nil {
		f.Get = dockerlab.ExecResult{ExitCode: 1, Stderr: err.Error()}
		return f, fmt.Errorf("get %s: %w", f.URL, err)
	}
	var p webtier.Page
	if json.Unmarshal(r.Body, &p) == nil && p.RunningAs != "" {
		f.Page = &p
	}
	if r.Status != http.StatusOK || f.Page == nil {
		f.Get = dockerlab.ExecResult{ExitCode: 1, Stdout: string(r.Body), Stderr: fmt.Sprintf("HTTP %d", r.Status)}
		return f, fmt.Errorf("get %s: HTTP %d", f.URL, r.Status)
	}
	if !f.OK(s.lab.NetBIOS) {
		return f, fmt.Errorf("the second hop did not reach SQL Server as %s\\bob with Kerberos: %s", s.lab.NetBIOS, f.Summary())
	}
	return f, nil
}

// FlowLine is one line on what SQL Server said in the seat's flow.
func (s *Seat) FlowLine() string {
	switch {
	case s.Flow != nil && s.Flow.Page != nil && s.Flow.Page.SQL.Error == nil:
		p := s.Flow.Page
		line := fmt.Sprintf("%s %s", p.SQL.Login, p.SQL.AuthScheme)
		if s.FlowFrom == "this host" {
			line += " (from this host: ws01 runs on another node)"
		}
		if s.FlowErr != nil {
			line += " — " + s.FlowErr.Error()
		}
		return line
	case s.Flow != nil:
		return s.Flow.Summary()
	case s.FlowErr != nil:
		return "flow not run: " + s.FlowErr.Error()
	}
	return "flow not run"
}

// Container is the id of the running container of a seat's tier on this node.
func (w *Workshop) Container(ctx context.Context, s *Seat, role string) (string, error) {
	svc := s.Prefix + "-" + s.lab.HostByRole(role).Short
	r, err := w.cli.ContainerList(ctx, false, make(engine.Filters).Add("label", "com.docker.swarm.service.name="+svc).Add("status", "running"))
	if err != nil {
		return "", err
	}
	if len(r) == 0 {
		return "", fmt.Errorf("service %s has no running container on this node (docker service ps %s)", svc, svc)
	}
	return r[0].ID, nil
}

// WriteFiles writes the trainer's files to dir: seats.csv (seat, URL, KDC,
// krb5.conf file, Bob's password; 0600, it holds passwords) and one
// seat-N.krb5.conf per seat to hand out.
func (w *Workshop) WriteFiles(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	for _, s := range w.Seats {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seat-%d.krb5.conf", s.N)), []byte(s.Krb5Conf()), 0o644); err != nil {
			return "", err
		}
	}
	path := filepath.Join(dir, "seats.csv")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return "", err
	}
	if err := w.WriteCSV(f); err != nil {
		f.Close()
		return "", err
	}
	return path, f.Close()
}

// WriteCSV writes the seat table as CSV.
func (w *Workshop) WriteCSV(out io.Writer) error {
	cw := csv.NewWriter(out)
	cw.Write([]string{"seat", "url", "kdc", "ldap", "sql", "krb5_conf", "user", "password", "flow"})
	for _, s := range w.Seats {
		cw.Write([]string{strconv.Itoa(s.N), s.WebURL(), s.KDCAddr(), net.JoinHostPort(s.Address, strconv.Itoa(s.Ports.LDAP)),
			net.JoinHostPort(s.Address, strconv.Itoa(s.Ports.SQL)), fmt.Sprintf("seat-%d.krb5.conf", s.N), s.lab.NetBIOS + `\bob`, s.Password, s.FlowLine()})
	}
	cw.Flush()
	return cw.Error()
}

// WriteTable prints the seat table for the trainer's terminal.
func (w *Workshop) WriteTable(out io.Writer) {
	fmt.Fprintf(out, "%-5s %-34s %-17s %-20s %s\n", "seat", "page (web.lab.local → a node)", "kdc", "krb5.conf", "bob's password")
	for _, s := range w.Seats {
		fmt.Fprintf(out, "%-5d %-34s %-17s %-20s %s\n", s.N, s.WebURL(), s.KDCAddr(), fmt.Sprintf("seat-%d.krb5.conf", s.N), s.Password)
	}
}

// sortedSeats orders seat numbers found by label.
func sortedSeats(m map[int]bool) []int {
	var out []int
	for n := range m {
		out = append(out, n)
	}
	sort.Ints(out)
	return out
}
