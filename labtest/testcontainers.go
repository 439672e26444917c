package labtest

import (
	"context"
	"os"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/network"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/doublehop/doublehop/dockerlab"
)

// WithCustomizers applies testcontainers-go customizers to every tier's
// container after the lab's own (a log consumer, a lifecycle hook, more
// labels, ...).
func WithCustomizers(c ...testcontainers.ContainerCustomizer) Option {
	return dockerlab.WithStarter(starter(c))
}

// starter starts a tier with testcontainers-go: the container dockerlab
// describes (name, command, labels, host names on the lab network, files,
// loopback ports) and its readiness (the ready line, then the published
// endpoint answering).
func starter(custom []testcontainers.ContainerCustomizer) dockerlab.Starter {
	ryukOff()
	return func(ctx context.Context, tc dockerlab.TierContainer) (string, error) {
		files := make([]testcontainers.ContainerFile, 0, len(tc.Files))
		for _, f := range tc.Files {
			files = append(files, testcontainers.ContainerFile{Reader: strings.NewReader(string(f.Content)), ContainerFilePath: f.Path, FileMode: f.Mode})
		}
		opts := []testcontainers.ContainerCustomizer{
			testcontainers.WithName(tc.Name),
			testcontainers.WithCmd(tc.Cmd...),
			testcontainers.WithLabels(tc.Labels),
			network.WithNetworkName(tc.Aliases, tc.Network),
			testcontainers.WithConfigModifier(func(cfg *container.Config) {
				cfg.Hostname, cfg.Domainname = tc.Hostname, tc.Domainname
			}),
			testcontainers.WithTmpfs(tc.Tmpfs),
			testcontainers.WithFiles(files...),
		}
		var strategy wait.Strategy = wait.ForLog(tc.ReadyLog).WithPollInterval(50 * time.Millisecond)
		if tc.Port != "" {
			var exposed []string
			for p := range tc.Ports {
				exposed = append(exposed, p.String())
			}
			opts = append(opts, testcontainers.WithExposedPorts(exposed...),
				testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) { hc.PortBindings = tc.Ports }))
			strategy = wait.ForAll(strategy, published{tc.Port, tc.Path})
		}
		opts = append(opts, testcontainers.WithWaitStrategyAndDeadline(tc.Timeout, strategy))
		ctr, err := testcontainers.Run(ctx, tc.Image, append(opts, custom...)...)
		if ctr != nil {
			return ctr.GetContainerID(), err
		}
		return "", err
	}
}

// published is dockerlab.WaitPublished as a testcontainers-go wait strategy.
type published struct{ port, path string }

func (w published) WaitUntilReady(ctx context.Context, target wait.StrategyTarget) error {
	return dockerlab.WaitPublished(ctx, target.Inspect, w.port, w.path)
}

// ryukOff leaves cleanup to the lab's labels: Ryuk is an image that cannot
// be pulled here. The value must be exactly lowercase "true"; an explicit
// setting is respected.
func ryukOff() {
	if _, ok := os.LookupEnv("TESTCONTAINERS_RYUK_DISABLED"); !ok {
		os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	}
}
