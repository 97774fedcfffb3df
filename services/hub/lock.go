package hub

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
)

// ErrLocked: another hikeshi process owns the data dir.
var ErrLocked = errors.New("data dir is in use by another hikeshi process")

// DataDirLock is a data dir's lock, held by this process.
type DataDirLock struct {
	// ID identifies the data dir: random, made when the lock file is
	// first taken and kept in it. Only the process holding the lock runs
	// under this ID, so when another process is recorded under it (a
	// lease), that process held the lock before this one and is gone.
	ID string
	f  *os.File
}

// LockDataDir takes an exclusive lock on the data dir, so that a second hub
// or an offline replay cannot open the same files; the kernel releases it
// when the process dies, even on SIGKILL.
func LockDataDir(dir string) (*DataDirLock, error) {
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
	id, err := dataDirID(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock data dir %s: %w", dir, err)
	}
	return &DataDirLock{ID: id, f: f}, nil
}

// Release lets another process take the data dir.
func (l *DataDirLock) Release() { l.f.Close() }

// dataDirID reads the ID kept in the lock file, or writes a new one when
// there is none (a data dir of an earlier version, or a write cut short).
func dataDirID(f *os.File) (string, error) {
	b, err := io.ReadAll(io.LimitReader(f, 64))
	if err != nil {
		return "", err
	}
	if id := string(b); len(id) == 32 {
		if _, err := hex.DecodeString(id); err == nil {
			return id, nil
		}
	}
	var r [16]byte
	_, _ = rand.Read(r[:]) // crypto/rand never fails on supported platforms
	id := hex.EncodeToString(r[:])
	if err := f.Truncate(0); err != nil {
		return "", err
	}
	if _, err := f.WriteAt([]byte(id), 0); err != nil {
		return "", err
	}
	return id, f.Sync()
}
