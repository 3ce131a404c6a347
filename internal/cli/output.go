package cli

import (
	"errors"
	"os"
	"path/filepath"
)

// writeFileAtomic replaces path with data so that a reader (a textfile collector, a cron job
// racing the next run) sees the old file or the new one, never a part: a temporary file in the
// same directory, synced, renamed over path. The file is readable by all (0644), like the
// collector's other files.
func writeFileAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		return errors.Join(err, tmp.Close())
	}
	if err := tmp.Chmod(0o644); err != nil { // #nosec G302 -- a report for a collector to read
		return errors.Join(err, tmp.Close())
	}
	if err := tmp.Sync(); err != nil {
		return errors.Join(err, tmp.Close())
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
