// Package enginelock keeps the test packages that share the machine's Docker
// engine out of each other's way: `go test ./...` runs packages in parallel,
// and a swarm made and left by the workshop's test resets the engine's
// networking under the container labs of another package (their embedded DNS
// stops answering). Tests that only run containers hold the lock shared;
// a test that changes the engine itself (swarm init/leave) holds it alone.
package enginelock

import (
	"os"
	"path/filepath"
	"syscall"
)

// path is one lock file per machine (per user: the engine is the machine's).
func path() string { return filepath.Join(os.TempDir(), "doublehop-docker-engine.lock") }

// Shared waits until no test holds the engine alone, then holds it with
// other shared holders until release.
func Shared() (release func(), err error) { return lock(syscall.LOCK_SH) }

// Exclusive waits until no other test holds the engine, then holds it alone.
func Exclusive() (release func(), err error) { return lock(syscall.LOCK_EX) }

func lock(how int) (func(), error) {
	f, err := os.OpenFile(path(), os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		return nil, err
	}
	return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}
