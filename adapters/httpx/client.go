package httpx

import (
	"net/http"
	"strings"
	"time"
)

// Client returns an HTTP client that sends authorization (a full header
// value, "" for none) on every request and retries through t. Each attempt
// is bounded so that a remote that hangs is retried rather than awaited.
func Client(authorization string, t *Transport) *http.Client {
	if t.Base == nil {
		base := http.DefaultTransport.(*http.Transport).Clone()
		base.ResponseHeaderTimeout = 30 * time.Second
		t.Base = base
	}
	return &http.Client{Transport: authorize{header: authorization, next: t}}
}

type authorize struct {
	header string
	next   http.RoundTripper
}

func (a authorize) RoundTrip(r *http.Request) (*http.Response, error) {
	if a.header == "" {
		return a.next.RoundTrip(r)
	}
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", a.header)
	return a.next.RoundTrip(r)
}

// CreateNotRetried marks for Transport.RateLimitOnly the create calls
// (POST to a path ending in suffix) that a caller retries itself, after
// looking up whether the remote created the object anyway: the transport
// still waits out a 429, which the remote did not act on.
func CreateNotRetried(suffix string) func(*http.Request) bool {
	return func(r *http.Request) bool {
		return r.Method == http.MethodPost && strings.HasSuffix(strings.TrimSuffix(r.URL.Path, "/"), suffix)
	}
}

// Permanent reports whether a remote's answer can never change by sending
// the same request again: the caller gives up on it (a projector
// dead-letters the event). Rate limits, server errors and credentials are
// not permanent: an operator fixes a token and the request succeeds.
func Permanent(status int) bool {
	switch status {
	case http.StatusBadRequest, http.StatusNotFound, http.StatusGone, http.StatusRequestEntityTooLarge,
		http.StatusUnprocessableEntity:
		return true
	}
	return false
}
