package httpx

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestTransportObeysRetryAfterExactly(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if string(b) != "payload" {
			t.Errorf("attempt %d lost the body: %q", calls.Load(), b)
		}
		switch calls.Add(1) {
		case 1:
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(http.StatusTooManyRequests)
		case 2:
			w.WriteHeader(http.StatusBadGateway)
		default:
			w.Write([]byte("ok"))
		}
	}))
	defer srv.Close()
	var waits []time.Duration
	tr := &Transport{Backoff: time.Millisecond, Sleep: func(_ context.Context, d time.Duration) error {
		waits = append(waits, d)
		return nil
	}}
	resp, err := (&http.Client{Transport: tr}).Post(srv.URL, "text/plain", strings.NewReader("payload"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || calls.Load() != 3 {
		t.Fatalf("status %d after %d calls", resp.StatusCode, calls.Load())
	}
	if len(waits) != 2 || waits[0] != 7*time.Second || waits[1] > 10*time.Millisecond {
		t.Fatalf("waits %v, want exactly 7s for the 429 then a short backoff", waits)
	}
}

func TestTransportGivesUp(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "600")
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	defer srv.Close()
	tr := &Transport{MaxWait: time.Minute, Sleep: func(context.Context, time.Duration) error {
		t.Fatal("must not wait longer than MaxWait")
		return nil
	}}
	resp, err := (&http.Client{Transport: tr}).Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("status %d, want the 429 handed back", resp.StatusCode)
	}
}

func TestRetryAfterForms(t *testing.T) {
	now := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		v    string
		want time.Duration
		ok   bool
	}{
		{"30", 30 * time.Second, true},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{"soon", 0, false},
		{"", 0, false},
	} {
		h := http.Header{}
		if tc.v != "" {
			h.Set("Retry-After", tc.v)
		}
		got, ok := RetryAfter(h, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("RetryAfter(%q) = %v, %v", tc.v, got, ok)
		}
	}
}

func TestPacerSpacesCallsPerKey(t *testing.T) {
	p := &Pacer{Interval: 40 * time.Millisecond}
	ctx := context.Background()
	start := time.Now()
	for range 3 {
		if err := p.Wait(ctx, "C1"); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Wait(ctx, "C2"); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 80*time.Millisecond {
		t.Fatalf("three calls on one key took %v, want ≥ 80ms", d)
	}
}

// A request marked RateLimitOnly gets its 5xx or broken connection back
// after one attempt (the remote may have acted on it); a 429 is still
// waited out and retried, and unmarked requests keep their retries.
func TestRateLimitOnlyHandsBackFailures(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		switch r.URL.Path {
		case "/drop":
			c, _, err := w.(http.Hijacker).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			c.Close()
		case "/post", "/other":
			if n == 1 {
				w.Header().Set("Retry-After", "3")
				w.WriteHeader(http.StatusTooManyRequests)
				return
			}
			if n == 2 {
				w.WriteHeader(http.StatusInternalServerError)
				return
			}
			w.Write([]byte("ok"))
		}
	}))
	defer srv.Close()
	var waits []time.Duration
	tr := &Transport{Backoff: time.Millisecond,
		RateLimitOnly: func(r *http.Request) bool { return r.URL.Path != "/other" },
		Sleep: func(_ context.Context, d time.Duration) error {
			waits = append(waits, d)
			return nil
		}}
	client := &http.Client{Transport: tr}
	post := func(path string) (int, error) {
		calls.Store(0)
		waits = nil
		resp, err := client.Post(srv.URL+path, "text/plain", strings.NewReader("payload"))
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	if st, err := post("/post"); err != nil || st != http.StatusInternalServerError || calls.Load() != 2 || len(waits) != 1 || waits[0] != 3*time.Second {
		t.Fatalf("marked: status %d, err %v after %d calls, waits %v; want the 500 after the 429 was waited out", st, err, calls.Load(), waits)
	}
	if _, err := post("/drop"); err == nil || calls.Load() != 1 || len(waits) != 0 {
		t.Fatalf("marked, connection dropped: err %v after %d calls, waits %v; want the error after one call", err, calls.Load(), waits)
	}
	if st, err := post("/other"); err != nil || st != http.StatusOK || calls.Load() != 3 {
		t.Fatalf("unmarked: status %d, err %v after %d calls; want retried to 200", st, err, calls.Load())
	}
}

func TestClientSendsAuthorization(t *testing.T) {
	var got []string
	rt := roundTrip(func(r *http.Request) (*http.Response, error) {
		got = append(got, r.Header.Get("Authorization"))
		return &http.Response{StatusCode: 204, Body: http.NoBody, Request: r}, nil
	})
	for _, auth := range []string{"Bearer t0k", ""} {
		c := Client(auth, &Transport{Base: rt})
		resp, err := c.Get("http://remote.test/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if len(got) != 2 || got[0] != "Bearer t0k" || got[1] != "" {
		t.Fatalf("Authorization sent: %q", got)
	}
}

// Only answers that retrying cannot change are permanent: rate limits,
// outages and credentials an operator can fix are not.
func TestPermanent(t *testing.T) {
	for status, want := range map[int]bool{
		0: false, 400: true, 401: false, 403: false, 404: true, 410: true, 413: true,
		422: true, 429: false, 500: false, 502: false, 503: false,
	} {
		if Permanent(status) != want {
			t.Errorf("Permanent(%d) = %v", status, !want)
		}
	}
}

type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
