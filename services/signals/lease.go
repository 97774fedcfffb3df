package signals

import (
	"bytes"
	"context"
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
const (
	leaseKey   = "projector.lease"
	leaseTTL   = 30 * time.Second
	leaseRenew = leaseTTL / 3
)

type lease struct {
	kv    jetstream.KeyValue
	owner []byte
	rev   uint64
	// ttl and renew are leaseTTL and leaseRenew, shorter in tests.
	ttl, renew time.Duration
}

func newLease(kv jetstream.KeyValue) *lease {
	host, _ := os.Hostname()
	return &lease{kv: kv, owner: fmt.Appendf(nil, "%s/%d/%s", host, os.Getpid(), events.NewID()), ttl: leaseTTL, renew: leaseRenew}
}

// acquire waits until the lease is this process's; waiting is called once
// when another process holds it.
func (l *lease) acquire(ctx context.Context, waiting func(holder string)) error {
	var seen uint64 // the holder's last revision, and when it was seen
	var since time.Time
	for {
		e, err := l.kv.Get(ctx, leaseKey)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound) || err == nil && e.Operation() != jetstream.KeyValuePut:
			if l.rev, err = l.kv.Create(ctx, leaseKey, l.owner); err == nil {
				return nil
			}
		case err == nil && e.Revision() != seen:
			if seen == 0 && waiting != nil {
				waiting(string(e.Value()))
			}
			seen, since = e.Revision(), time.Now()
		case err == nil && time.Since(since) >= l.ttl:
			if l.rev, err = l.kv.Update(ctx, leaseKey, l.owner, seen); err == nil {
				return nil
			}
		}
		// A conflict means another process moved first: look again.
		conflict := errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch)
		if err != nil && !conflict && !errors.Is(err, jetstream.ErrKeyNotFound) && ctx.Err() == nil {
			return fmt.Errorf("signals projector lease: %w", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
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
				return fmt.Errorf("signals projector lease lost: %w", err)
			}
			if err == nil {
				l.rev = rev
			}
		}
	}
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
