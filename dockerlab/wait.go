package dockerlab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	mnet "github.com/moby/moby/api/types/network"
	"github.com/testcontainers/testcontainers-go/wait"
)

// published waits until a container port answers at its published host
// address (127.0.0.1:port), and for HTTP until path returns 200. Unlike
// wait.ForListeningPort it dials the binding itself: testcontainers-go guesses
// the host from the environment (a /.dockerenv file makes it use the default
// gateway), while the lab publishes on loopback only.
type published struct {
	port string // "88/tcp"
	path string // HTTP path, "" for a TCP connect
}

var _ wait.Strategy = published{}

// hostAddr is the published address of a container port.
func hostAddr(ctx context.Context, target wait.StrategyTarget, port string) (string, error) {
	ins, err := target.Inspect(ctx)
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

func (w published) WaitUntilReady(ctx context.Context, target wait.StrategyTarget) error {
	hc := &http.Client{Timeout: 2 * time.Second}
	var last error
	for {
		addr, err := hostAddr(ctx, target, w.port)
		var ex *exited
		switch {
		case errors.As(err, &ex):
			return err
		case err != nil:
			last = err
		case addr == "":
			last = fmt.Errorf("port %s not published yet", w.port)
		case w.path == "":
			var c net.Conn
			if c, last = (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "tcp", addr); last == nil {
				c.Close()
				return nil
			}
		default:
			req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+w.path, nil)
			resp, err := hc.Do(req)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					return nil
				}
				err = fmt.Errorf("GET %s: %s", w.path, resp.Status)
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
