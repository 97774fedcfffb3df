package integration_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/hikeshi/hikeshi/adapters/httpx"
	"github.com/hikeshi/hikeshi/services/incident"
	"github.com/hikeshi/hikeshi/services/integration"
	"github.com/hikeshi/hikeshi/services/projection"
)

// Only answers that retrying cannot change dead-letter an event: rate
// limits, outages and credentials an operator can fix are retried.
func TestFinal(t *testing.T) {
	refused := errors.New("refused")
	for status, final := range map[int]bool{
		0: false, 400: true, 401: false, 403: false, 404: true, 410: true, 413: true,
		422: true, 429: false, 500: false, 502: false, 503: false,
	} {
		err := integration.Final(status, refused)
		if errors.Is(err, projection.ErrPermanent) != final || !strings.Contains(err.Error(), "refused") {
			t.Errorf("Final(%d) = %v, want permanent %v", status, err, final)
		}
	}
}

func TestClientSendsAuthorization(t *testing.T) {
	var got []string
	rt := roundTrip(func(r *http.Request) (*http.Response, error) {
		got = append(got, r.Header.Get("Authorization"))
		return &http.Response{StatusCode: 204, Body: http.NoBody, Request: r}, nil
	})
	for _, auth := range []string{"Bearer t0k", ""} {
		c := integration.Client(auth, &httpx.Transport{Base: rt})
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

type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestWhatMayBeSaid(t *testing.T) {
	open := incident.State{ID: "x", Service: "payments"}
	secret := incident.State{ID: "y", Service: "identity", Confidential: true, Drill: true}
	if integration.Text(open, "rolled back") != "rolled back" || integration.Text(secret, "rolled back") != integration.Withheld ||
		integration.Text(secret, " ") != " " {
		t.Error("Text")
	}
	if integration.Service(open) != "payments" || integration.Service(secret) == "identity" {
		t.Error("Service")
	}
	if integration.Marker(open) != "" || integration.Marker(secret) != "[DRILL] " {
		t.Error("Marker")
	}
	if got := integration.TimelineURL("https://hub.test/", "x"); got != "https://hub.test/api/v1/incidents/x/timeline" {
		t.Errorf("TimelineURL %q", got)
	}
}
