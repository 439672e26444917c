package dockerlab

import (
	"context"
	"fmt"
)

// Kill stops a tier's container with SIGKILL (docker kill): no clean shutdown.
func (l *Lab) Kill(ctx context.Context, role string) error {
	t, err := l.tier(role)
	if err != nil {
		return err
	}
	if err := l.cli.ContainerKill(ctx, t.ID, "KILL"); err != nil {
		return fmt.Errorf("kill %s: %w", t.Container, err)
	}
	return nil
}

// Restart starts a killed tier's container again (docker start): the same
// command, files and published ports; the KDC's directory persisted in /state.
func (l *Lab) Restart(ctx context.Context, role string) error {
	t, err := l.tier(role)
	if err != nil {
		return err
	}
	if err := l.cli.ContainerStart(ctx, t.ID); err != nil {
		return fmt.Errorf("start %s: %w", t.Container, err)
	}
	return nil
}
