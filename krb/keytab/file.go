package keytab

import (
	"fmt"
	"os"
	"sync"

	gokeytab "github.com/jcmturner/gokrb5/v8/keytab"
)

// File is a keytab on disk, re-read whenever its modification time or size
// changes: a keytab re-exported after a password reset takes effect at once,
// as a service's keys do on Windows.
type File struct {
	Path string

	mu    sync.Mutex
	stamp string
	kt    *gokeytab.Keytab
}

// Keytab returns the keys as of the file's current contents; the same
// pointer as long as the file did not change.
func (f *File) Keytab() (*gokeytab.Keytab, error) {
	fi, err := os.Stat(f.Path)
	if err != nil {
		return nil, err
	}
	stamp := fmt.Sprint(fi.ModTime().UnixNano(), "/", fi.Size())
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.kt != nil && stamp == f.stamp {
		return f.kt, nil
	}
	entries, err := Load(f.Path)
	if err != nil {
		return nil, err
	}
	kt, err := Gokrb5(entries)
	if err != nil {
		return nil, err
	}
	f.kt, f.stamp = kt, stamp
	return kt, nil
}
