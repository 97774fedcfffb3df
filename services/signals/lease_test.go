package signals

import (
	"context"
	"testing"
	"time"
)

// One process at a time holds the projector's lease: a second waits while
// the holder renews, takes over at once when it stops cleanly, and after
// the time to live when it vanishes without a word.
func TestLeaseOneHolder(t *testing.T) {
	setSecrets(t)
	r := newRig(t, rigOpts{yaml: baseYAML})
	short := func() *lease {
		l := newLease(r.m.proj.st.kv)
		l.ttl, l.renew = 2*time.Second, 100*time.Millisecond
		return l
	}
	ctx := context.Background()
	a, b := short(), short()
	if err := a.acquire(ctx, nil); err != nil {
		t.Fatal(err)
	}
	holdCtx, stop := context.WithCancel(ctx)
	held := make(chan error, 1)
	go func() { held <- a.hold(holdCtx) }()

	// b waits for as long as a renews, well past the time to live.
	waited := make(chan string, 1)
	wctx, wcancel := context.WithTimeout(ctx, 3*time.Second)
	err := b.acquire(wctx, func(holder string) { waited <- holder })
	wcancel()
	must(t, err != nil, "second process took a renewed lease")
	must(t, <-waited == string(a.owner), "waiting for the wrong holder")

	// a stops cleanly: b takes over without waiting out the time to live.
	stop()
	must(t, <-held == nil, "hold")
	start := time.Now()
	if err := b.acquire(ctx, nil); err != nil {
		t.Fatal(err)
	}
	must(t, time.Since(start) < a.ttl, "clean hand-over took %s", time.Since(start))

	// b vanishes (no renewal, no release): c takes over after the ttl.
	c := short()
	start = time.Now()
	if err := c.acquire(ctx, nil); err != nil {
		t.Fatal(err)
	}
	must(t, time.Since(start) >= c.ttl, "lease taken from a live holder after %s", time.Since(start))
	// b, back, learns it lost the lease at its next renewal.
	lost := b.hold(ctx)
	must(t, lost != nil, "a vanished holder kept its lease")
}
