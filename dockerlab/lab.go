package dockerlab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/doublehop/doublehop/directory"
	"github.com/doublehop/doublehop/events"
	"github.com/doublehop/doublehop/internal/atomicfile"
	"github.com/doublehop/doublehop/internal/engine"
	"github.com/doublehop/doublehop/lab"
	"github.com/doublehop/doublehop/labnet"
	"github.com/doublehop/doublehop/provision"
	"github.com/doublehop/doublehop/scenarios"
	mnet "github.com/moby/moby/api/types/network"
)

// Ports are the lab's endpoints published on the host's loopback (0: any free port).
type Ports struct {
	KDC   int // dc.lab.local:88 (TCP)
	Web   int // web.lab.local:80
	SQL   int // sql.lab.local:1433
	LDAP  int // dc.lab.local:389, the DC's LDAP
	LDAPS int // dc.lab.local:636, LDAP over TLS
}

// DefaultPorts are a stable block of loopback ports for a lab name, so a
// trainer's URLs do not change between runs: the lab "default" gets 10088
// (KDC), 10080 (web) and 11433 (SQL); any other name a block of ten ports in
// 20000–29999 derived from the name.
func DefaultPorts(name string) Ports {
	if name == "default" {
		return Ports{KDC: 10088, Web: 10080, SQL: 11433, LDAP: 10389, LDAPS: 10636}
	}
	h := fnv.New32a()
	h.Write([]byte(name))
	base := 20000 + int(h.Sum32()%1000)*10
	return Ports{Web: base, KDC: base + 8, SQL: base + 3, LDAP: base + 9, LDAPS: base + 6}
}

// free reports whether every non-zero port can be bound on 127.0.0.1 now.
func (p Ports) free() bool {
	for _, n := range []int{p.KDC, p.Web, p.SQL, p.LDAP, p.LDAPS} {
		if n == 0 {
			continue
		}
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(n))
		if err != nil {
			return false
		}
		ln.Close()
	}
	return true
}

// config is what the options set.
type config struct {
	name         string
	owner        string
	seed         *directory.Lab
	labFile      string
	scenario     string
	image        ImageOptions
	ports        Ports
	portsSet     bool
	stateDir     string
	progress     io.Writer
	readyTimeout time.Duration
	starter      Starter
	flow         bool
	flowUser     string
	ensured      *Image
}

// Option configures Run (and Attach).
type Option func(*config)

// WithName names the lab: containers doublehop-NAME-<host>, network
// doublehop-NAME. A lab of that name that already exists is removed first.
// Default: a random name (tests).
func WithName(name string) Option { return func(c *config) { c.name = name } }

// WithLab starts the lab from this lab file contents instead of the default lab.
func WithLab(l *directory.Lab) Option { return func(c *config) { c.seed = l.Clone() } }

// WithLabFile starts the lab from a lab file (see directory/default.yaml).
func WithLabFile(path string) Option { return func(c *config) { c.labFile = path } }

// WithScenario starts the lab with a catalog scenario's setup applied (the
// broken state the scenario begins in); run its steps with RunScenario.
func WithScenario(id string) Option { return func(c *config) { c.scenario = id } }

// WithImage runs an existing image instead of building one.
func WithImage(ref string) Option { return func(c *config) { c.image.Ref = ref } }

// WithBinary builds the image from this static linux binary instead of the source.
func WithBinary(path string) Option { return func(c *config) { c.image.Binary = path } }

// WithEnsuredImage uses an image EnsureImage already returned (Run reports
// how it was made instead of checking again).
func WithEnsuredImage(img Image) Option { return func(c *config) { c.ensured = &img } }

// WithPorts publishes the endpoints on these loopback ports (0: any free port,
// the default for tests).
func WithPorts(p Ports) Option { return func(c *config) { c.ports, c.portsSet = p, true } }

// WithStateDir keeps the host-side files (krb5.conf, lab.env, hosts, the host
// clients' caches and events) in dir instead of a temporary directory.
func WithStateDir(dir string) Option { return func(c *config) { c.stateDir = dir } }

// WithProgress writes one line per step ("[2/5] image doublehop:… (cached)") to w.
func WithProgress(w io.Writer) Option { return func(c *config) { c.progress = w } }

// WithReadyTimeout bounds the wait for each tier (default 60s).
func WithReadyTimeout(d time.Duration) Option { return func(c *config) { c.readyTimeout = d } }

// WithStarter starts the tiers' containers with s instead of the lab's own
// Docker API client (package labtest starts them with testcontainers-go).
func WithStarter(s Starter) Option { return func(c *config) { c.starter = s } }

// WithFlow runs Bob's flow from ws01 once the lab is ready (Lab.FirstFlow).
func WithFlow(user string) Option { return func(c *config) { c.flow, c.flowUser = true, user } }

// WithOwner sets the owner label ("labtest" by default; `doublehop lab` uses "cli").
// Sweep removes only leftovers of owner "labtest".
func WithOwner(owner string) Option { return func(c *config) { c.owner = owner } }

// Tier is one container of the lab.
type Tier struct {
	Role      string // kdc, web, sql, client
	Host      string // dc.lab.local
	Short     string // dc
	Container string // doublehop-NAME-dc
	ID        string
	State     string // running, exited, ...
	HostPort  int    // published loopback port (0 for ws01)
}

// Lab is a running container lab.
type Lab struct {
	// KDC88 is the KDC published on port 88 of a loopback address of this
	// lab's own (127.0.1.N:88), for tools that only talk to port 88; "" when
	// that address was taken.
	KDC88     string
	Name      string
	Network   string
	Image     string
	Realm     string
	NetBIOS   string
	Ports     Ports
	StateDir  string           // host side: krb5.conf, lab.env, hosts, events/, ccache/
	Tiers     map[string]*Tier // by role
	FirstFlow *FlowResult      // Bob's flow when run with WithFlow
	Timing    Timing

	cli       *engine.Client
	lab       *directory.Lab // the lab file the containers started from (hosts, realm)
	base      *directory.Lab // the lab file before any scenario setup (what Reset(nil) restores)
	dialer    *labnet.Dialer
	tempState bool
	owner     string

	mu        sync.Mutex
	pushed    map[string]string // settings last copied into web/sql
	viewRaw   string
	zoneLab   *directory.Lab // the DNS zone as last read; Admin and Reset clear it
	view      *directory.View
	hostEv    *events.JSONWriter
	ccacheDir string
}

// Timing is how long each phase of Run took.
type Timing struct {
	Image, Provision, Network, Tiers, Flow, Total time.Duration
}

// progress prints numbered steps.
type progress struct {
	w     io.Writer
	n     int
	total int
}

func (p *progress) step(format string, args ...any) {
	p.n++
	if p.w != nil {
		fmt.Fprintf(p.w, "[%d/%d] %s\n", p.n, p.total, fmt.Sprintf(format, args...))
	}
}

func (p *progress) detail(format string, args ...any) {
	if p.w != nil {
		fmt.Fprintf(p.w, "      %s\n", fmt.Sprintf(format, args...))
	}
}

func randomName() string {
	b := make([]byte, 4)
	rand.Read(b)
	return "t" + hex.EncodeToString(b)
}

// ContainerName is the container of a host in lab name: doublehop-NAME-SHORT.
func ContainerName(lab, short string) string { return "doublehop-" + lab + "-" + short }

// NetworkName is the lab's network: doublehop-NAME.
func NetworkName(lab string) string { return "doublehop-" + lab }

// ValidName reports whether name can name a lab (container and network names).
func ValidName(name string) error {
	if name == "" || len(name) > 40 {
		return fmt.Errorf("lab name %q: 1 to 40 characters", name)
	}
	for i, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || i > 0 && (r == '-' || r == '_' || r == '.')
		if !ok {
			return fmt.Errorf("lab name %q: use lower-case letters, digits, '-', '_' or '.', starting with a letter or digit", name)
		}
	}
	return nil
}

// Run starts a lab: image, provisioning (directory, per-tier keytabs and
// settings), the lab network, dc/web/sql/ws01 with their real host names,
// and waits until every tier is ready. On error it returns the partial lab
// too, so the caller can Terminate it.
func Run(ctx context.Context, opts ...Option) (*Lab, error) {
	c := config{owner: "labtest", readyTimeout: 60 * time.Second, flowUser: "bob"}
	for _, o := range opts {
		o(&c)
	}
	if c.name == "" {
		c.name = randomName()
	}
	if err := ValidName(c.name); err != nil {
		return nil, err
	}
	start := time.Now()
	p := &progress{w: c.progress, total: 5}
	if c.flow {
		p.total = 6
	}
	cli, err := dockerClient(ctx)
	if err != nil {
		return nil, fmt.Errorf("docker engine not reachable: %w", err)
	}
	if c.starter == nil {
		c.starter = EngineStarter(cli)
	}

	// Leftovers of a lab with this name (a killed run, a previous `lab up`).
	if err := Down(ctx, c.name); err != nil {
		return nil, fmt.Errorf("removing the previous lab %s: %w", c.name, err)
	}

	// 1. The image.
	t := time.Now()
	var img Image
	if c.ensured != nil {
		img = *c.ensured
	} else if img, err = EnsureImage(ctx, c.image); err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	how := "cached"
	if !img.Cached {
		how = fmt.Sprintf("imported in %s", img.ImportTime.Round(time.Millisecond))
	}
	p.step("image %s (%s, %.1f MB; binary: %s %s)", img.Ref, how, float64(img.Size)/1e6, img.Built, img.BuildTime.Round(time.Millisecond))
	l := &Lab{Name: c.name, Network: NetworkName(c.name), Image: img.Ref, cli: cli, Tiers: map[string]*Tier{}, owner: c.owner,
		pushed: map[string]string{}}
	l.Timing.Image = time.Since(t)

	// 2. The realm: lab file, scenario setup, per-tier files.
	t = time.Now()
	seed := c.seed
	if c.labFile != "" {
		if seed, err = directory.ReadFile(c.labFile); err != nil {
			return nil, err
		}
	}
	if seed == nil {
		seed = directory.Default()
	}
	l.base = seed.Clone()
	var setupNote string
	if c.scenario != "" {
		s, err := scenarios.Find(c.scenario)
		if err != nil {
			return nil, err
		}
		if seed, err = applySetup(seed, s.Setup); err != nil {
			return nil, fmt.Errorf("scenario %s: %w", s.ID, err)
		}
		setupNote = fmt.Sprintf("; scenario %s set up (%d commands)", s.ID, len(s.Setup))
	}
	specs, err := plan(seed)
	if err != nil {
		return nil, err
	}
	l.lab, l.Realm, l.NetBIOS = seed, seed.Realm, seed.NetBIOS
	var kt []string
	for _, s := range specs {
		if s.host.RunsAs != "" {
			kt = append(kt, s.host.Short+": "+s.host.RunsAs)
		}
	}
	p.step("realm %s: directory on %s, keytabs %s%s", seed.Realm, seed.HostByRole(RoleKDC).Short, strings.Join(kt, ", "), setupNote)
	if err := l.initState(c.stateDir); err != nil {
		return l, err
	}
	l.Timing.Provision = time.Since(t)

	// 3. The network.
	t = time.Now()
	labels := map[string]string{LabelLab: c.name, LabelOwner: c.owner, LabelPID: strconv.Itoa(os.Getpid()), LabelHost: hostname(), LabelImage: img.Ref}
	subnet, err := createNetwork(ctx, cli, l.Network, labels)
	if err != nil {
		return l, fmt.Errorf("network %s: %w", l.Network, err)
	}
	p.step("network %s (%s)", l.Network, subnet)
	l.Timing.Network = time.Since(t)

	// 4. The tiers, all at once; each is ready when it says so and answers.
	t = time.Now()
	ports := c.ports
	if !c.portsSet {
		ports = Ports{}
	}
	if ports != (Ports{}) && !ports.free() {
		p.detail("ports %d/%d/%d are taken: using free ports instead", ports.KDC, ports.Web, ports.SQL)
		ports = Ports{}
	}
	// Tools that only talk to port 88 (impacket) get the KDC on 88 of a
	// loopback address of this lab's own, so many labs coexist.
	l.KDC88 = kdc88Addr(l.Name)
	p.step("tiers %s: starting", joinShorts(specs))
	type result struct {
		spec tierSpec
		id   string
		took time.Duration
		err  error
	}
	results := make(chan result, len(specs))
	for _, s := range specs {
		go func(s tierSpec) {
			t0 := time.Now()
			ports := ports
			var id string
			var err error
			for attempt := 1; ; attempt++ {
				id, err = c.starter(ctx, tierContainer(c, l, s, labels, ports))
				// A loopback port another process took between the engine's
				// choice (or our check) and its bind: try again on a free one.
				if err == nil || attempt == 3 || !portTaken(err) || ctx.Err() != nil {
					break
				}
				if s.role == RoleKDC {
					l.KDC88 = "" // another lab may hold this lab's 127.0.1.N:88 (names that hash alike)
				}
				if id != "" {
					cli.ContainerRemove(ctx, id, true)
				}
				ports = Ports{}
			}
			results <- result{s, id, time.Since(t0), err}
		}(s)
	}
	var errs []error
	for range specs {
		r := <-results
		if r.id != "" {
			l.Tiers[r.spec.role] = &Tier{Role: r.spec.role, Host: r.spec.host.Name, Short: r.spec.host.Short,
				Container: ContainerName(c.name, r.spec.host.Short), ID: r.id}
		}
		if r.err != nil {
			errs = append(errs, tierError(ctx, cli, r.spec, r.id, r.err))
			p.detail("%-5s FAILED after %s", r.spec.host.Short, r.took.Round(time.Millisecond))
			continue
		}
		p.detail("%-5s ready in %s  (%s)", r.spec.host.Short, r.took.Round(time.Millisecond), r.spec.host.Name)
	}
	l.Timing.Tiers = time.Since(t)
	if len(errs) > 0 {
		return l, errors.Join(errs...)
	}
	if err := l.refresh(ctx); err != nil {
		return l, err
	}
	for _, s := range specs {
		if s.role == RoleWeb || s.role == RoleSQL {
			l.pushed[s.role] = string(s.files[1].Content)
		}
	}
	if err := l.writeHostFiles(); err != nil {
		return l, err
	}
	p.step("endpoints: kdc 127.0.0.1:%d  ldap 127.0.0.1:%d (ldaps %d)  web 127.0.0.1:%d  sql 127.0.0.1:%d", l.Ports.KDC, l.Ports.LDAP, l.Ports.LDAPS, l.Ports.Web, l.Ports.SQL)
	if l.KDC88 != "" {
		p.detail("dc also on %s:88, :389 and :636 (TCP) for tools that only talk to the well-known ports, such as impacket: -dc-ip %s", l.DCAddr(), l.DCAddr())
	}

	// 5. Bob's flow, from ws01, through the lab's own DNS names.
	if c.flow {
		t = time.Now()
		fr, err := l.Flow(ctx, c.flowUser)
		l.Timing.Flow = time.Since(t)
		l.FirstFlow = fr
		if err != nil {
			p.step("Bob's flow from ws01: %s", fr.Summary())
			l.Timing.Total = time.Since(start)
			return l, err
		}
		p.step("Bob's flow from ws01: %s", fr.Summary())
	}
	l.Timing.Total = time.Since(start)
	return l, nil
}

func portTaken(err error) bool {
	m := err.Error()
	return strings.Contains(m, "address already in use") || strings.Contains(m, "port is already allocated")
}

func joinShorts(specs []tierSpec) string {
	var s []string
	for _, t := range specs {
		s = append(s, t.host.Short)
	}
	return strings.Join(s, ", ")
}

func hostname() string {
	h, _ := os.Hostname()
	return h
}

// tierContainer is one tier's container: name, command, labels, host names
// on the lab network, files, and its endpoints on loopback.
func tierContainer(c config, l *Lab, s tierSpec, labels map[string]string, ports Ports) TierContainer {
	lb := map[string]string{LabelRole: s.role}
	for k, v := range labels {
		lb[k] = v
	}
	tc := TierContainer{Name: ContainerName(c.name, s.host.Short), Image: l.Image, Cmd: s.cmd, Labels: lb,
		Hostname: s.host.Short, Domainname: s.domain(), Network: l.Network, Aliases: []string{s.host.Name, s.host.Short},
		Tmpfs: map[string]string{"/tmp": "rw,mode=1777,size=16m"}, Files: s.files, ReadyLog: s.ready, Timeout: c.readyTimeout}
	if s.port == "" {
		return tc
	}
	hostPort := 0
	switch s.role {
	case RoleKDC:
		hostPort = ports.KDC
	case RoleWeb:
		hostPort = ports.Web
	case RoleSQL:
		hostPort = ports.SQL
	}
	bind := func(p string, host int) []mnet.PortBinding {
		binds := []mnet.PortBinding{{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: strconv.Itoa(host)}}
		if s.role == RoleKDC && l.KDC88 != "" {
			// The DC on its own loopback address at the well-known ports (88, 389).
			ip, _, _ := net.SplitHostPort(l.KDC88)
			inner, _, _ := strings.Cut(p, "/")
			binds = append(binds, mnet.PortBinding{HostIP: netip.MustParseAddr(ip), HostPort: inner})
		}
		return binds
	}
	tc.Ports = mnet.PortMap{mnet.MustParsePort(s.port): bind(s.port, hostPort)}
	for _, x := range s.extra {
		host := ports.LDAP
		if x == fmt.Sprintf("%d/tcp", lab.LDAPSPort) {
			host = ports.LDAPS
		}
		tc.Ports[mnet.MustParsePort(x)] = bind(x, host)
	}
	tc.Port = s.port
	if s.role == RoleWeb {
		tc.Path = "/healthz"
	}
	return tc
}

// tierError says which tier failed and why, with the end of its log.
func tierError(ctx context.Context, cli *engine.Client, s tierSpec, id string, err error) error {
	msg := fmt.Sprintf("tier %s (%s, %s): %v", s.host.Short, s.host.Name, s.role, firstLine(err.Error()))
	if id != "" {
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if ins, ierr := cli.ContainerInspect(lctx, id); ierr == nil && ins.State != nil && !ins.State.Running {
			msg += fmt.Sprintf(" (the container exited with status %d)", ins.State.ExitCode)
		}
		if _, e, lerr := logsOf(lctx, cli, id, false, true, "15"); lerr == nil && strings.TrimSpace(e) != "" {
			msg += "\n    last log lines:\n      " + strings.ReplaceAll(strings.TrimSpace(e), "\n", "\n      ")
		}
	}
	return errors.New(msg)
}

// createNetwork makes the lab's bridge network. When the engine's default
// address pools are used up (about 30 networks on a stock engine), it takes a
// free /24 from 10.213.0.0/16 instead, so a workshop host can hold more labs.
func createNetwork(ctx context.Context, cli *engine.Client, name string, labels map[string]string) (string, error) {
	id, err := cli.NetworkCreate(ctx, mnet.CreateRequest{Name: name, Driver: "bridge", Labels: labels})
	if err == nil {
		return subnetOf(ctx, cli, id), nil
	}
	if !strings.Contains(err.Error(), "non-overlapping") && !strings.Contains(err.Error(), "address pool") {
		return "", err
	}
	used := map[netip.Prefix]bool{}
	if nl, lerr := cli.NetworkList(ctx, nil); lerr == nil {
		for _, n := range nl {
			for _, c := range n.IPAM.Config {
				used[c.Subnet.Masked()] = true
			}
		}
	}
	for i := 0; i < 256; i++ {
		pfx := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 213, byte(i), 0}), 24)
		if used[pfx] {
			continue
		}
		gw := netip.AddrFrom4([4]byte{10, 213, byte(i), 1})
		_, err2 := cli.NetworkCreate(ctx, mnet.CreateRequest{Name: name, Driver: "bridge", Labels: labels,
			IPAM: &mnet.IPAM{Config: []mnet.IPAMConfig{{Subnet: pfx, Gateway: gw}}}})
		if err2 == nil {
			return pfx.String(), nil
		}
		if !strings.Contains(err2.Error(), "overlap") {
			return "", err2
		}
	}
	return "", err
}

func subnetOf(ctx context.Context, cli *engine.Client, id string) string {
	ins, err := cli.NetworkInspect(ctx, id)
	if err != nil {
		return "?"
	}
	for _, c := range ins.IPAM.Config {
		return c.Subnet.String()
	}
	return "?"
}

// Attach returns the running lab called name (made by Run or `doublehop lab up`).
// Options: WithStateDir for the host-side files (default: a temporary directory).
func Attach(ctx context.Context, name string, opts ...Option) (*Lab, error) {
	c := config{}
	for _, o := range opts {
		o(&c)
	}
	cli, err := dockerClient(ctx)
	if err != nil {
		return nil, fmt.Errorf("docker engine not reachable: %w", err)
	}
	l := &Lab{Name: name, Network: NetworkName(name), cli: cli, Tiers: map[string]*Tier{}, pushed: map[string]string{}}
	if err := l.refresh(ctx); err != nil {
		return nil, err
	}
	if len(l.Tiers) == 0 {
		return nil, fmt.Errorf("no lab %q (start one with: doublehop lab up --name %s)", name, name)
	}
	dc := l.Tiers[RoleKDC]
	if dc == nil || dc.State != "running" {
		return nil, fmt.Errorf("lab %q: its KDC container is not running (doublehop lab up --name %s replaces it)", name, name)
	}
	raw, err := copyOut(ctx, cli, dc.ID, DirectoryYML)
	if err != nil {
		return nil, fmt.Errorf("lab %q: reading the directory: %w", name, err)
	}
	lf, err := directory.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("lab %q: %w", name, err)
	}
	l.lab, l.Realm, l.NetBIOS = lf, lf.Realm, lf.NetBIOS
	if err := l.refresh(ctx); err != nil { // now with the host names
		return nil, err
	}
	for _, role := range []string{RoleWeb, RoleSQL} {
		if t := l.Tiers[role]; t != nil {
			if b, err := copyOut(ctx, cli, t.ID, SettingsPath(role)); err == nil {
				l.pushed[role] = string(b)
			}
		}
	}
	if err := l.initState(c.stateDir); err != nil {
		return nil, err
	}
	l.base = directory.Default()
	if b, err := os.ReadFile(filepath.Join(l.StateDir, baseFile)); err == nil {
		if bl, err := directory.Parse(b); err == nil {
			l.base = bl
		}
	}
	return l, l.writeHostFiles()
}

// baseFile keeps, on the host, the lab file a lab started from (Reset restores it).
const baseFile = "lab.yaml"

// refresh reads the lab's containers (ids, states, published ports) from the engine.
func (l *Lab) refresh(ctx context.Context) error {
	res, err := l.cli.ContainerList(ctx, true, engine.LabelFilter(LabelLab+"="+l.Name))
	if err != nil {
		return err
	}
	for _, s := range res {
		role := s.Labels[LabelRole]
		if role == "" {
			continue
		}
		t := l.Tiers[role]
		if t == nil {
			t = &Tier{Role: role}
			l.Tiers[role] = t
		}
		t.ID, t.State = s.ID, string(s.State)
		if len(s.Names) > 0 {
			t.Container = strings.TrimPrefix(s.Names[0], "/")
			t.Short = strings.TrimPrefix(t.Container, "doublehop-"+l.Name+"-")
		}
		if l.Image == "" {
			l.Image = s.Labels[LabelImage]
		}
		if l.owner == "" {
			l.owner = s.Labels[LabelOwner]
		}
		for _, p := range s.Ports {
			if p.PublicPort == 0 || p.Type != "tcp" || p.IP != netip.MustParseAddr("127.0.0.1") {
				continue // the 127.0.1.N bindings at the well-known ports are KDC88's
			}
			if role == RoleKDC && p.PrivatePort == lab.LDAPPort {
				l.Ports.LDAP = int(p.PublicPort)
				continue
			}
			if role == RoleKDC && p.PrivatePort == lab.LDAPSPort {
				l.Ports.LDAPS = int(p.PublicPort)
				continue
			}
			t.HostPort = int(p.PublicPort)
		}
		switch role {
		case RoleKDC:
			l.Ports.KDC = t.HostPort
		case RoleWeb:
			l.Ports.Web = t.HostPort
		case RoleSQL:
			l.Ports.SQL = t.HostPort
		}
	}
	if l.lab != nil {
		for role, t := range l.Tiers {
			if h := l.lab.HostByRole(role); h != nil {
				t.Host, t.Short = h.Name, h.Short
			}
		}
	}
	return nil
}

// initState prepares the host-side directory.
func (l *Lab) initState(dir string) error {
	if dir == "" {
		d, err := os.MkdirTemp("", "doublehop-lab-"+l.Name+"-")
		if err != nil {
			return err
		}
		dir, l.tempState = d, true
	}
	l.StateDir = dir
	l.ccacheDir = filepath.Join(dir, "ccache")
	return os.MkdirAll(l.ccacheDir, 0o700)
}

// writeHostFiles writes krb5.conf, hosts and lab.env for people and tools on
// this host, and builds the dialer that maps the lab's names to the published ports.
func (l *Lab) writeHostFiles() error {
	l.dialer = labnet.NewEmpty()
	var hosts strings.Builder
	hosts.WriteString("# lab host names for clients on this host (each tier is published on its own loopback port)\n")
	for _, h := range l.lab.Hosts {
		port, inner := 0, 0
		switch h.Role {
		case RoleKDC:
			port, inner = l.Ports.KDC, 88
		case RoleWeb:
			port, inner = l.Ports.Web, 80
		case RoleSQL:
			port, inner = l.Ports.SQL, provision.SQLPort(l.lab)
		}
		fmt.Fprintf(&hosts, "127.0.0.1 %s %s\n", h.Name, h.Short)
		if port == 0 {
			continue
		}
		to := "127.0.0.1:" + strconv.Itoa(port)
		for _, n := range []string{h.Name, h.Short} {
			l.dialer.Map(n+":"+strconv.Itoa(inner), to)
			if h.Role == RoleKDC && l.Ports.LDAP != 0 {
				l.dialer.Map(n+":"+strconv.Itoa(lab.LDAPPort), l.LDAPAddr())
			}
			if h.Role == RoleWeb {
				l.dialer.Map(n+":"+strconv.Itoa(port), to) // http://web.lab.local:PORT/ as lab.env shows it
			}
		}
	}
	files := map[string]string{
		"krb5.conf": hostKrb5Conf(l.lab, l.KDCAddr()),
		"hosts":     hosts.String(),
	}
	if l.base != nil {
		b, err := l.base.Marshal()
		if err != nil {
			return err
		}
		files[baseFile] = string(b)
	}
	env := map[string]string{
		"DOUBLEHOP_LAB":            l.Name,
		"DOUBLEHOP_STATE":          l.StateDir,
		"DOUBLEHOP_REALM":          l.Realm,
		"DOUBLEHOP_KDC":            l.KDCAddr(),
		"DOUBLEHOP_WEB_ADDR":       l.WebAddr(),
		"DOUBLEHOP_WEB_URL":        fmt.Sprintf("http://%s:%d/", l.hostName(RoleWeb), l.Ports.Web),
		"DOUBLEHOP_SQL_ADDR":       l.SQLAddr(),
		"DOUBLEHOP_KDC_88":         l.KDC88, // the KDC on port 88 of this lab's loopback address ("" when taken)
		"DOUBLEHOP_LDAP":           "ldap://" + l.LDAPAddr(),
		"DOUBLEHOP_LDAPS":          "ldaps://127.0.0.1:" + strconv.Itoa(l.Ports.LDAPS),
		"DOUBLEHOP_NETWORK":        l.Network,
		"DOUBLEHOP_IMAGE":          l.Image,
		"DOUBLEHOP_BOB_PASSWORD":   l.Password("bob"),
		"DOUBLEHOP_ALICE_PASSWORD": l.Password("alice"),
		"KRB5_CONFIG":              filepath.Join(l.StateDir, "krb5.conf"),
		"KRB5CCNAME":               filepath.Join(l.ccacheDir, "krb5cc"), // a plain path: MIT and impacket both read it
	}
	var keys []string
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	fmt.Fprintf(&b, "# doublehop container lab %q: source this file (. %s) to use MIT tools and curl from this host\n", l.Name, filepath.Join(l.StateDir, "lab.env"))
	for _, k := range keys {
		fmt.Fprintf(&b, "export %s='%s'\n", k, strings.ReplaceAll(env[k], "'", `'\''`))
	}
	files["lab.env"] = b.String()
	for name, content := range files {
		mode := os.FileMode(0o644)
		if name == "lab.env" || name == baseFile {
			mode = 0o600
		}
		if err := atomicfile.WriteFile(filepath.Join(l.StateDir, name), []byte(content), mode); err != nil {
			return err
		}
	}
	return nil
}

func (l *Lab) hostName(role string) string {
	if l.lab != nil {
		if h := l.lab.HostByRole(role); h != nil {
			return h.Name
		}
	}
	return role + ".lab.local"
}

// LDAPAddr is the DC's LDAP service on this host (127.0.0.1:port).
func (l *Lab) LDAPAddr() string { return "127.0.0.1:" + strconv.Itoa(l.Ports.LDAP) }

// DCAddr is the DC's own loopback address (127.0.1.N) where it answers on
// the well-known ports 88 and 389; "" when that address was taken.
func (l *Lab) DCAddr() string {
	ip, _, _ := net.SplitHostPort(l.KDC88)
	return ip
}

// KDCAddr is the KDC on this host (127.0.0.1:port, TCP).
func (l *Lab) KDCAddr() string { return "127.0.0.1:" + strconv.Itoa(l.Ports.KDC) }

// WebAddr is the web tier on this host.
func (l *Lab) WebAddr() string { return "127.0.0.1:" + strconv.Itoa(l.Ports.Web) }

// WebURL is the site as a browser on this host reaches it.
func (l *Lab) WebURL() string { return "http://" + l.WebAddr() + "/" }

// SQLAddr is the SQL tier on this host.
func (l *Lab) SQLAddr() string { return "127.0.0.1:" + strconv.Itoa(l.Ports.SQL) }

// Krb5Conf is the host-side krb5.conf's path (KRB5_CONFIG for MIT tools).
func (l *Lab) Krb5Conf() string { return filepath.Join(l.StateDir, "krb5.conf") }

// Env is the host-side lab.env's path.
func (l *Lab) Env() string { return filepath.Join(l.StateDir, "lab.env") }

// Dialer maps the lab's names (dc.lab.local:88, web.lab.local:80, web:80,
// sql.lab.local:1433) to the published loopback ports.
func (l *Lab) Dialer() *labnet.Dialer { return l.dialer }

// LabFile is the lab file the containers started from.
func (l *Lab) LabFile() *directory.Lab { return l.lab.Clone() }

// Password is a user's current password from the directory (the lab shows
// its passwords on purpose).
func (l *Lab) Password(user string) string {
	l.mu.Lock()
	v := l.view
	l.mu.Unlock()
	if v != nil {
		if a := v.Lab.Account(user); a != nil {
			return a.Password
		}
	}
	if l.lab != nil {
		if a := l.lab.Account(user); a != nil {
			return a.Password
		}
	}
	return ""
}

// Terminate removes the lab's containers and network, and its host-side
// files when they were temporary.
func (l *Lab) Terminate(ctx context.Context) error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	if l.hostEv != nil {
		l.hostEv.Close()
		l.hostEv = nil
	}
	l.mu.Unlock()
	err := Down(ctx, l.Name)
	if l.tempState && l.StateDir != "" {
		os.RemoveAll(l.StateDir)
	}
	return err
}

// Cleanup registers Terminate with a test; call it right after Run, before
// checking Run's error.
func Cleanup(tb interface {
	Helper()
	Cleanup(func())
	Logf(string, ...any)
}, l *Lab) {
	tb.Helper()
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if err := l.Terminate(ctx); err != nil {
			tb.Logf("dockerlab: terminate %s: %v", l.Name, err)
		}
	})
}

// Down removes every container and network labelled with the lab's name
// (running or not, from any run). It is idempotent.
func Down(ctx context.Context, name string) error {
	cli, err := dockerClient(ctx)
	if err != nil {
		return err
	}
	return removeByFilter(ctx, cli, engine.LabelFilter(LabelLab+"="+name))
}

func removeByFilter(ctx context.Context, cli *engine.Client, f engine.Filters) error {
	res, err := cli.ContainerList(ctx, true, f)
	if err != nil {
		return err
	}
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for _, s := range res {
		wg.Add(1)
		go func(id string) {
			defer wg.Done()
			err := cli.ContainerRemove(ctx, id, true)
			if err != nil && !engine.IsNotFound(err) && !strings.Contains(err.Error(), "already in progress") {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}(s.ID)
	}
	wg.Wait()
	nets, err := cli.NetworkList(ctx, f)
	if err != nil {
		return err
	}
	for _, n := range nets {
		if err := cli.NetworkRemove(ctx, n.ID); err != nil && !engine.IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Summary describes a lab present in the engine.
type Summary struct {
	Name    string
	Owner   string
	Image   string
	Created time.Time
	Tiers   map[string]string // role → state
	Ports   Ports
}

// Running reports whether every tier runs.
func (s Summary) Running() bool {
	for _, st := range s.Tiers {
		if st != "running" {
			return false
		}
	}
	return len(s.Tiers) > 0
}

// List returns the labs in the engine (any owner), by name.
func List(ctx context.Context) ([]Summary, error) {
	cli, err := dockerClient(ctx)
	if err != nil {
		return nil, err
	}
	res, err := cli.ContainerList(ctx, true, engine.LabelFilter(LabelLab))
	if err != nil {
		return nil, err
	}
	by := map[string]*Summary{}
	for _, c := range res {
		n := c.Labels[LabelLab]
		s := by[n]
		if s == nil {
			s = &Summary{Name: n, Owner: c.Labels[LabelOwner], Image: c.Labels[LabelImage], Tiers: map[string]string{}}
			by[n] = s
		}
		if t := time.Unix(c.Created, 0); s.Created.IsZero() || t.Before(s.Created) {
			s.Created = t
		}
		role := c.Labels[LabelRole]
		s.Tiers[role] = string(c.State)
		for _, p := range c.Ports {
			if p.PublicPort == 0 || p.Type != "tcp" {
				continue
			}
			switch role {
			case RoleKDC:
				s.Ports.KDC = int(p.PublicPort)
			case RoleWeb:
				s.Ports.Web = int(p.PublicPort)
			case RoleSQL:
				s.Ports.SQL = int(p.PublicPort)
			}
		}
	}
	// Networks whose containers are gone (a run killed between the two).
	if nets, err := cli.NetworkList(ctx, engine.LabelFilter(LabelLab)); err == nil {
		for _, n := range nets {
			name := n.Labels[LabelLab]
			if by[name] == nil {
				by[name] = &Summary{Name: name, Owner: n.Labels[LabelOwner], Image: n.Labels[LabelImage], Tiers: map[string]string{}}
			}
		}
	}
	var out []Summary
	for _, s := range by {
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Sweep removes the leftovers of test runs that were killed before their
// cleanup ran: labs of owner "labtest" made on this machine by a process that
// no longer exists. It returns the names it removed.
func Sweep(ctx context.Context) ([]string, error) {
	cli, err := dockerClient(ctx)
	if err != nil {
		return nil, err
	}
	me := hostname()
	seen := map[string]bool{}
	var names []string
	check := func(labels map[string]string) {
		name := labels[LabelLab]
		if name == "" || seen[name] || labels[LabelOwner] != "labtest" || labels[LabelHost] != me {
			return
		}
		seen[name] = true
		pid, err := strconv.Atoi(labels[LabelPID])
		if err != nil || pid <= 0 || !alive(pid) {
			names = append(names, name)
		}
	}
	res, err := cli.ContainerList(ctx, true, engine.LabelFilter(LabelOwner+"=labtest"))
	if err != nil {
		return nil, err
	}
	for _, c := range res {
		check(c.Labels)
	}
	if nets, err := cli.NetworkList(ctx, engine.LabelFilter(LabelOwner+"=labtest")); err == nil {
		for _, n := range nets {
			check(n.Labels)
		}
	}
	var errs []error
	for _, n := range names {
		if err := Down(ctx, n); err != nil {
			errs = append(errs, err)
		}
	}
	return names, errors.Join(errs...)
}

// alive reports whether a process exists and is not a zombie (a killed test
// binary whose parent has not reaped it yet is gone for our purpose).
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	if err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil {
		if i := strings.LastIndexByte(string(b), ')'); i >= 0 && i+2 < len(b) && b[i+2] == 'Z' {
			return false
		}
	}
	return true
}

// kdc88Addr picks 127.0.1.N:88 for a lab name (N from its hash), or "" when
// something already listens there.
func kdc88Addr(name string) string {
	h := fnv.New32a()
	h.Write([]byte(name))
	addr := fmt.Sprintf("127.0.1.%d:88", 1+h.Sum32()%250)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return ""
	}
	ln.Close()
	return addr
}
