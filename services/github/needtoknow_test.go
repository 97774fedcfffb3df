package github_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/services/access"
	"github.com/hikeshi/hikeshi/services/github"
	"github.com/hikeshi/hikeshi/services/httpapi"
	"github.com/hikeshi/hikeshi/services/incident"
	"github.com/hikeshi/hikeshi/services/integrationtest"
	"github.com/hikeshi/hikeshi/services/projection"
)

// TestFollowupsAndPostmortemNeedToKnow: the module's API routes
// authenticate through the hub's authenticator; a confidential incident is
// left out of the follow-ups of those outside it and not found for its
// postmortem, and shown to security.
func TestFollowupsAndPostmortemNeedToKnow(t *testing.T) {
	h, _, _ := setup(t, "  followups: {postmortem_days: 0, open_days: 0}\n")
	store, err := natsjs.NewAccess(context.Background(), h.Bus.JS)
	if err != nil {
		t.Fatal(err)
	}
	tokens := access.NewTokens(store)
	h.Env.APIAuth = httpapi.RequireCaller(&access.Authenticator{Tokens: tokens})
	tl := h.WithTimeline(t)
	parts := h.Start(t, github.Module)
	stop := h.Run(t, []projection.Projector{tl})
	defer stop()
	mux := http.NewServeMux()
	for pattern, handler := range parts.Routes {
		mux.Handle(pattern, handler)
	}
	srv := httptest.NewServer(mux)
	defer srv.Close()
	mint := func(role access.Role) string {
		_, secret, err := tokens.Create(context.Background(), access.ServiceToken, access.TokenRequest{Name: role.String(), Role: role})
		if err != nil {
			t.Fatal(err)
		}
		return secret
	}
	viewer, responder, security := mint(access.Viewer), mint(access.Responder), mint(access.Security)
	call := func(method, path, tok string) (int, string) {
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b json.RawMessage
		_ = json.NewDecoder(resp.Body).Decode(&b)
		return resp.StatusCode, string(b)
	}

	secret := h.Declare(t, incident.Declare{Title: "Token leak", Service: "auth", Severity: "SEV2", Confidential: true, DeclaredBy: "carol"})
	open := h.Declare(t, incident.Declare{Title: "Slow builds", Service: "ci", Severity: "SEV4"})
	integrationtest.Eventually(t, "both in the timeline", func() bool {
		_, body := call(http.MethodGet, "/api/v1/followups", security)
		return strings.Contains(body, secret.ID) && strings.Contains(body, open.ID)
	})
	for name, tok := range map[string]string{"viewer": viewer, "responder": responder} {
		code, body := call(http.MethodGet, "/api/v1/followups", tok)
		if code != http.StatusOK || strings.Contains(body, secret.ID) || strings.Contains(body, secret.Codename) || !strings.Contains(body, open.ID) {
			t.Errorf("%s: follow-ups %d %s: want the open incident only", name, code, body)
		}
	}
	if code, _ := call(http.MethodPost, "/api/v1/incidents/"+secret.ID+"/postmortem", responder); code != http.StatusNotFound {
		t.Errorf("responder outside: postmortem %d, want 404", code)
	}
	if code, _ := call(http.MethodPost, "/api/v1/incidents/"+open.ID+"/postmortem", viewer); code != http.StatusForbidden {
		t.Errorf("viewer: postmortem %d, want 403", code)
	}
	if code, _ := call(http.MethodPost, "/api/v1/incidents/"+secret.ID+"/postmortem", security); code != http.StatusConflict {
		t.Errorf("security: postmortem %d, want 409 (confidential postmortems skipped by configuration)", code)
	}
	if code, _ := call(http.MethodGet, "/api/v1/followups", "hks_revoked-or-unknown"); code != http.StatusUnauthorized {
		t.Errorf("unknown token: %d, want 401", code)
	}
}
