package engine

import (
	"context"

	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/volume"
)

// NetworkCreate creates a network and returns its ID.
func (c *Client) NetworkCreate(ctx context.Context, req network.CreateRequest) (string, error) {
	return c.create(ctx, "/networks/create", nil, req)
}

// NetworkInspect returns a network's settings (subnets, containers).
func (c *Client) NetworkInspect(ctx context.Context, id string) (network.Inspect, error) {
	var res network.Inspect
	err := c.call(ctx, request{method: "GET", path: "/networks/" + id}, &res)
	return res, err
}

// NetworkList lists networks matching f.
func (c *Client) NetworkList(ctx context.Context, f Filters) ([]network.Summary, error) {
	q := f.values()
	var res []network.Summary
	err := c.call(ctx, request{method: "GET", path: "/networks", query: q}, &res)
	return res, err
}

// NetworkRemove removes a network.
func (c *Client) NetworkRemove(ctx context.Context, id string) error {
	return c.call(ctx, request{method: "DELETE", path: "/networks/" + id}, nil)
}

// VolumeList lists volumes matching f.
func (c *Client) VolumeList(ctx context.Context, f Filters) ([]volume.Volume, error) {
	q := f.values()
	var res volume.ListResponse
	err := c.call(ctx, request{method: "GET", path: "/volumes", query: q}, &res)
	return res.Volumes, err
}

// VolumeRemove removes a volume.
func (c *Client) VolumeRemove(ctx context.Context, name string) error {
	return c.call(ctx, request{method: "DELETE", path: "/volumes/" + name}, nil)
}
