package sqlite

import (
	"context"
	"fmt"
	"os"
)

// Rebuild is a timeline store being built from scratch in a file beside
// the one it replaces, renamed into place only when complete: an
// interrupted rebuild leaves the old store intact.
type Rebuild struct {
	*Store
	target string
}

// OpenRebuild starts a rebuild of the store at path, dropping what an
// earlier, interrupted one left.
func OpenRebuild(path string) (*Rebuild, error) {
	tmp := path + ".rebuild"
	removeDB(tmp)
	st, err := OpenScratch(tmp)
	if err != nil {
		return nil, err
	}
	return &Rebuild{Store: st, target: path}, nil
}

// Replace closes the rebuilt store and renames it into place.
func (r *Rebuild) Replace(context.Context) error {
	if err := r.Close(); err != nil {
		return err
	}
	removeDB(r.target)
	if err := os.Rename(r.path, r.target); err != nil {
		return fmt.Errorf("replace %s: %w", r.target, err)
	}
	return nil
}

// Discard closes the rebuilt store and removes it.
func (r *Rebuild) Discard(context.Context) error {
	err := r.Close()
	removeDB(r.path)
	return err
}

// Where names the store a rebuild replaces, for messages.
func (r *Rebuild) Where() string { return r.target }

// removeDB removes a database file with its write-ahead log.
func removeDB(path string) {
	for _, suffix := range []string{"", "-wal", "-shm"} {
		_ = os.Remove(path + suffix)
	}
}
