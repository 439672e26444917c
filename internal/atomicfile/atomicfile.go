// Package atomicfile replaces a file so that a crash leaves the old or the new
// content, never a torn one: temp file in the same directory, fsync, rename,
// directory fsync. Caches, keytabs, the directory and lab.env are written so.
package atomicfile

import (
	"os"
	"path/filepath"
)

// WriteFile replaces path with data via a temp file in the same
// directory, fsync, rename and a directory fsync, so a crash leaves the old or
// the new file, never a torn one. Used for caches, keytabs and the directory.
func WriteFile(path string, data []byte, mode os.FileMode) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err = f.Chmod(mode); err != nil {
		return err
	}
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	// Make the rename durable; a failure here does not undo the write.
	if d, derr := os.Open(dir); derr == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
