package dockerlab

import (
	"context"
	"io"

	"github.com/doublehop/doublehop/internal/engine"
)

// APIClient is the Docker API client the labs use (DOCKER_HOST, else the
// local socket), checked with a ping.
func APIClient(ctx context.Context) (*engine.Client, error) { return dockerClient(ctx) }

// ExecIn runs the doublehop binary with args in a container by id, as
// `docker exec ID /doublehop ARGS`.
func ExecIn(ctx context.Context, cli *engine.Client, id string, stdin io.Reader, args ...string) (ExecResult, error) {
	return execIn(ctx, cli, id, append([]string{Binary}, args...), stdin)
}
