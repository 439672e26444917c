package dockerlab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	mnet "github.com/moby/moby/api/types/network"

	"github.com/doublehop/doublehop/internal/engine"
)

// TierContainer is one tier's container as Run wants it started.
type TierContainer struct {
	Name       string // doublehop-LAB-<host>
	Image      string
	Cmd        []string
	Labels     map[string]string
	Hostname   string // the short host name (dc)
	Domainname string // lab.local
	Network    string // the lab network
	Aliases    []string
	Tmpfs      map[string]string
	Files      []File       // copied in before the start
	Ports      mnet.PortMap // published on loopback only
	ReadyLog   string       // the tier's line (on stderr) saying it serves
	Port       string       // the endpoint checked through its published port ("88/tcp"; "" none)
	Path       string       // for HTTP endpoints, the path that must answer 200
	Timeout    time.Duration
}

// A Starter creates a tier's container, starts it and waits until it is
// ready (ReadyLog seen, Port answering). It returns the container's ID
// whenever one was created, also with an error, so Run can remove it.
type Starter func(ctx context.Context, tc TierContainer) (id string, err error)

// EngineStarter starts tiers through the lab's own Docker API client.
func EngineStarter(cli *engine.Client) Starter {
	return func(ctx context.Context, tc TierContainer) (string, error) {
		exposed := mnet.PortSet{}
		for p := range tc.Ports {
			exposed[p] = struct{}{}
		}
		cfg := &container.Config{Image: tc.Image, Cmd: tc.Cmd, Labels: tc.Labels, Hostname: tc.Hostname, Domainname: tc.Domainname, ExposedPorts: exposed}
		hc := &container.HostConfig{NetworkMode: container.NetworkMode(tc.Network), Tmpfs: tc.Tmpfs, PortBindings: tc.Ports}
		nc := &mnet.NetworkingConfig{EndpointsConfig: map[string]*mnet.EndpointSettings{tc.Network: {Aliases: tc.Aliases}}}
		id, err := cli.ContainerCreate(ctx, tc.Name, cfg, hc, nc)
		if err != nil {
			return "", err
		}
		if len(tc.Files) > 0 {
			if err := copyIn(ctx, cli, id, tc.Files...); err != nil {
				return id, err
			}
		}
		if err := cli.ContainerStart(ctx, id); err != nil {
			return id, err
		}
		if tc.Timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, tc.Timeout)
			defer cancel()
		}
		inspect := func(ctx context.Context) (*container.InspectResponse, error) {
			ins, err := cli.ContainerInspect(ctx, id)
			return &ins, err
		}
		if err := waitLog(ctx, cli, id, tc.ReadyLog, inspect); err != nil {
			return id, err
		}
		if tc.Port == "" {
			return id, nil
		}
		return id, WaitPublished(ctx, inspect, tc.Port, tc.Path)
	}
}

// waitLog polls the container's stderr until it holds line (the tiers print
// their ready line there; stdout carries the events, never re-read here).
func waitLog(ctx context.Context, cli *engine.Client, id, line string, inspect Inspector) error {
	for {
		_, e, err := logsOf(ctx, cli, id, false, true, "")
		if err == nil && strings.Contains(e, line) {
			return nil
		}
		if ins, ierr := inspect(ctx); ierr == nil && ins.State != nil && !ins.State.Running && ins.State.Status != "created" {
			return &exited{ins.State.ExitCode}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %q in the log: %w", line, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// An Inspector reads a container's state (engine.Client.ContainerInspect,
// or testcontainers-go's StrategyTarget.Inspect).
type Inspector func(ctx context.Context) (*container.InspectResponse, error)

// hostAddr is the published address of a container port.
func hostAddr(ctx context.Context, inspect Inspector, port string) (string, error) {
	ins, err := inspect(ctx)
	if err != nil {
		return "", err
	}
	if ins.State != nil && !ins.State.Running {
		return "", &exited{ins.State.ExitCode}
	}
	p, err := mnet.ParsePort(port)
	if err != nil {
		return "", err
	}
	if ins.NetworkSettings == nil {
		return "", nil
	}
	for _, b := range ins.NetworkSettings.Ports[p] {
		if b.HostPort == "" || b.HostPort == "0" {
			continue
		}
		ip := "127.0.0.1"
		if b.HostIP.IsValid() && !b.HostIP.IsUnspecified() {
			ip = b.HostIP.String()
		}
		return net.JoinHostPort(ip, b.HostPort), nil
	}
	return "", nil
}

type exited struct{ code int }

func (e *exited) Error() string { return fmt.Sprintf("the container exited with status %d", e.code) }

// WaitPublished waits until a container port answers at its published host
// address (the lab publishes on loopback only), and for HTTP until path
// returns 200. It dials the binding itself rather than guess the host from
// the environment.
func WaitPublished(ctx context.Context, inspect Inspector, port, path string) error {
	hc := &http.Client{Timeout: 2 * time.Second}
	var last error
	for {
		addr, err := hostAddr(ctx, inspect, port)
		var ex *exited
		switch {
		case errors.As(err, &ex):
			return err
		case err != nil:
			last = err
		case addr == "":
			last = fmt.Errorf("port %s not published yet", port)
		case path == "":
			var c net.Conn
			if c, last = (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "tcp", addr); last == nil {
				c.Close()
				return nil
			}
		default:
			req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+path, nil)
			resp, err := hc.Do(req)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					return nil
				}
				err = fmt.Errorf("GET %s: %s", path, resp.Status)
			}
			last = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
