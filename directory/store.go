package directory

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/doublehop/doublehop/internal/atomicfile"
)

// FileName is the directory's file inside a state directory.
const FileName = "directory.yaml"

// Store is the persisted directory. Reads take an immutable View; changes go
// through Update, which holds an exclusive file lock across processes (the KDC
// and admin commands such as setspn share the state directory), re-reads the
// file, applies the change and replaces the file atomically (write, fsync,
// rename, fsync dir). A running KDC sees every change on its next request.
type Store struct {
	path string
	keys keyCache

	mu    sync.Mutex // serialises reloads in this process
	view  atomic.Pointer[View]
	stamp atomic.Pointer[fileStamp]
	seq   atomic.Uint64
}

type fileStamp struct {
	mod  time.Time
	size int64
	ino  uint64
}

// Open opens the directory in stateDir. When the state holds no directory yet,
// seed (or the default lab) is written first.
func Open(stateDir string, seed *Lab) (*Store, error) {
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return nil, err
	}
	s := &Store{path: filepath.Join(stateDir, FileName)}
	if _, err := os.Stat(s.path); errors.Is(err, os.ErrNotExist) {
		if seed == nil {
			seed = Default()
		}
		if err := s.withLock(func() error {
			if _, err := os.Stat(s.path); err == nil {
				return nil
			}
			return s.write(seed)
		}); err != nil {
			return nil, err
		}
	}
	if _, err := s.reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// OpenExisting opens the directory of an existing lab and fails when stateDir
// holds none (admin commands must not create a new lab on a mistyped path).
func OpenExisting(stateDir string) (*Store, error) {
	if _, err := os.Stat(filepath.Join(stateDir, FileName)); err != nil {
		return nil, fmt.Errorf("no lab in %s (start one with: doublehop up --state %s): %w", stateDir, stateDir, err)
	}
	return Open(stateDir, nil)
}

// Path is the directory file.
func (s *Store) Path() string { return s.path }

// View returns the current snapshot, reloading first when another process
// changed the file (one stat per call).
func (s *Store) View() *View {
	if st, err := statFile(s.path); err == nil {
		if cur := s.stamp.Load(); cur == nil || *cur != st {
			if v, err := s.reload(); err == nil {
				return v
			}
		}
	}
	return s.view.Load()
}

func (s *Store) reload() (*View, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := statFile(s.path)
	if err != nil {
		return nil, err
	}
	if cur := s.stamp.Load(); cur != nil && *cur == st && s.view.Load() != nil {
		return s.view.Load(), nil
	}
	b, err := os.ReadFile(s.path)
	if err != nil {
		return nil, err
	}
	l, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.path, err)
	}
	v, err := buildView(l, &s.keys, s.seq.Add(1))
	if err != nil {
		return nil, err
	}
	s.view.Store(v)
	s.stamp.Store(&st)
	return v, nil
}

// Update applies change to a fresh copy of the lab under the cross-process
// lock and persists it. change may return an error to abort.
func (s *Store) Update(change func(*Lab) error) (*View, error) {
	err := s.withLock(func() error {
		b, err := os.ReadFile(s.path)
		if err != nil {
			return err
		}
		l, err := Parse(b)
		if err != nil {
			return err
		}
		if err := change(l); err != nil {
			return err
		}
		l.fill()
		if err := l.Validate(); err != nil {
			return err
		}
		return s.write(l)
	})
	if err != nil {
		return nil, err
	}
	return s.reload()
}

// Replace overwrites the whole lab (scenario reset).
func (s *Store) Replace(l *Lab) (*View, error) {
	return s.Update(func(cur *Lab) error { *cur = *l.Clone(); return nil })
}

func (s *Store) withLock(f func() error) error {
	lf, err := os.OpenFile(s.path+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	defer lf.Close()
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("lock %s: %w", s.path, err)
	}
	defer syscall.Flock(int(lf.Fd()), syscall.LOCK_UN)
	return f()
}

// write replaces the file atomically: temp file, fsync, rename, fsync of the
// directory, so a crash leaves either the old or the new directory, never half.
func (s *Store) write(l *Lab) error {
	b, err := l.Marshal()
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(s.path, b, 0o600)
}

func statFile(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	st := fileStamp{mod: fi.ModTime(), size: fi.Size()}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.ino = sys.Ino
	}
	return st, nil
}
