package projector

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/signals/ingest"
	"github.com/hikeshi/hikeshi/services/signals/rules"
)

const groupYAML = `
signals:
  token_env: SIG_TOKEN
  grafana:
    token_env: SIG_GRAFANA_TOKEN
  default:
    route: incident
`

// Senders that build the same group key never share an incident: two
// Alertmanagers, two Grafana organisations, two Grafana rules under the
// default policy's "{}:{}", and a generic signal copying another
// source's key.
func TestGroupKeysNamespacedBySender(t *testing.T) {
	setSecrets(t)
	t.Setenv("SIG_GRAFANA_TOKEN", "grafana-token")
	r := newRig(t, rigOpts{yaml: groupYAML})
	post := func(path string, body []byte, token string) {
		t.Helper()
		resp, out := r.post(path, body, auth(token))
		must(t, resp.StatusCode == http.StatusAccepted, "%s: %d %s", path, resp.StatusCode, out)
	}
	post(ingest.PathAlertmanager, fixture(t, "alertmanager-v4.json"), testToken)    // one firing, one resolved
	post(ingest.PathAlertmanager, fixture(t, "alertmanager-v4-eu.json"), testToken) // same groupKey, another Alertmanager
	post(ingest.PathGrafana, fixture(t, "grafana.json"), "grafana-token")           // org 1, two rules, "{}:{}"
	post(ingest.PathGrafana, fixture(t, "grafana-org2.json"), "grafana-token")      // org 2, two rules, "{}:{}"
	am := r.stored()[0]
	post(ingest.PathGeneric, []byte(`{"source":"alertmanager","fingerprint":"other","title":"Copied key","severity":"critical",
		"starts_at":"2025-06-04T11:02:30Z","group_key":`+strconv.Quote(am.GroupKey)+`}`), testToken)
	r.run()
	r.waitHandled(8, 20*time.Second)
	incidents := r.incidents()
	must(t, len(incidents) == 7, "%d incidents, want 7 (2 Alertmanagers, 2 rules in each of 2 Grafana orgs, the generic signal): %v",
		len(incidents), incidents)
}

// A rule's group_by replaces the default key, still under the source.
func TestGroupByKeepsSourcesApart(t *testing.T) {
	rs, err := rules.Compile([]rules.Rule{{Name: "by-service", GroupBy: `signal.service`, Route: rules.RouteIncident}}, rules.Rule{})
	must(t, err == nil, "%v", err)
	am := rs.Evaluate(&events.Signal{Source: "alertmanager", Service: "payments"})
	gf := rs.Evaluate(&events.Signal{Source: "grafana", Service: "payments"})
	must(t, am.GroupKey == "alertmanager/payments" && gf.GroupKey == "grafana/payments", "%q %q", am.GroupKey, gf.GroupKey)
	// A generic producer calling itself alertmanager stays under generic.
	gen, err := ingest.Parse("generic", []byte(`{"source":"alertmanager","fingerprint":"f","title":"t","severity":"high","starts_at":"2025-01-01T00:00:00Z","service":"payments"}`))
	must(t, err == nil, "%v", err)
	d := rs.Evaluate(&gen[0])
	must(t, d.GroupKey == "generic/alertmanager/payments", "%q", d.GroupKey)
}
