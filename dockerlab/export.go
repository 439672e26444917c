package dockerlab

import (
	"context"
	"io"

	"github.com/moby/moby/client"
)

// APIClient is the Docker API client the labs use (DOCKER_HOST, contexts),
// checked with a ping.
func APIClient(ctx context.Context) (*client.Client, error) { return dockerClient(ctx) }

// ExecIn runs the doublehop binary with args in a container by id, as
// `docker exec ID /doublehop ARGS`.
func ExecIn(ctx context.Context, cli *client.Client, id string, stdin io.Reader, args ...string) (ExecResult, error) {
	return execIn(ctx, cli, id, append([]string{Binary}, args...), stdin)
}
