package projector

import (
	"context"
	"strings"
	"testing"
	"time"
)

// One process at a time holds the projector's lease: a second waits while
// the holder renews, takes over at once when it stops cleanly, and after
// the time to live when it vanishes without a word.
func TestLeaseOneHolder(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: lease test, waits out the time to live; runs in make test")
	}
	setSecrets(t)
	r := newRig(t, rigOpts{yaml: baseYAML})
	short := func() *lease {
		l := newLease(r.p.st.kv, "", "")
		l.ttl, l.renew = 5*time.Second, 100*time.Millisecond
		return l
	}
	ctx := context.Background()
	a, b := short(), short()
	if _, _, err := a.acquire(ctx, nil); err != nil {
		t.Fatal(err)
	}
	holdCtx, stop := context.WithCancel(ctx)
	held := make(chan error, 1)
	go func() { held <- a.hold(holdCtx) }()

	// b waits for as long as a renews, well past the time to live.
	waited := make(chan leaseOwner, 1)
	wctx, wcancel := context.WithTimeout(ctx, 3*time.Second)
	_, _, err := b.acquire(wctx, func(holder leaseOwner) { waited <- holder })
	wcancel()
	must(t, err != nil, "second process took a renewed lease")
	must(t, (<-waited).ID == a.self.ID, "waiting for the wrong holder")

	// a stops cleanly: b takes over without waiting out the time to live.
	stop()
	must(t, <-held == nil, "hold")
	start := time.Now()
	if _, _, err := b.acquire(ctx, nil); err != nil {
		t.Fatal(err)
	}
	must(t, time.Since(start) < a.ttl, "clean hand-over took %s", time.Since(start))

	// b vanishes (no renewal, no release): c takes over after the ttl.
	c := short()
	start = time.Now()
	how, from, err := c.acquire(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	must(t, time.Since(start) >= c.ttl, "lease taken from a live holder after %s", time.Since(start))
	must(t, how == leaseExpired && from.ID == b.self.ID, "took over %v from %s", how, from)
	// b, back, learns it lost the lease at its next renewal.
	lost := b.hold(ctx)
	must(t, lost != nil, "a vanished holder kept its lease")
}

// A hub killed without a word (SIGKILL, power cut of a VM) leaves its lease
// behind. The process that restarts on the same data dir holds that data
// dir's lock, so the holder recorded under the data dir's identity is
// gone: it takes the lease at once, without waiting the time to live.
// A holder of another data dir is still waited for while it renews.
func TestLeaseTakenAtOnceFromDeadProcessOfSameDataDir(t *testing.T) {
	setSecrets(t)
	r := newRig(t, rigOpts{yaml: baseYAML})
	kv := r.p.st.kv
	ctx := context.Background()
	const dir, other = "0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"

	// The process that crashed: it took the lease and never released it.
	dead := newLease(kv, "/var/lib/hikeshi", dir)
	if _, _, err := dead.acquire(ctx, nil); err != nil {
		t.Fatal(err)
	}

	// Restarted on the same data dir, with the default time to live: the
	// lease is taken at once, and the waiting callback is never called.
	restarted := newLease(kv, "/var/lib/hikeshi", dir)
	actx, cancel := context.WithTimeout(ctx, restarted.ttl/3)
	defer cancel()
	how, from, err := restarted.acquire(actx, func(holder leaseOwner) {
		t.Errorf("restarted process waited for its dead predecessor %s", holder)
	})
	must(t, err == nil, "restarted process did not take the lease of its dead predecessor: %v", err)
	must(t, how == leaseOrphan && from.ID == dead.self.ID && from.PID == dead.self.PID,
		"took over %v from %s, want its predecessor %s", how, from, dead.self)

	holdCtx, stop := context.WithCancel(ctx)
	held := make(chan error, 1)
	restarted.renew = 100 * time.Millisecond
	go func() { held <- restarted.hold(holdCtx) }()

	// Had the predecessor been alive after all (a copy of the data dir,
	// so the same identity), it learns at its next renewal who took the
	// lease and what to do.
	dead.renew = 100 * time.Millisecond
	lost := dead.hold(ctx)
	must(t, lost != nil && strings.Contains(lost.Error(), "copy of this data dir"), "lost lease: %v", lost)

	// A process on another data dir waits for the live holder, past the
	// time to live, naming it.
	elsewhere := newLease(kv, "/srv/hikeshi", other)
	elsewhere.ttl, elsewhere.renew = time.Second, 100*time.Millisecond
	var waitedFor []string
	wctx, wcancel := context.WithTimeout(ctx, 2*elsewhere.ttl)
	_, _, err = elsewhere.acquire(wctx, func(holder leaseOwner) { waitedFor = append(waitedFor, holder.String()) })
	wcancel()
	must(t, err != nil, "a process of another data dir took the lease of a live holder")
	must(t, len(waitedFor) == 1 && strings.Contains(waitedFor[0], "data dir /var/lib/hikeshi"),
		"waited for %q, want the holder's data dir named once", waitedFor)
	stop()
	must(t, <-held == nil, "hold")
}

// A lease written by an earlier version names no data dir: it cannot be
// known dead, so it is waited out, its holder named as it was written.
func TestLeaseOfAnEarlierVersionIsWaitedOut(t *testing.T) {
	setSecrets(t)
	r := newRig(t, rigOpts{yaml: baseYAML})
	kv := r.p.st.kv
	ctx := context.Background()
	if _, err := kv.Put(ctx, leaseKey, []byte("hub-a/4711/0197d1c2-0000-7000-8000-000000000000")); err != nil {
		t.Fatal(err)
	}
	l := newLease(kv, "/var/lib/hikeshi", "0123456789abcdef0123456789abcdef")
	l.ttl, l.renew = time.Second, 100*time.Millisecond
	var waitedFor []string
	start := time.Now()
	how, from, err := l.acquire(ctx, func(holder leaseOwner) { waitedFor = append(waitedFor, holder.String()) })
	if err != nil {
		t.Fatal(err)
	}
	must(t, time.Since(start) >= l.ttl && how == leaseExpired, "took over %v after %s", how, time.Since(start))
	must(t, len(waitedFor) == 1 && waitedFor[0] == "hub-a/4711/0197d1c2-0000-7000-8000-000000000000" && from.String() == waitedFor[0],
		"waited for %q, took from %s", waitedFor, from)
}
