package projector

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/hikeshi/hikeshi/events"
	"github.com/nats-io/nats.go/jetstream"
)

// The projector's state is a file in its process's data dir, so two
// processes consuming SIGNALS would count and declare from two different
// states. A lease in the signals bucket lets one process at a time run
// the projector: the holder rewrites the key every leaseRenew; another
// process takes the key over only after seeing no rewrite for leaseTTL by
// its own clock (no clocks are compared), and a holder that stops cleanly
// deletes it.
//
// The lease names the holder's data dir identity (hub.DataDirLock). A
// process holding that data dir's lock knows a holder recorded under the
// same identity is gone (the lock is exclusive and dies with its process),
// so after a crash the restarted process takes the lease at once.
const (
	leaseKey   = "projector.lease"
	leaseTTL   = 30 * time.Second
	leaseRenew = leaseTTL / 3
)

// leaseOwner is the lease's value: which process holds it.
type leaseOwner struct {
	Host      string `json:"host"`
	PID       int    `json:"pid"`
	DataDir   string `json:"data_dir,omitempty"`    // for people reading it
	DataDirID string `json:"data_dir_id,omitempty"` // "" when no data dir lock is held
	ID        string `json:"id"`                    // unique to one acquisition
	raw       string // the value when it is not one of these (an earlier version's)
}

func parseOwner(b []byte) leaseOwner {
	var o leaseOwner
	if err := json.Unmarshal(b, &o); err != nil || o.ID == "" {
		return leaseOwner{raw: string(b)}
	}
	return o
}

func (o leaseOwner) String() string {
	if o.raw != "" {
		return o.raw
	}
	s := fmt.Sprintf("%s pid %d", o.Host, o.PID)
	if o.DataDir != "" {
		s += ", data dir " + o.DataDir
	}
	return s
}

// takeover says how acquire got the lease.
type takeover int

const (
	leaseFree    takeover = iota // no one held it
	leaseExpired                 // its holder stopped renewing it for ttl
	leaseOrphan                  // its holder was the dead previous process of this data dir
)

type lease struct {
	kv    jetstream.KeyValue
	self  leaseOwner
	owner []byte // self, as stored
	rev   uint64
	// ttl and renew are leaseTTL and leaseRenew, shorter in tests.
	ttl, renew time.Duration
}

// newLease is a lease for this process; dataDirID is the identity of the
// data dir whose lock it holds ("" when none).
func newLease(kv jetstream.KeyValue, dataDir, dataDirID string) *lease {
	host, _ := os.Hostname()
	self := leaseOwner{Host: host, PID: os.Getpid(), DataDir: dataDir, DataDirID: dataDirID, ID: events.NewID()}
	owner, _ := json.Marshal(self) // strings and an int
	return &lease{kv: kv, self: self, owner: owner, ttl: leaseTTL, renew: leaseRenew}
}

// orphaned: holder ran under this process's data dir identity, so it held
// the data dir lock this process holds now, and is gone.
func (l *lease) orphaned(holder leaseOwner) bool {
	return l.self.DataDirID != "" && holder.DataDirID == l.self.DataDirID && holder.ID != l.self.ID
}

// acquire waits until the lease is this process's and says from whom it
// came (the holder, when there was one); waiting is called whenever it
// starts waiting for a live holder.
func (l *lease) acquire(ctx context.Context, waiting func(holder leaseOwner)) (takeover, leaseOwner, error) {
	var seen uint64 // the holder's last revision, and when it was seen
	var since time.Time
	var holder leaseOwner
	for {
		e, err := l.kv.Get(ctx, leaseKey)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound) || err == nil && e.Operation() != jetstream.KeyValuePut:
			if l.rev, err = l.kv.Create(ctx, leaseKey, l.owner); err == nil {
				return leaseFree, leaseOwner{}, nil
			}
		case err == nil && e.Revision() != seen:
			prev := holder
			holder = parseOwner(e.Value())
			if l.orphaned(holder) {
				if l.rev, err = l.kv.Update(ctx, leaseKey, l.owner, e.Revision()); err == nil {
					return leaseOrphan, holder, nil
				}
				break
			}
			if holder != prev && waiting != nil {
				waiting(holder)
			}
			seen, since = e.Revision(), time.Now()
		case err == nil && time.Since(since) >= l.ttl:
			if l.rev, err = l.kv.Update(ctx, leaseKey, l.owner, seen); err == nil {
				return leaseExpired, holder, nil
			}
		}
		// A conflict means another process moved first: look again.
		conflict := errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch)
		if err != nil && !conflict && !errors.Is(err, jetstream.ErrKeyNotFound) && ctx.Err() == nil {
			return 0, leaseOwner{}, fmt.Errorf("signals projector lease: %w", err)
		}
		select {
		case <-ctx.Done():
			return 0, leaseOwner{}, ctx.Err()
		case <-time.After(min(l.renew, time.Second)):
		}
	}
}

// hold renews the lease until ctx ends, then releases it; it returns an
// error (and the projector must stop) when the lease was lost.
func (l *lease) hold(ctx context.Context) error {
	t := time.NewTicker(l.renew)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			l.release()
			return nil
		case <-t.C:
			rev, err := l.kv.Update(ctx, leaseKey, l.owner, l.rev)
			if err != nil && ctx.Err() == nil {
				return l.lost(ctx, err)
			}
			if err == nil {
				l.rev = rev
			}
		}
	}
}

// lost explains a failed renewal, naming the process that took the lease.
func (l *lease) lost(ctx context.Context, err error) error {
	e, gerr := l.kv.Get(ctx, leaseKey)
	if gerr != nil || e.Operation() != jetstream.KeyValuePut {
		return fmt.Errorf("signals projector lease lost: %w", err)
	}
	holder := parseOwner(e.Value())
	if holder.ID == l.self.ID {
		return fmt.Errorf("signals projector lease not renewed: %w", err)
	}
	if holder.DataDirID != "" && holder.DataDirID == l.self.DataDirID {
		return fmt.Errorf("signals projector lease taken by %s, which runs on a data dir with this one's identity: "+
			"a copy of this data dir? Stop the hub of the copy, delete hikeshi.lock in it (it gets an identity of its own), and start it again", holder)
	}
	return fmt.Errorf("signals projector lease taken by %s after this process did not renew it for %s (a pause or a lost connection to NATS): %w", holder, l.ttl, err)
}

// release deletes the lease if it is still this process's, so that a
// clean stop hands over at once rather than after ttl. The revision is
// read again: a renewal cut short by the stop may have been stored.
func (l *lease) release() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if e, err := l.kv.Get(ctx, leaseKey); err == nil && bytes.Equal(e.Value(), l.owner) {
		_ = l.kv.Delete(ctx, leaseKey, jetstream.LastRevision(e.Revision()))
	}
}
