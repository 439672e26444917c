package workshop

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/doublehop/doublehop/dockerlab"
	"github.com/doublehop/doublehop/internal/engine"
	"github.com/doublehop/doublehop/lab"
	"github.com/doublehop/doublehop/provision"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/swarm"
)

// SeedPath is where a seat's DC finds its provisioned directory (a secret);
// the DC copies it into its state volume on first start (kdc --seed).
const SeedPath = "/etc/doublehop/directory.seed.yaml"

// ensureSwarm returns the ready nodes' ids, making a single-node swarm on
// loopback when the engine is in none and init is set.
func ensureSwarm(ctx context.Context, cli *engine.Client, init bool) (nodes []node, inited bool, err error) {
	info, err := cli.Info(ctx)
	if err != nil {
		return nil, false, err
	}
	sw := info.Swarm
	switch {
	case sw.LocalNodeState == swarm.LocalNodeStateInactive && init:
		nodeID, err := cli.SwarmInit(ctx, swarm.InitRequest{ListenAddr: "127.0.0.1:2377", AdvertiseAddr: "127.0.0.1"})
		if err != nil {
			return nil, false, fmt.Errorf("docker swarm init: %w", err)
		}
		inited = true
		if err := labelNode(ctx, cli, nodeID); err != nil {
			return nil, true, err
		}
	case sw.LocalNodeState == swarm.LocalNodeStateInactive:
		return nil, false, fmt.Errorf("this Docker engine is not in a swarm: make one (one machine: docker swarm init --advertise-addr 127.0.0.1; several: docker swarm init, then docker swarm join on each node) or pass --init-swarm")
	case sw.LocalNodeState != swarm.LocalNodeStateActive:
		return nil, false, fmt.Errorf("this Docker engine's swarm is %s: %s", sw.LocalNodeState, sw.Error)
	case !sw.ControlAvailable:
		return nil, false, fmt.Errorf("this Docker engine is a swarm worker: run the workshop on a manager (docker node ls there)")
	}
	nl, err := cli.NodeList(ctx)
	if err != nil {
		return nil, inited, err
	}
	for _, n := range nl {
		if n.Status.State == swarm.NodeStateReady && n.Spec.Availability == swarm.NodeAvailabilityActive {
			nodes = append(nodes, node{ID: n.ID, Addr: n.Status.Addr, Name: n.Description.Hostname})
		}
	}
	if len(nodes) == 0 {
		return nil, inited, fmt.Errorf("no swarm node is ready and active (docker node ls)")
	}
	return nodes, inited, nil
}

// node is a swarm node seats can be placed on.
type node struct{ ID, Addr, Name string }

// meshWorks reports whether this machine's kernel has IPVS, which the routing
// mesh (ingress publishing) and services' virtual IPs need.
func meshWorks() bool {
	_, err := os.Stat("/proc/sys/net/ipv4/vs")
	return err == nil
}

// labelNode marks the node: doublehop made this swarm, so Down may leave it.
func labelNode(ctx context.Context, cli *engine.Client, id string) error {
	n, err := cli.NodeInspect(ctx, id)
	if err != nil {
		return err
	}
	spec := n.Spec
	if spec.Labels == nil {
		spec.Labels = map[string]string{}
	}
	spec.Labels[LabelSwarmInit] = "true"
	err = cli.NodeUpdate(ctx, id, n.Version, spec)
	return err
}

// deployAll creates every seat's objects, several seats at a time.
func deployAll(ctx context.Context, cli *engine.Client, w *Workshop, o Options) error {
	sem := make(chan struct{}, 4)
	errc := make(chan error, len(w.Seats))
	for _, s := range w.Seats {
		go func(s *Seat) {
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := deploySeat(ctx, cli, w, s); err != nil {
				errc <- fmt.Errorf("seat %d: %w", s.N, err)
				return
			}
			errc <- nil
		}(s)
	}
	var errs []error
	for range w.Seats {
		if err := <-errc; err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (w *Workshop) labels(s *Seat, role string) map[string]string {
	m := map[string]string{LabelWorkshop: w.Name, LabelSeat: strconv.Itoa(s.N), dockerlab.LabelOwner: "workshop", dockerlab.LabelImage: w.Image,
		// Each seat is a stack to the docker CLI: docker stack ls, docker stack ps NAME-sN.
		"com.docker.stack.namespace": s.Prefix}
	if role != "" {
		m[dockerlab.LabelRole] = role
	}
	return m
}

// deploySeat makes one seat: its overlay network, a secret for each key or
// directory file, a config for each settings file and the krb5.conf, and a
// service per tier with the host's real name as its network alias.
func deploySeat(ctx context.Context, cli *engine.Client, w *Workshop, s *Seat) error {
	mode := swarm.PortConfigPublishModeIngress
	if w.Publish == PublishHost {
		mode = swarm.PortConfigPublishModeHost
	}
	plan, err := provision.Plan(s.lab)
	if err != nil {
		return err
	}
	nrID, err := cli.NetworkCreate(ctx, network.CreateRequest{Name: s.Network, Driver: "overlay", Scope: "swarm", Labels: w.labels(s, "")})
	if err != nil {
		return fmt.Errorf("network %s: %w", s.Network, err)
	}
	for _, t := range plan {
		spec := swarm.ServiceSpec{
			Annotations: swarm.Annotations{Name: s.Prefix + "-" + t.Host.Short, Labels: w.labels(s, t.Role)},
			TaskTemplate: swarm.TaskSpec{
				ContainerSpec: &swarm.ContainerSpec{
					Image:    w.Image,
					Args:     t.Cmd,
					Hostname: t.Host.Name,
					Labels:   w.labels(s, t.Role),
					Mounts:   []mount.Mount{{Type: mount.TypeTmpfs, Target: "/tmp", TmpfsOptions: &mount.TmpfsOptions{SizeBytes: 16 << 20, Mode: 0o1777}}},
				},
				Networks:      []swarm.NetworkAttachmentConfig{{Target: nrID, Aliases: []string{t.Host.Name, t.Host.Short}}},
				RestartPolicy: &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionAny, Delay: ptr(time.Second)},
				// One seat's load cannot take another's memory, nor more than
				// a core per tier: the measured idle tier is 10–13 MiB, a
				// loaded one under 160 MiB.
				Resources: &swarm.ResourceRequirements{Limits: &swarm.Limit{MemoryBytes: 256 << 20, NanoCPUs: 1e9}, Reservations: &swarm.Resources{MemoryBytes: 16 << 20}},
			},
		}
		cs := spec.TaskTemplate.ContainerSpec
		for _, f := range t.Files {
			name := s.Prefix + "-" + t.Host.Short + "-" + path.Base(f.Path)
			target := f.Path
			if f.Path == dockerlab.DirectoryYML {
				target = SeedPath
			}
			if f.Mode&0o077 == 0 { // keytabs and the directory (passwords): secrets
				secretID, err := cli.SecretCreate(ctx, swarm.SecretSpec{Annotations: swarm.Annotations{Name: name, Labels: w.labels(s, t.Role)}, Data: f.Content})
				if err != nil {
					return fmt.Errorf("secret %s: %w", name, err)
				}
				cs.Secrets = append(cs.Secrets, &swarm.SecretReference{SecretID: secretID, SecretName: name,
					File: &swarm.SecretReferenceFileTarget{Name: target, UID: "0", GID: "0", Mode: 0o400}})
				continue
			}
			configID, err := cli.ConfigCreate(ctx, swarm.ConfigSpec{Annotations: swarm.Annotations{Name: name, Labels: w.labels(s, t.Role)}, Data: f.Content})
			if err != nil {
				return fmt.Errorf("config %s: %w", name, err)
			}
			cs.Configs = append(cs.Configs, &swarm.ConfigReference{ConfigID: configID, ConfigName: name,
				File: &swarm.ConfigReferenceFileTarget{Name: target, UID: "0", GID: "0", Mode: 0o444}})
		}
		publish := func(target, published int) swarm.PortConfig {
			return swarm.PortConfig{Protocol: network.TCP, TargetPort: uint32(target), PublishedPort: uint32(published), PublishMode: mode}
		}
		if mode == swarm.PortConfigPublishModeHost {
			// Without the mesh: the seat lives on its node, its ports are
			// that node's, and names resolve to the tasks themselves.
			spec.TaskTemplate.Placement = &swarm.Placement{Constraints: []string{"node.id==" + s.Node}}
			spec.EndpointSpec = &swarm.EndpointSpec{Mode: swarm.ResolutionModeDNSRR}
		}
		switch t.Role {
		case dockerlab.RoleKDC:
			cs.Args = append(cs.Args, "--seed", SeedPath)
			// The directory lives on a volume: a killed DC comes back with
			// every change made to it (setspn, LDAP writes) on this node.
			cs.Mounts = append(cs.Mounts, mount.Mount{Type: mount.TypeVolume, Source: s.Prefix + "-dc-state", Target: dockerlab.StateDir,
				VolumeOptions: &mount.VolumeOptions{Labels: w.labels(s, t.Role)}})
			spec.TaskTemplate.Placement = &swarm.Placement{Constraints: []string{"node.id==" + s.Node}}
			ports(&spec, publish(88, s.Ports.KDC), publish(lab.LDAPPort, s.Ports.LDAP), publish(lab.LDAPSPort, s.Ports.LDAPS))
			cs.Healthcheck = health("--kerberos", s.lab.Realm, "127.0.0.1:88")
		case dockerlab.RoleWeb:
			ports(&spec, publish(80, s.Ports.Web))
			cs.Healthcheck = health("--http", "/healthz", "127.0.0.1:80")
		case dockerlab.RoleSQL:
			p, _ := strconv.Atoi(strings.TrimSuffix(t.Port, "/tcp"))
			ports(&spec, publish(p, s.Ports.SQL))
			cs.Healthcheck = health(fmt.Sprintf("127.0.0.1:%d", p))
		}
		if _, err := cli.ServiceCreate(ctx, spec); err != nil {
			return fmt.Errorf("service %s: %w", spec.Name, err)
		}
	}
	return nil
}

func ports(spec *swarm.ServiceSpec, p ...swarm.PortConfig) {
	if spec.EndpointSpec == nil {
		spec.EndpointSpec = &swarm.EndpointSpec{}
	}
	spec.EndpointSpec.Ports = p
}

// health is a tier's health check: `doublehop probe` inside its container.
func health(args ...string) *container.HealthConfig {
	return &container.HealthConfig{Test: append([]string{"CMD", dockerlab.Binary, "probe"}, args...),
		Interval: 2 * time.Second, Timeout: 2 * time.Second, Retries: 3, StartPeriod: 10 * time.Second}
}

func ptr[T any](v T) *T { return &v }

// taskErrors says why a seat's tasks are not running (a missing image on a
// node, a port taken), for the error of a seat that never became healthy.
func (w *Workshop) taskErrors(ctx context.Context, s *Seat) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	r, err := w.cli.TaskList(ctx, make(engine.Filters).Add("label", LabelSeat+"="+strconv.Itoa(s.N)).Add("label", LabelWorkshop+"="+w.Name))
	if err != nil {
		return ""
	}
	var out []string
	for _, t := range r {
		if t.DesiredState == swarm.TaskStateRunning && t.Status.State != swarm.TaskStateRunning {
			msg := fmt.Sprintf("%s %s", t.Status.State, t.Status.Message)
			if t.Status.Err != "" {
				msg += ": " + t.Status.Err
			}
			if strings.Contains(t.Status.Err, "No such image") {
				msg += fmt.Sprintf(" (the node lacks the image: docker save %s | ssh NODE docker load)", w.Image)
			}
			out = append(out, msg)
		}
	}
	if len(out) == 0 {
		return ""
	}
	return "; tasks: " + strings.Join(out, "; ")
}

// Removed counts what Down removed.
type Removed struct {
	Services, Networks, Secrets, Configs, Volumes int
	Left                                          bool   // left the swarm doublehop made
	Note                                          string // what could not be undone, and why
}

func (r Removed) String() string {
	s := fmt.Sprintf("%d services, %d networks, %d secrets, %d configs, %d volumes", r.Services, r.Networks, r.Secrets, r.Configs, r.Volumes)
	if r.Left {
		s += "; left the swarm"
	}
	if r.Note != "" {
		s += "; " + r.Note
	}
	return s
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// Down removes every service, network, secret, config and volume labelled
// with the workshop's name. With leaveSwarm it also leaves the swarm when
// doublehop made it and nothing else runs in it. An engine in no swarm has
// nothing to remove.
func Down(ctx context.Context, name string, leaveSwarm bool) (Removed, error) {
	var rm Removed
	cli, err := dockerlab.APIClient(ctx)
	if err != nil {
		return rm, err
	}
	info, err := cli.Info(ctx)
	if err != nil {
		return rm, err
	}
	if info.Swarm.LocalNodeState != swarm.LocalNodeStateActive || !info.Swarm.ControlAvailable {
		return rm, removeVolumes(ctx, cli, name, &rm)
	}
	f := make(engine.Filters).Add("label", LabelWorkshop+"="+name)
	var errs []error
	sl, err := cli.ServiceList(ctx, f, false)
	if err != nil {
		return rm, err
	}
	for _, s := range sl {
		if err := cli.ServiceRemove(ctx, s.ID); err != nil && !engine.IsNotFound(err) {
			errs = append(errs, err)
			continue
		}
		rm.Services++
	}
	// The tasks' containers go after their services; secrets in use, the
	// networks they are attached to and the volumes wait for them.
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		cl, err := cli.ContainerList(ctx, true, f)
		if err != nil || len(cl) == 0 {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	nl, err := cli.NetworkList(ctx, f)
	if err == nil {
		for _, n := range nl {
			var rerr error
			for i := 0; i < 20; i++ { // the overlay's endpoints are released a moment after the containers
				if rerr = cli.NetworkRemove(ctx, n.ID); rerr == nil || engine.IsNotFound(rerr) {
					break
				}
				time.Sleep(250 * time.Millisecond)
			}
			if rerr != nil && !engine.IsNotFound(rerr) {
				errs = append(errs, rerr)
				continue
			}
			rm.Networks++
		}
	}
	if sl, err := cli.SecretList(ctx, f); err == nil {
		for _, s := range sl {
			if err := cli.SecretRemove(ctx, s.ID); err != nil && !engine.IsNotFound(err) {
				errs = append(errs, err)
				continue
			}
			rm.Secrets++
		}
	}
	if cl, err := cli.ConfigList(ctx, f); err == nil {
		for _, c := range cl {
			if err := cli.ConfigRemove(ctx, c.ID); err != nil && !engine.IsNotFound(err) {
				errs = append(errs, err)
				continue
			}
			rm.Configs++
		}
	}
	if err := removeVolumes(ctx, cli, name, &rm); err != nil {
		errs = append(errs, err)
	}
	if leaveSwarm && len(errs) == 0 {
		if err := leaveIfOurs(ctx, cli, info.Swarm.NodeID, &rm); err != nil {
			errs = append(errs, err)
		}
	}
	return rm, errors.Join(errs...)
}

// removeVolumes removes the workshop's volumes on this node (a DC's
// directory); other nodes' volumes go with `docker volume prune` there.
func removeVolumes(ctx context.Context, cli *engine.Client, name string, rm *Removed) error {
	vl, err := cli.VolumeList(ctx, make(engine.Filters).Add("label", LabelWorkshop+"="+name))
	if err != nil {
		return err
	}
	var errs []error
	for _, v := range vl {
		if err := cli.VolumeRemove(ctx, v.Name); err != nil && !engine.IsNotFound(err) {
			errs = append(errs, err)
			continue
		}
		rm.Volumes++
	}
	return errors.Join(errs...)
}

// leaveIfOurs leaves the swarm when doublehop made it (the node's label)
// and no service of anyone's remains in it.
func leaveIfOurs(ctx context.Context, cli *engine.Client, nodeID string, rm *Removed) error {
	n, err := cli.NodeInspect(ctx, nodeID)
	if err != nil || n.Spec.Labels[LabelSwarmInit] != "true" {
		return err
	}
	sl, err := cli.ServiceList(ctx, nil, false)
	if err != nil {
		return err
	}
	if len(sl) > 0 {
		return nil
	}
	if err = cli.SwarmLeave(ctx, true); err != nil {
		return err
	}
	// The bridge the swarm made for its containers' external traffic goes
	// too, once the engine has released the last endpoint on it.
	var rerr error
	for i := 0; i < 40; i++ {
		if rerr = cli.NetworkRemove(ctx, "docker_gwbridge"); rerr == nil || engine.IsNotFound(rerr) {
			rm.Left = true
			return nil
		}
		time.Sleep(250 * time.Millisecond)
	}
	// dockerd 20.10 can keep a killed task's gateway endpoint after the
	// swarm is gone; the bridge is harmless and only a daemon restart frees it.
	rm.Note = fmt.Sprintf("left the swarm; docker_gwbridge stays (%v; dockerd keeps a stale endpoint until it restarts)", firstLine(rerr.Error()))
	rm.Left = true
	return nil
}
