package projector

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/services/access"
	"github.com/hikeshi/hikeshi/services/httpapi"
	"github.com/hikeshi/hikeshi/services/signals/ingest"
)

const apiToken = "api-token"

type listed struct {
	Signals []SignalDecision `json:"signals"`
	Before  uint64           `json:"before"`
}

// listSignals calls GET /api/v1/signals on the rig's current module (a
// restart replaces it) over HTTP.
func (r *rig) listSignals(query, token string) (int, listed, string) {
	r.t.Helper()
	srv := httptest.NewServer(r.routes()["GET "+ingest.PathGeneric])
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+ingest.PathGeneric+"?"+query, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out listed
	var raw json.RawMessage
	_ = json.NewDecoder(resp.Body).Decode(&raw)
	_ = json.Unmarshal(raw, &out)
	return resp.StatusCode, out, string(raw)
}

// summary is "fingerprint:rule:route:where" per signal, newest first.
func summary(ds []SignalDecision) string {
	var parts []string
	for _, d := range ds {
		where := cmp.Or(d.CaseNumber, d.Ticket, d.Note)
		if d.Flagged != "" {
			where += "!"
		}
		parts = append(parts, fmt.Sprintf("%s:%s:%s:%s", d.Fingerprint, d.Rule, d.Route, where))
	}
	return strings.Join(parts, " ")
}

// Every signal's decision is listed — incident, ticket, drop, none,
// flagged — with where it went, filtered, behind the API token, and
// exactly the same after the state file is lost and rebuilt.
func TestDecisionsListed(t *testing.T) {
	setSecrets(t)
	t.Setenv("SIG_GH", "gh-token")
	gh := newFakeGitHub(t)
	r := newRig(t, rigOpts{yaml: fmt.Sprintf(`
signals:
  token_env: SIG_TOKEN
  github: {base_url: %s, repo: acme/alerts, token_env: SIG_GH}
  decisions: {keep: 1000, max_age: 24h}
  rules:
    - name: test-env
      when: 'signal.labels["env"] == "test"'
      drop: true
    - name: numbered
      when: 'int(signal.labels["n"]) > 0'
      priority: P1
    - name: critical
      when: 'signal.severity == "critical"'
      route: incident
      incident: {service: db}
    - name: findings
      when: 'signal.kind == "finding"'
      route: ticket
  default: {route: none}
`, gh.URL)})
	r.env.APIAuth = httpapi.RequireCaller(access.ForToken(apiToken))
	now := time.Now().UTC().Format(time.RFC3339)
	send := func(fp, extra string) {
		t.Helper()
		body := fmt.Sprintf(`{"source":"prom","fingerprint":%q,"title":"t %s","starts_at":%q,%s}`, fp, fp, now, extra)
		resp, out := r.post(ingest.PathGeneric, []byte(body), auth(testToken))
		must(t, resp.StatusCode == http.StatusAccepted, "%s: %d %s", fp, resp.StatusCode, out)
	}
	send("db-down", `"severity":"critical","group_key":"db"`)
	send("db-down-2", `"severity":"critical","group_key":"db"`)
	send("recon", `"severity":"medium","kind":"finding"`)
	send("canary", `"severity":"critical","labels":{"env":"test"}`)
	send("disk-70", `"severity":"low"`)
	send("odd", `"severity":"critical","labels":{"n":"seven"}`)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.p.Run(ctx) }()
	r.waitHandled(6, 20*time.Second)

	code, _, raw := r.listSignals("", "")
	must(t, code == http.StatusUnauthorized, "without the API token: %d %s", code, raw)
	code, _, raw = r.listSignals("", testToken)
	must(t, code == http.StatusUnauthorized, "with the ingest token: %d %s", code, raw)

	all := "odd:default:none:! disk-70:default:none: canary:test-env:drop: recon:findings:ticket:acme/alerts#1 " +
		"db-down-2:critical:incident:INC-1 db-down:critical:incident:INC-1"
	for _, c := range []struct{ query, want string }{
		{"", all},
		{"route=incident", "db-down-2:critical:incident:INC-1 db-down:critical:incident:INC-1"},
		{"route=drop", "canary:test-env:drop:"},
		{"route=none&flagged=false", "disk-70:default:none:"},
		{"flagged=true", "odd:default:none:!"},
		{"rule=findings", "recon:findings:ticket:acme/alerts#1"},
		{"fingerprint=db-down&source=prom", "db-down:critical:incident:INC-1"},
		{"source=grafana", ""},
		{"limit=2", "odd:default:none:! disk-70:default:none:"},
	} {
		code, got, raw := r.listSignals(c.query, apiToken)
		must(t, code == http.StatusOK, "%s: %d %s", c.query, code, raw)
		if s := summary(got.Signals); s != c.want {
			t.Errorf("%q:\n got %s\nwant %s", c.query, s, c.want)
		}
	}
	_, page, _ := r.listSignals("limit=2", apiToken)
	_, next, _ := r.listSignals(fmt.Sprintf("limit=10&before=%d", page.Before), apiToken)
	must(t, page.Before > 0 && len(next.Signals) == 4 && next.Signals[0].Fingerprint == "canary", "next page %d: %s", page.Before, summary(next.Signals))
	_, odd, _ := r.listSignals("flagged=true", apiToken)
	must(t, strings.Contains(odd.Signals[0].Flagged, "numbered"), "flagged reason %q", odd.Signals[0].Flagged)
	for _, q := range []string{"route=page", "limit=0", "flagged=maybe", "status=firing"} {
		code, _, raw := r.listSignals(q, apiToken)
		must(t, code == http.StatusBadRequest, "%s: %d %s", q, code, raw)
	}

	// The state file lost: rebuilt from the stream, the log is the same,
	// each signal once.
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{StateFile, StateFile + "-wal", StateFile + "-shm"} {
		if err := os.Remove(filepath.Join(r.env.DataDir, f)); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
	}
	r.restart()
	code, _, raw = r.listSignals("", apiToken)
	must(t, code == http.StatusServiceUnavailable && strings.Contains(raw, "does not run the signal projector"), "before the projector runs: %d %s", code, raw)
	r.run()
	send("disk-80", `"severity":"low"`)
	r.waitHandled(7, 20*time.Second)
	_, got, _ := r.listSignals("", apiToken)
	if s := summary(got.Signals); s != "disk-80:default:none: "+all {
		t.Errorf("after the rebuild:\n got %s\nwant %s", s, "disk-80:default:none: "+all)
	}
}
