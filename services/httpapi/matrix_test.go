package httpapi_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/hub"
)

// TestRouteRoleMatrix calls every API route and method as anonymous, a
// viewer, a responder, security, an admin and a revoked token, and checks
// the status of each; a refused call appends nothing, to the incidents or
// to the access stream.
func TestRouteRoleMatrix(t *testing.T) {
	h, admin := authHub(t)
	callers := map[string]*client{"anonymous": admin.as("")}
	for _, role := range []string{"viewer", "responder", "security", "admin"} {
		callers[role], _ = mint(t, admin, role, role)
	}
	revoked, rtok := mint(t, admin, "revoked", "admin")
	admin.req(http.MethodDelete, "/api/v1/tokens/"+rtok.ID, nil).must(t, http.StatusOK, nil)
	callers["revoked"] = revoked
	order := []string{"anonymous", "viewer", "responder", "security", "admin", "revoked"}

	// Each call gets a fresh incident (so that a status change or a close
	// is valid for whoever may make it) and a fresh token to revoke.
	fresh := func(confidential bool) string {
		b := declareBody("matrix")
		b["confidential"] = confidential
		b["declared_by"] = "someone-else"
		return admin.declare(b).ID
	}
	resolved := func(confidential bool) string {
		id := fresh(confidential)
		admin.post("/api/v1/incidents/"+id+"/status", map[string]any{"status": "resolved"}).must(t, http.StatusOK, nil)
		return id
	}
	token := func(bool) string {
		_, tok := mint(t, admin, "to revoke", "viewer")
		return tok.ID
	}
	type route struct {
		method, path string // {id} is replaced by prepare's id
		body         any
		prepare      func(confidential bool) string
		confidential bool
		want         [6]int // in the order of order
	}
	const (
		u, f, n, ok, created = http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusOK, http.StatusCreated
	)
	routes := []route{
		{"POST", "/api/v1/incidents", declareBody("declared"), nil, false, [6]int{u, f, created, created, created, u}},
		{"GET", "/api/v1/incidents", nil, nil, false, [6]int{u, ok, ok, ok, ok, u}},
		{"GET", "/api/v1/incidents/{id}", nil, fresh, false, [6]int{u, ok, ok, ok, ok, u}},
		{"GET", "/api/v1/incidents/{id}", nil, fresh, true, [6]int{u, n, n, ok, ok, u}},
		{"GET", "/api/v1/incidents/{id}/timeline", nil, fresh, false, [6]int{u, ok, ok, ok, ok, u}},
		{"GET", "/api/v1/incidents/{id}/timeline", nil, fresh, true, [6]int{u, n, n, ok, ok, u}},
		{"GET", "/api/v1/incidents/{id}/timeline?after=1&wait=10ms", nil, fresh, true, [6]int{u, n, n, ok, ok, u}},
		{"POST", "/api/v1/incidents/{id}/severity", map[string]any{"severity": "SEV1"}, fresh, false, [6]int{u, f, ok, ok, ok, u}},
		{"POST", "/api/v1/incidents/{id}/severity", map[string]any{"severity": "SEV1"}, fresh, true, [6]int{u, f, n, ok, ok, u}},
		{"POST", "/api/v1/incidents/{id}/status", map[string]any{"status": "identified"}, fresh, false, [6]int{u, f, ok, ok, ok, u}},
		{"POST", "/api/v1/incidents/{id}/status", map[string]any{"status": "identified"}, fresh, true, [6]int{u, f, n, ok, ok, u}},
		{"POST", "/api/v1/incidents/{id}/commander", map[string]any{"user": "bob"}, fresh, false, [6]int{u, f, ok, ok, ok, u}},
		{"POST", "/api/v1/incidents/{id}/commander", map[string]any{"user": "bob"}, fresh, true, [6]int{u, f, n, ok, ok, u}},
		{"POST", "/api/v1/incidents/{id}/notes", map[string]any{"text": "n"}, fresh, false, [6]int{u, f, ok, ok, ok, u}},
		{"POST", "/api/v1/incidents/{id}/notes", map[string]any{"text": "n"}, fresh, true, [6]int{u, f, n, ok, ok, u}},
		{"POST", "/api/v1/incidents/{id}/close", map[string]any{"resolution": "r"}, resolved, false, [6]int{u, f, ok, ok, ok, u}},
		{"POST", "/api/v1/incidents/{id}/close", map[string]any{"resolution": "r"}, resolved, true, [6]int{u, f, n, ok, ok, u}},
		{"GET", "/api/v1/events", nil, nil, false, [6]int{u, ok, ok, ok, ok, u}},
		{"GET", "/api/v1/events?incident={id}", nil, fresh, true, [6]int{u, n, n, ok, ok, u}},
		{"GET", "/api/v1/whoami", nil, nil, false, [6]int{u, ok, ok, ok, ok, u}},
		{"POST", "/api/v1/tokens", map[string]any{"name": "made", "role": "viewer"}, nil, false, [6]int{u, f, f, f, created, u}},
		{"GET", "/api/v1/tokens", nil, nil, false, [6]int{u, f, f, f, ok, u}},
		{"DELETE", "/api/v1/tokens/{id}", nil, token, false, [6]int{u, f, f, f, ok, u}},
		{"GET", "/api/v1/access/events", nil, nil, false, [6]int{u, f, f, f, ok, u}},
		{"PUT", "/api/v1/incidents", nil, nil, false, [6]int{u, 405, 405, 405, 405, u}},
		{"GET", "/api/v1/nowhere", nil, nil, false, [6]int{u, n, n, n, n, u}},
	}
	for _, r := range routes {
		for i, who := range order {
			path := r.path
			if r.prepare != nil {
				path = strings.ReplaceAll(path, "{id}", r.prepare(r.confidential))
			}
			before := lastSeqs(t, h)
			got := call(t, callers[who], r.method, path, r.body)
			if got != r.want[i] {
				t.Errorf("%s %s (confidential %v) as %s: %d, want %d", r.method, r.path, r.confidential, who, got, r.want[i])
			}
			if got >= 400 && lastSeqs(t, h) != before {
				t.Errorf("%s %s as %s was refused (%d) but appended an event", r.method, r.path, who, got)
			}
		}
	}
}

// call sends one request and returns its status without waiting for the
// rest of the body (the event stream never ends by itself).
func call(t *testing.T, c *client, method, path string, body any) int {
	t.Helper()
	if method == http.MethodGet && strings.HasPrefix(path, "/api/v1/events") {
		return openStream(t, c, strings.TrimPrefix(path, "/api/v1/events")).status
	}
	return c.req(method, path, body).Status
}

// lastSeqs are the last sequences of the incident and access streams.
func lastSeqs(t *testing.T, h *hub.Hub) [2]uint64 {
	t.Helper()
	var out [2]uint64
	for i, name := range []string{events.IncidentStream, events.AccessStream} {
		s, err := h.Bus().JS.Stream(context.Background(), name)
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		out[i] = info.State.LastSeq
	}
	return out
}
