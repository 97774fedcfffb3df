package projector

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/services/access"
	"github.com/hikeshi/hikeshi/services/httpapi"
	"github.com/hikeshi/hikeshi/services/signals/ingest"
)

// TestSignalsListNeedToKnow: a signal that went to a confidential
// incident is left out of GET /api/v1/signals for a viewer outside the
// incident, and listed for security.
func TestSignalsListNeedToKnow(t *testing.T) {
	setSecrets(t)
	r := newRig(t, rigOpts{yaml: `
signals:
  token_env: SIG_TOKEN
  decisions: {keep: 100, max_age: 24h}
  rules:
    - name: leaks
      when: 'signal.labels["kind"] == "leak"'
      route: incident
      incident: {service: auth, confidential: true}
    - name: pages
      when: 'signal.severity == "critical"'
      route: incident
      incident: {service: web}
  default: {route: none}
`})
	store, err := natsjs.NewAccess(context.Background(), r.bus.JS)
	if err != nil {
		t.Fatal(err)
	}
	tokens := access.NewTokens(store)
	r.env.APIAuth = httpapi.RequireCaller(&access.Authenticator{Tokens: tokens})
	mint := func(role access.Role) string {
		_, secret, err := tokens.Create(context.Background(), access.ServiceToken, access.TokenRequest{Name: role.String(), Role: role})
		if err != nil {
			t.Fatal(err)
		}
		return secret
	}
	viewer, security := mint(access.Viewer), mint(access.Security)
	now := time.Now().UTC().Format(time.RFC3339)
	for _, s := range []string{`"fingerprint":"leak-1","severity":"high","labels":{"kind":"leak"}`, `"fingerprint":"web-1","severity":"critical"`} {
		resp, out := r.post(ingest.PathGeneric, []byte(fmt.Sprintf(`{"source":"prom","title":"t",%s,"starts_at":%q}`, s, now)), auth(testToken))
		must(t, resp.StatusCode == http.StatusAccepted, "%s: %d %s", s, resp.StatusCode, out)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.p.Run(ctx) }()
	defer func() { cancel(); <-done }()
	r.waitHandled(2, 20*time.Second)

	code, got, raw := r.listSignals("", security)
	must(t, code == http.StatusOK && summary(got.Signals) == "web-1:pages:incident:INC-2 leak-1:leaks:incident:INC-1", "security: %d %s", code, raw)
	code, got, raw = r.listSignals("", viewer)
	must(t, code == http.StatusOK && summary(got.Signals) == "web-1:pages:incident:INC-2", "viewer: %d %s", code, raw)
	code, _, raw = r.listSignals("", "hks_unknown")
	must(t, code == http.StatusUnauthorized, "unknown token: %d %s", code, raw)
}
