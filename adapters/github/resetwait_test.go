package github

import (
	"net/http"
	"strconv"
	"testing"
	"time"
)

type answer http.Response

func (a *answer) RoundTrip(*http.Request) (*http.Response, error) {
	r := http.Response(*a)
	r.Header = a.Header.Clone()
	return &r, nil
}

// An exhausted primary limit is waited out until X-RateLimit-Reset; other
// answers pass untouched.
func TestResetWait(t *testing.T) {
	reset := strconv.FormatInt(time.Now().Add(30*time.Second).Unix(), 10)
	for _, tc := range []struct {
		status           int
		remaining, retry string
		want             bool
	}{
		{status: 403, remaining: "0", want: true},
		{status: 429, remaining: "0", want: true},
		{status: 403, remaining: "12"},
		{status: 200, remaining: "0"},
		{status: 403, remaining: "0", retry: "5"},
	} {
		h := http.Header{"X-Ratelimit-Remaining": {tc.remaining}, "X-Ratelimit-Reset": {reset}}
		if tc.retry != "" {
			h.Set("Retry-After", tc.retry)
		}
		req, _ := http.NewRequest(http.MethodGet, "http://github.test/", nil)
		resp, _ := resetWait{next: &answer{StatusCode: tc.status, Header: h}}.RoundTrip(req)
		got := resp.Header.Get("Retry-After")
		switch {
		case tc.want:
			if s, err := strconv.Atoi(got); err != nil || s < 28 || s > 31 {
				t.Errorf("%d remaining %s: Retry-After %q, want about 30", tc.status, tc.remaining, got)
			}
		case got != tc.retry:
			t.Errorf("%d remaining %s: Retry-After %q, want %q", tc.status, tc.remaining, got, tc.retry)
		}
	}
}
