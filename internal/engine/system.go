package engine

import (
	"context"

	"github.com/moby/moby/api/types/system"
)

// Info is the engine's GET /info: drivers, cgroups, CPUs, memory, swarm state.
func (c *Client) Info(ctx context.Context) (system.Info, error) {
	var res system.Info
	err := c.call(ctx, request{method: "GET", path: "/info"}, &res)
	return res, err
}

// ServerVersion is the engine's GET /version.
func (c *Client) ServerVersion(ctx context.Context) (system.VersionResponse, error) {
	var res system.VersionResponse
	err := c.call(ctx, request{method: "GET", path: "/version"}, &res)
	return res, err
}
