package hub

import (
	"errors"
	"testing"
)

// A data dir keeps its identity from one lock to the next (a restart) and
// another data dir has another; a second lock is refused while one is held.
func TestDataDirLockIdentity(t *testing.T) {
	dir := t.TempDir()
	first, err := LockDataDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LockDataDir(dir); !errors.Is(err, ErrLocked) {
		t.Fatalf("second lock of a held data dir: %v, want ErrLocked", err)
	}
	id := first.ID
	first.Release()
	again, err := LockDataDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Release()
	other, err := LockDataDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Release()
	if len(id) != 32 || again.ID != id || other.ID == id {
		t.Fatalf("identities: first %q, after restart %q, other data dir %q", id, again.ID, other.ID)
	}
}
