// Package httpx is the HTTP client side shared by every integration: it
// obeys 429 Retry-After exactly, backs off on 5xx, and paces calls per key
// (Slack allows about one message per second per channel). A remote that is
// slow or down delays only the projector that calls it.
package httpx

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Transport retries rate-limited and failed requests.
type Transport struct {
	Base http.RoundTripper // default http.DefaultTransport
	// MaxRetries bounds retries of one request (default 8).
	MaxRetries int
	// MaxWait caps a single Retry-After wait (default 2 minutes); a longer
	// one is returned to the caller as is.
	MaxWait time.Duration
	// Backoff is the first wait after a 5xx or network error (default
	// 500 ms), doubled each time.
	Backoff time.Duration
	// RateLimited also counts these answers as rate limits, e.g. GitHub's
	// secondary limit: 403 with Retry-After.
	RateLimited func(*http.Response) bool
	// RateLimitOnly marks requests that are retried only when rate
	// limited: a call that is not idempotent (posting a message) may have
	// been carried out before a 5xx or a broken connection, so those are
	// handed back for the caller to look up before trying again. A 429 is
	// still retried: the remote did not act on it.
	RateLimitOnly func(*http.Request) bool
	// OnWait is told about every wait (metrics, logs).
	OnWait func(req *http.Request, status int, wait time.Duration)
	// Sleep waits; tests replace it to observe waits without spending them.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Sleep waits for d or until ctx ends.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// RetryAfter parses a Retry-After header (seconds or an HTTP date).
func RetryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// RoundTrip sends req, waiting and retrying as the remote asks.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	retries, maxWait, backoff := t.MaxRetries, t.MaxWait, t.Backoff
	if retries <= 0 {
		retries = 8
	}
	if maxWait <= 0 {
		maxWait = 2 * time.Minute
	}
	if backoff <= 0 {
		backoff = 500 * time.Millisecond
	}
	sleep := t.Sleep
	if sleep == nil {
		sleep = Sleep
	}
	// Keep the body so that every attempt sends it again.
	var body []byte
	if req.Body != nil && req.GetBody == nil {
		var err error
		if body, err = io.ReadAll(req.Body); err != nil {
			return nil, err
		}
		req.Body.Close()
	}
	for attempt := 0; ; attempt++ {
		r := req.Clone(req.Context())
		switch {
		case body != nil:
			r.Body = io.NopCloser(bytes.NewReader(body))
		case req.GetBody != nil && attempt > 0:
			b, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			r.Body = b
		}
		resp, err := base.RoundTrip(r)
		var wait time.Duration
		status := 0
		switch {
		case err != nil:
			if req.Context().Err() != nil || t.RateLimitOnly != nil && t.RateLimitOnly(req) {
				return nil, err
			}
			wait = backoff << min(attempt, 6)
		case resp.StatusCode == http.StatusTooManyRequests || t.RateLimited != nil && t.RateLimited(resp):
			status = resp.StatusCode
			d, ok := RetryAfter(resp.Header, time.Now())
			if !ok {
				d = backoff << min(attempt, 6)
			}
			if d > maxWait {
				return resp, nil
			}
			wait = d
		case resp.StatusCode >= 500:
			if t.RateLimitOnly != nil && t.RateLimitOnly(req) {
				return resp, nil
			}
			status = resp.StatusCode
			if d, ok := RetryAfter(resp.Header, time.Now()); ok && d <= maxWait {
				wait = d
			} else {
				wait = backoff << min(attempt, 6)
				wait += time.Duration(rand.Int64N(int64(wait) / 4))
			}
		default:
			return resp, nil
		}
		if attempt >= retries {
			return resp, err
		}
		if resp != nil {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
		}
		if t.OnWait != nil {
			t.OnWait(req, status, wait)
		}
		if err := sleep(req.Context(), wait); err != nil {
			return nil, err
		}
	}
}

// Pacer spaces calls that share a key (a Slack channel, a GitHub repo) at
// least interval apart, across goroutines.
type Pacer struct {
	Interval time.Duration
	mu       sync.Mutex
	next     map[string]time.Time
}

// Wait blocks until a call under key may go, and reserves its slot.
func (p *Pacer) Wait(ctx context.Context, key string) error {
	p.mu.Lock()
	if p.next == nil {
		p.next = map[string]time.Time{}
	}
	now := time.Now()
	at := p.next[key]
	if at.Before(now) {
		at = now
	}
	p.next[key] = at.Add(p.Interval)
	p.mu.Unlock()
	if d := at.Sub(now); d > 0 {
		return Sleep(ctx, d)
	}
	return nil
}
