package engine

import (
	"context"
	"net/url"
	"strconv"

	"github.com/moby/moby/api/types/swarm"
)

// SwarmInit makes this engine a one-node swarm and returns the node's ID.
func (c *Client) SwarmInit(ctx context.Context, req swarm.InitRequest) (string, error) {
	var id string
	err := c.call(ctx, request{method: "POST", path: "/swarm/init", json: req}, &id)
	return id, err
}

// SwarmLeave leaves the swarm (force: even as its last manager).
func (c *Client) SwarmLeave(ctx context.Context, force bool) error {
	return c.call(ctx, request{method: "POST", path: "/swarm/leave", query: url.Values{"force": {strconv.FormatBool(force)}}}, nil)
}

// NodeList lists the swarm's nodes.
func (c *Client) NodeList(ctx context.Context) ([]swarm.Node, error) {
	var res []swarm.Node
	err := c.call(ctx, request{method: "GET", path: "/nodes"}, &res)
	return res, err
}

// NodeInspect returns one node.
func (c *Client) NodeInspect(ctx context.Context, id string) (swarm.Node, error) {
	var res swarm.Node
	err := c.call(ctx, request{method: "GET", path: "/nodes/" + id}, &res)
	return res, err
}

// NodeUpdate replaces a node's spec at the version read.
func (c *Client) NodeUpdate(ctx context.Context, id string, version swarm.Version, spec swarm.NodeSpec) error {
	return c.call(ctx, request{method: "POST", path: "/nodes/" + id + "/update",
		query: url.Values{"version": {strconv.FormatUint(version.Index, 10)}}, json: spec}, nil)
}

// ServiceCreate creates a service and returns its ID.
func (c *Client) ServiceCreate(ctx context.Context, spec swarm.ServiceSpec) (string, error) {
	return c.create(ctx, "/services/create", nil, spec)
}

// ServiceList lists services matching f; status adds running/desired task counts.
func (c *Client) ServiceList(ctx context.Context, f Filters, status bool) ([]swarm.Service, error) {
	q := f.values()
	if status {
		q.Set("status", "true")
	}
	var res []swarm.Service
	err := c.call(ctx, request{method: "GET", path: "/services", query: q}, &res)
	return res, err
}

// ServiceRemove removes a service.
func (c *Client) ServiceRemove(ctx context.Context, id string) error {
	return c.call(ctx, request{method: "DELETE", path: "/services/" + id}, nil)
}

// TaskList lists tasks matching f.
func (c *Client) TaskList(ctx context.Context, f Filters) ([]swarm.Task, error) {
	q := f.values()
	var res []swarm.Task
	err := c.call(ctx, request{method: "GET", path: "/tasks", query: q}, &res)
	return res, err
}

// SecretCreate stores a secret and returns its ID.
func (c *Client) SecretCreate(ctx context.Context, spec swarm.SecretSpec) (string, error) {
	return c.create(ctx, "/secrets/create", nil, spec)
}

// SecretList lists secrets matching f.
func (c *Client) SecretList(ctx context.Context, f Filters) ([]swarm.Secret, error) {
	var res []swarm.Secret
	err := c.call(ctx, request{method: "GET", path: "/secrets", query: f.values()}, &res)
	return res, err
}

// SecretRemove removes a secret.
func (c *Client) SecretRemove(ctx context.Context, id string) error {
	return c.call(ctx, request{method: "DELETE", path: "/secrets/" + id}, nil)
}

// ConfigCreate stores a config and returns its ID.
func (c *Client) ConfigCreate(ctx context.Context, spec swarm.ConfigSpec) (string, error) {
	return c.create(ctx, "/configs/create", nil, spec)
}

// ConfigList lists configs matching f.
func (c *Client) ConfigList(ctx context.Context, f Filters) ([]swarm.Config, error) {
	var res []swarm.Config
	err := c.call(ctx, request{method: "GET", path: "/configs", query: f.values()}, &res)
	return res, err
}

// ConfigRemove removes a config.
func (c *Client) ConfigRemove(ctx context.Context, id string) error {
	return c.call(ctx, request{method: "DELETE", path: "/configs/" + id}, nil)
}
