package engine

import (
	"context"
	"io"
	"net/url"
	"strconv"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

// ContainerCreate creates a container (POST /containers/create).
func (c *Client) ContainerCreate(ctx context.Context, name string, cfg *container.Config, hc *container.HostConfig, nc *network.NetworkingConfig) (string, error) {
	q := url.Values{}
	if name != "" {
		q.Set("name", name)
	}
	return c.create(ctx, "/containers/create", q, container.CreateRequest{Config: cfg, HostConfig: hc, NetworkingConfig: nc})
}

// ContainerStart starts a created or stopped container.
func (c *Client) ContainerStart(ctx context.Context, id string) error {
	return c.call(ctx, request{method: "POST", path: "/containers/" + id + "/start"}, nil)
}

// ContainerKill sends a signal ("KILL", "TERM", ...).
func (c *Client) ContainerKill(ctx context.Context, id, signal string) error {
	return c.call(ctx, request{method: "POST", path: "/containers/" + id + "/kill", query: url.Values{"signal": {signal}}}, nil)
}

// ContainerRemove removes a container, killing it when force is set, with
// its anonymous volumes.
func (c *Client) ContainerRemove(ctx context.Context, id string, force bool) error {
	q := url.Values{"v": {"1"}}
	if force {
		q.Set("force", "1")
	}
	return c.call(ctx, request{method: "DELETE", path: "/containers/" + id, query: q}, nil)
}

// ContainerInspect returns a container's state and settings.
func (c *Client) ContainerInspect(ctx context.Context, id string) (container.InspectResponse, error) {
	var res container.InspectResponse
	err := c.call(ctx, request{method: "GET", path: "/containers/" + id + "/json"}, &res)
	return res, err
}

// ContainerList lists containers (all: stopped ones too) matching f.
func (c *Client) ContainerList(ctx context.Context, all bool, f Filters) ([]container.Summary, error) {
	q := url.Values{}
	if all {
		q.Set("all", "1")
	}
	if len(f) > 0 {
		q.Set("filters", f.encode())
	}
	var res []container.Summary
	err := c.call(ctx, request{method: "GET", path: "/containers/json", query: q}, &res)
	return res, err
}

// ContainerLogs returns a container's log stream, stdout and stderr
// multiplexed (read it with Demux); tail "" is all of it.
func (c *Client) ContainerLogs(ctx context.Context, id string, stdout, stderr bool, tail string) (io.ReadCloser, error) {
	q := url.Values{"stdout": {strconv.FormatBool(stdout)}, "stderr": {strconv.FormatBool(stderr)}}
	if tail != "" {
		q.Set("tail", tail)
	}
	resp, err := c.do(ctx, request{method: "GET", path: "/containers/" + id + "/logs", query: q})
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// ContainerStats is one sample of a container's resource use.
func (c *Client) ContainerStats(ctx context.Context, id string) (container.StatsResponse, error) {
	var res container.StatsResponse
	err := c.call(ctx, request{method: "GET", path: "/containers/" + id + "/stats", query: url.Values{"stream": {"false"}, "one-shot": {"true"}}}, &res)
	return res, err
}

// CopyToContainer extracts a tar archive at dir inside the container.
func (c *Client) CopyToContainer(ctx context.Context, id, dir string, tar io.Reader) error {
	return c.call(ctx, request{method: "PUT", path: "/containers/" + id + "/archive", query: url.Values{"path": {dir}}, body: tar}, nil)
}

// CopyFromContainer returns a tar archive of path inside the container.
func (c *Client) CopyFromContainer(ctx context.Context, id, path string) (io.ReadCloser, error) {
	resp, err := c.do(ctx, request{method: "GET", path: "/containers/" + id + "/archive", query: url.Values{"path": {path}}})
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// ExecCreate prepares a command in a running container.
func (c *Client) ExecCreate(ctx context.Context, id string, cmd []string, stdin bool) (string, error) {
	var res container.ExecCreateResponse
	err := c.call(ctx, request{method: "POST", path: "/containers/" + id + "/exec",
		json: container.ExecCreateRequest{AttachStdout: true, AttachStderr: true, AttachStdin: stdin, Cmd: cmd}}, &res)
	return res.ID, err
}

// ExecAttach starts an exec and returns its stream (stdin in, stdout and
// stderr multiplexed out).
func (c *Client) ExecAttach(ctx context.Context, execID string) (*Hijacked, error) {
	return c.hijack(ctx, request{method: "POST", path: "/exec/" + execID + "/start", json: container.ExecStartRequest{}})
}

// ExecInspect reports whether an exec still runs and its exit code.
func (c *Client) ExecInspect(ctx context.Context, execID string) (container.ExecInspectResponse, error) {
	var res container.ExecInspectResponse
	err := c.call(ctx, request{method: "GET", path: "/exec/" + execID + "/json"}, &res)
	return res, err
}
