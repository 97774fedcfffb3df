package integration

import (
	"context"
	"errors"
	"time"

	"github.com/hikeshi/hikeshi/adapters/httpx"
	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/services/projection"
)

// SearchLag is how long the searches after a create whose answer was lost
// keep looking, as waits before each search: JIRA's search index (and
// GitHub's label listing, less so) trails the write by up to a few
// seconds. An issue that takes longer to show is created a second time:
// that window remains.
var SearchLag = []time.Duration{0, time.Second, 2 * time.Second, 4 * time.Second}

// maxCreates bounds the creates of one call; the caller's retry (the
// projector's redelivery) searches again before it creates again.
const maxCreates = 3

// Finder creates an object at a remote that takes no idempotency key on
// create (a JIRA issue, a GitHub issue), and finds it by a label it
// carries. A 5xx or a dropped connection can come after the remote
// created it, so the create is not retried by the transport (see
// httpx.CreateNotRetried) but here, and every retried create is preceded by a
// search; a marker in the effects ledger under Key tells a later attempt
// (after a crash or a redelivery) that a create may have reached the
// remote, so that it searches through the index lag too.
type Finder[T any] struct {
	Effects natsjs.Ledger
	Key     string
	Find    func(context.Context) (T, bool, error)
	Create  func(context.Context) (T, error)
	// Lag replaces SearchLag (tests); Sleep replaces the waits.
	Lag   []time.Duration
	Sleep func(context.Context, time.Duration) error
}

// FindOrCreate returns the object Find finds, or the one it creates;
// created is true when this call created it (its answer received or
// found after a lost one).
func (f Finder[T]) FindOrCreate(ctx context.Context) (v T, created bool, err error) {
	var inFlight bool // a create may have reached the remote
	if _, err := f.Effects.Get(ctx, f.Key, &inFlight); err != nil {
		return v, false, err
	}
	for attempt := 1; ; attempt++ {
		v, ok, err := f.search(ctx, inFlight)
		if err != nil || ok {
			return v, ok && attempt > 1, err
		}
		if err := f.Effects.Put(ctx, f.Key, true); err != nil {
			return v, false, err
		}
		v, err = f.Create(ctx)
		if err == nil {
			return v, true, nil
		}
		if errors.Is(err, projection.ErrPermanent) {
			// Refused: nothing was created, nothing to search for later.
			return v, false, errors.Join(err, f.Effects.Put(ctx, f.Key, false))
		}
		if attempt == maxCreates || ctx.Err() != nil {
			return v, false, err
		}
		inFlight = true
	}
}

// search looks once, or, when a create may have reached the remote, until
// the index lag has passed.
func (f Finder[T]) search(ctx context.Context, inFlight bool) (T, bool, error) {
	lag, sleep := f.Lag, f.Sleep
	if lag == nil {
		lag = SearchLag
	}
	if sleep == nil {
		sleep = httpx.Sleep
	}
	if !inFlight {
		lag = lag[:min(1, len(lag))]
	}
	var zero T
	for i, d := range lag {
		if d > 0 {
			if err := sleep(ctx, d); err != nil {
				return zero, false, err
			}
		}
		v, ok, err := f.Find(ctx)
		if err != nil || ok || i == len(lag)-1 {
			return v, ok, err
		}
	}
	return f.Find(ctx) // no lag configured
}
