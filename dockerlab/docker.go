package dockerlab

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"

	"github.com/doublehop/doublehop/internal/engine"
)

// Labels on everything a lab creates (containers and its network). Cleanup
// goes by these labels, never by name patterns, so leftovers of killed runs
// are found too.
const (
	LabelLab   = "org.doublehop.lab"   // the lab's name
	LabelRole  = "org.doublehop.role"  // kdc, web, sql, client
	LabelOwner = "org.doublehop.owner" // who made it: "cli" (doublehop lab) or "labtest" (a test)
	LabelPID   = "org.doublehop.pid"   // the creating process (sweeps of killed test runs)
	LabelHost  = "org.doublehop.host"  // the creating machine's host name
	LabelImage = "org.doublehop.image" // the image the lab runs
)

var (
	dockerMu  sync.Mutex
	dockerCli *engine.Client
)

// dockerClient returns the shared Docker API client (DOCKER_HOST, else the
// rootful or rootless socket), checked with a ping.
func dockerClient(ctx context.Context) (*engine.Client, error) {
	dockerMu.Lock()
	defer dockerMu.Unlock()
	if dockerCli != nil {
		return dockerCli, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := engine.New(ctx)
	if err != nil {
		return nil, err
	}
	dockerCli = c
	return dockerCli, nil
}

// Available reports whether a Docker engine answers (nil) or why not. Tests
// skip and `doublehop lab up` falls back to the embedded lab when it does not.
func Available(ctx context.Context) error {
	_, err := dockerClient(ctx)
	if err != nil {
		return fmt.Errorf("%s", firstLine(err.Error()))
	}
	return nil
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

// ExecResult is a command run inside a lab container.
type ExecResult struct {
	ExitCode int
	Stdout   string
	Stderr   string
}

// Err is nil when the command exited 0, else an error with its stderr.
func (r ExecResult) Err() error {
	if r.ExitCode == 0 {
		return nil
	}
	msg := strings.TrimSpace(r.Stderr)
	if msg == "" {
		msg = strings.TrimSpace(r.Stdout)
	}
	return fmt.Errorf("exit status %d: %s", r.ExitCode, msg)
}

// execIn runs cmd in a running container (no shell: argv as given), feeding
// stdin when not nil, and returns its output and exit status.
func execIn(ctx context.Context, cli *engine.Client, id string, cmd []string, stdin io.Reader) (ExecResult, error) {
	execID, err := cli.ExecCreate(ctx, id, cmd, stdin != nil)
	if err != nil {
		return ExecResult{}, err
	}
	att, err := cli.ExecAttach(ctx, execID)
	if err != nil {
		return ExecResult{}, err
	}
	defer att.Close()
	if stdin != nil {
		go func() {
			io.Copy(att.Conn, stdin)
			att.CloseWrite()
		}()
	}
	var out, errb bytes.Buffer
	done := make(chan error, 1)
	go func() { _, err := stdcopy.StdCopy(&out, &errb, att.Reader); done <- err }()
	select {
	case err = <-done:
	case <-ctx.Done():
		att.Close()
		return ExecResult{}, ctx.Err()
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return ExecResult{}, err
	}
	for {
		ins, err := cli.ExecInspect(ctx, execID)
		if err != nil {
			return ExecResult{}, err
		}
		if !ins.Running {
			code := 0
			if ins.ExitCode != nil {
				code = *ins.ExitCode
			}
			return ExecResult{ExitCode: code, Stdout: out.String(), Stderr: errb.String()}, nil
		}
		select {
		case <-ctx.Done():
			return ExecResult{}, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// tarFiles packs files (and their parent directories) for CopyToContainer.
// The modification time is now, with sub-second precision (PAX), so the tiers'
// change detection (mtime+size) sees every copy.
func tarFiles(files []File) (*bytes.Buffer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	now := time.Now()
	dirs := map[string]bool{}
	for _, f := range files {
		name := strings.TrimPrefix(path.Clean(f.Path), "/")
		if name == "" || name == "." || strings.HasPrefix(name, "..") {
			return nil, fmt.Errorf("bad container path %q", f.Path)
		}
		for d := path.Dir(name); d != "." && !dirs[d]; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	// Parents first, shortest path first.
	var dl []string
	for d := range dirs {
		dl = append(dl, d)
	}
	sortByDepth(dl)
	for _, d := range dl {
		mode := int64(0o755)
		if d == "state" {
			mode = 0o700
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: mode, ModTime: now, Format: tar.FormatPAX}); err != nil {
			return nil, err
		}
	}
	for _, f := range files {
		mode := f.Mode
		if mode == 0 {
			mode = 0o644
		}
		h := &tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(path.Clean(f.Path), "/"), Mode: mode, Size: int64(len(f.Content)),
			ModTime: now, Format: tar.FormatPAX}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.Content); err != nil {
			return nil, err
		}
	}
	return &buf, tw.Close()
}

func sortByDepth(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && (strings.Count(s[j], "/") < strings.Count(s[j-1], "/") ||
			strings.Count(s[j], "/") == strings.Count(s[j-1], "/") && s[j] < s[j-1]); j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// copyIn writes files into a (running or created) container.
func copyIn(ctx context.Context, cli *engine.Client, id string, files ...File) error {
	buf, err := tarFiles(files)
	if err != nil {
		return err
	}
	return cli.CopyToContainer(ctx, id, "/", buf)
}

// copyOut reads one regular file from a container; os.ErrNotExist when absent.
func copyOut(ctx context.Context, cli *engine.Client, id, file string) ([]byte, error) {
	rc, err := cli.CopyFromContainer(ctx, id, file)
	if err != nil {
		if engine.IsNotFound(err) {
			return nil, fmt.Errorf("%s: %w", file, os.ErrNotExist)
		}
		return nil, err
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err != nil {
			if err == io.EOF {
				return nil, fmt.Errorf("%s: %w", file, os.ErrNotExist)
			}
			return nil, err
		}
		if h.Typeflag == tar.TypeReg {
			return io.ReadAll(io.LimitReader(tr, 64<<20))
		}
	}
}

// logsOf returns a container's stdout (events) and stderr (logs, ready lines).
func logsOf(ctx context.Context, cli *engine.Client, id string, stdout, stderr bool, tail string) (string, string, error) {
	rc, err := cli.ContainerLogs(ctx, id, stdout, stderr, tail)
	if err != nil {
		return "", "", err
	}
	defer rc.Close()
	var o, e bytes.Buffer
	if _, err := stdcopy.StdCopy(&o, &e, rc); err != nil && !errors.Is(err, io.EOF) {
		return o.String(), e.String(), err
	}
	return o.String(), e.String(), nil
}
