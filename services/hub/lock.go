package hub

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// ErrLocked: another hikeshi process owns the data dir.
var ErrLocked = errors.New("data dir is in use by another hikeshi process")

// LockDataDir takes an exclusive lock on the data dir, so that a second hub
// or an offline replay cannot open the same files; the kernel releases it
// when the process dies, even on SIGKILL.
func LockDataDir(dir string) (release func(), err error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "hikeshi.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock data dir: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("%w (%s)", ErrLocked, dir)
	}
	return func() { f.Close() }, nil
}
