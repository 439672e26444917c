package lab

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/doublehop/doublehop/client"
	"github.com/doublehop/doublehop/directory"
	"github.com/doublehop/doublehop/events"
	"github.com/doublehop/doublehop/internal/peer"
)

// startLab runs an embedded lab for one test, optionally changed by patch.
func startLab(t *testing.T, patch func(*directory.Lab)) *Lab {
	t.Helper()
	return startLabWith(t, patch, Options{})
}

// startLabWith is startLab with listen options (host, ports).
func startLabWith(t *testing.T, patch func(*directory.Lab), opt Options) *Lab {
	t.Helper()
	seed := directory.Default()
	if patch != nil {
		patch(seed)
	}
	ctx, cancel := context.WithCancel(context.Background())
	opt.StateDir, opt.Lab = t.TempDir(), seed
	l, err := Start(ctx, opt)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); l.Close() })
	return l
}

// tool runs a third-party program with the lab's environment; without it the
// test skips, or fails under CI (package peer; .ci/run installs them).
func tool(t *testing.T, l *Lab, ccache, stdin string, name string, args ...string) (string, error) {
	t.Helper()
	path := peer.Need1(t, name)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = append(os.Environ(), "KRB5_CONFIG="+l.Krb5Conf(), "KRB5CCNAME=FILE:"+ccache, "KRB5_TRACE=/dev/null")
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// bobClient is the lab's workstation for a user, with its own cache.
func bobClient(t *testing.T, l *Lab, offset time.Duration) *client.Client {
	t.Helper()
	cfg := client.Config{CCache: filepath.Join(t.TempDir(), "krb5cc"), Dialer: l.Dialer, Now: func() time.Time { return time.Now().Add(offset) }}
	if err := client.FromKrb5Conf(l.Krb5Conf(), &cfg); err != nil {
		t.Fatal(err)
	}
	w, err := events.OpenFile(filepath.Join(l.StateDir, EventsDir, "client.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	cfg.Events = w
	return client.New(cfg)
}

// findEvent returns the last event matching f.
func findEvent(t *testing.T, l *Lab, f func(events.Event) bool) (events.Event, bool) {
	t.Helper()
	evs, err := l.Events()
	if err != nil {
		t.Fatal(err)
	}
	for i := len(evs) - 1; i >= 0; i-- {
		if f(evs[i]) {
			return evs[i], true
		}
	}
	return events.Event{}, false
}

func mustContain(t *testing.T, what, got string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Fatalf("%s: missing %q in:\n%s", what, w, got)
		}
	}
}
