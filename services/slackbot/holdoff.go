package slackbot

import (
	"context"
	"net/http"
	"path"
	"sync"
	"time"

	"github.com/hikeshi/hikeshi/adapters/httpx"
)

// holdOff remembers a Retry-After longer than the retrying transport waits
// in one go (it hands such a 429 back): the handler's error is retried
// within seconds and the event redelivered within minutes, and without
// this the next call to the method would go out before Slack allowed it.
// The next call to the method waits out the rest, bounded by its context
// (the projector's ack timeout); Slack's limits are per method.
type holdOff struct {
	next  http.RoundTripper
	sleep func(context.Context, time.Duration) error

	mu    sync.Mutex
	until map[string]time.Time
}

func (h *holdOff) RoundTrip(req *http.Request) (*http.Response, error) {
	method := path.Base(req.URL.Path) // …/api/chat.postMessage
	h.mu.Lock()
	wait := time.Until(h.until[method])
	h.mu.Unlock()
	if wait > 0 {
		sleep := h.sleep
		if sleep == nil {
			sleep = httpx.Sleep
		}
		if err := sleep(req.Context(), wait); err != nil {
			return nil, err
		}
	}
	resp, err := h.next.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if d, ok := httpx.RetryAfter(resp.Header, time.Now()); ok && resp.StatusCode == http.StatusTooManyRequests {
		if h.until == nil {
			h.until = map[string]time.Time{}
		}
		h.until[method] = time.Now().Add(d)
	} else if resp.StatusCode < 500 {
		delete(h.until, method) // Slack answered the call: the limit is over
	}
	return resp, nil
}
