package ingest

import (
	"context"
	"time"

	"golang.org/x/sync/singleflight"
)

// keysUnavailable is a caller that could not be verified because the keys
// to verify it with could not be fetched (GCP's key set, an SNS signing
// certificate): 503, so that the sender retries. Why the fetch failed is
// logged where it failed, never answered to the caller.
type keysUnavailable struct{ what string }

func (e *keysUnavailable) Error() string {
	return e.what + " could not be fetched to verify this request; retry later"
}

// keyRetryAfter is the Retry-After of that answer, and how long a failed
// key set fetch is not tried again.
const keyRetryAfter = 10 * time.Second

// fetchTimeout bounds one key or certificate fetch.
const fetchTimeout = 10 * time.Second

// fetchOnce runs fetch once for every caller asking for key at the same
// time, without a lock held meanwhile. The fetch is shared, so one caller
// giving up does not cancel it for the others; a caller that gives up
// gets unavailable.
func fetchOnce[T any](ctx context.Context, g *singleflight.Group, key string, unavailable error, fetch func(context.Context) (T, error)) (T, error) {
	ch := g.DoChan(key, func() (any, error) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fetchTimeout)
		defer cancel()
		return fetch(fctx)
	})
	var zero T
	select {
	case res := <-ch:
		if res.Err != nil {
			return zero, res.Err
		}
		return res.Val.(T), nil
	case <-ctx.Done():
		return zero, unavailable
	}
}
