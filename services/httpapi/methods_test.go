package httpapi_test

import (
	"net/http"
	"testing"

	"github.com/hikeshi/hikeshi/services/hub"
)

// A known path asked with another method is 405 with the methods it takes;
// a path nobody serves stays 404.
func TestWrongMethodIs405WithAllow(t *testing.T) {
	t.Parallel()
	_, c := startHub(t, hub.Config{})
	inc := c.declare(declareBody("Login errors"))
	for _, tc := range []struct{ method, path, allow string }{
		{http.MethodDelete, "/api/v1/incidents", "GET, HEAD, POST"},
		{http.MethodPut, "/api/v1/incidents/" + inc.ID, "GET, HEAD"},
		{http.MethodGet, "/api/v1/incidents/" + inc.ID + "/close", "POST"},
		{http.MethodPost, "/api/v1/incidents/" + inc.ID + "/timeline", "GET, HEAD"},
		{http.MethodPost, "/api/v1/events", "GET, HEAD"},
	} {
		r := c.req(tc.method, tc.path, nil)
		e := r.mustError(t, http.StatusMethodNotAllowed, "method_not_allowed")
		if got := r.Header.Get("Allow"); got != tc.allow {
			t.Errorf("%s %s: Allow %q, want %q (%s)", tc.method, tc.path, got, tc.allow, e.Error.Message)
		}
	}
	for _, path := range []string{"/api/v1/nope", "/api/v1/incidents/" + inc.ID + "/nope"} {
		r := c.req(http.MethodPost, path, nil)
		r.mustError(t, http.StatusNotFound, "no_route")
		if r.Header.Get("Allow") != "" {
			t.Errorf("404 on %s carries Allow %q", path, r.Header.Get("Allow"))
		}
	}
}

// Without the token a wrong method is 401: the routes are not listed to
// someone who may not use them.
func TestWrongMethodWithoutTokenIs401(t *testing.T) {
	t.Parallel()
	_, c := startHub(t, hub.Config{Token: "s3cret-token"})
	r := c.req(http.MethodDelete, "/api/v1/incidents", nil, "Authorization", "Bearer wrong")
	r.mustError(t, http.StatusUnauthorized, "unauthorized")
	if r.Header.Get("Allow") != "" {
		t.Errorf("401 carries Allow %q", r.Header.Get("Allow"))
	}
}

// Every JSON answer, success or error, tells browsers not to sniff it.
func TestJSONAnswersAreNotSniffed(t *testing.T) {
	t.Parallel()
	_, c := startHub(t, hub.Config{})
	inc := c.declare(declareBody("<script>alert(1)</script>"))
	for name, r := range map[string]response{
		"201 declare":  c.post("/api/v1/incidents", declareBody("Second")),
		"200 get":      c.get("/api/v1/incidents/" + inc.ID),
		"200 list":     c.get("/api/v1/incidents"),
		"400 bad json": c.post("/api/v1/incidents", "{"),
		"404 incident": c.get("/api/v1/incidents/INC-999"),
		"404 route":    c.get("/api/v1/nope"),
		"405 method":   c.req(http.MethodDelete, "/api/v1/incidents", nil),
		"415 type":     c.post("/api/v1/incidents", "{}", "Content-Type", "text/plain"),
		"200 healthz":  c.get("/healthz"),
	} {
		if got := r.Header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("%s (%d): X-Content-Type-Options %q", name, r.Status, got)
		}
	}
}
