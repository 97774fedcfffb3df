package signals

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/events"
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
	post(PathAlertmanager, fixture(t, "alertmanager-v4.json"), testToken)    // one firing, one resolved
	post(PathAlertmanager, fixture(t, "alertmanager-v4-eu.json"), testToken) // same groupKey, another Alertmanager
	post(PathGrafana, fixture(t, "grafana.json"), "grafana-token")           // org 1, two rules, "{}:{}"
	post(PathGrafana, fixture(t, "grafana-org2.json"), "grafana-token")      // org 2, two rules, "{}:{}"
	am := r.stored()[0]
	post(PathGeneric, []byte(`{"source":"alertmanager","fingerprint":"other","title":"Copied key","severity":"critical",
		"starts_at":"2025-06-04T11:02:30Z","group_key":`+strconv.Quote(am.GroupKey)+`}`), testToken)
	r.run()
	r.waitHandled(8, 20*time.Second)
	incidents := r.incidents()
	must(t, len(incidents) == 7, "%d incidents, want 7 (2 Alertmanagers, 2 rules in each of 2 Grafana orgs, the generic signal): %v",
		len(incidents), incidents)
}

// Each source's default key: the sender's key under source, sender and
// receiver; Grafana's "{}:{}" by the alert's rule.
func TestDefaultGroupKeys(t *testing.T) {
	keys := func(name, source string) []string {
		sigs, err := parseAlertmanager(fixture(t, name), source)
		must(t, err == nil, "%s: %v", name, err)
		var out []string
		for _, s := range sigs {
			out = append(out, s.GroupKey)
		}
		return out
	}
	want := map[string][]string{
		"alertmanager-v4.json": {`alertmanager/http://alertmanager.acme.internal:9093/hikeshi/{}:{alertname="KafkaConsumerLag"}`,
			`alertmanager/http://alertmanager.acme.internal:9093/hikeshi/{}:{alertname="KafkaConsumerLag"}`},
		"grafana.json": {"grafana/https://play.grafana.org/org/1/My Super Webhook/rule/1afz29v7z",
			"grafana/https://play.grafana.org/org/1/My Super Webhook/rule/d1rdpdv7k"},
		"grafana-org2.json": {"grafana/https://grafana.acme.example/org/2/hikeshi/rule/be4jd7w3kmrcwb",
			"grafana/https://grafana.acme.example/org/2/hikeshi/rule/ce71p0x2q9kn4a"},
	}
	for name, w := range want {
		source := "grafana"
		if strings.HasPrefix(name, "alertmanager") {
			source = "alertmanager"
		}
		got := keys(name, source)
		must(t, strings.Join(got, "\n") == strings.Join(w, "\n"), "%s:\n%s\nwant\n%s", name, strings.Join(got, "\n"), strings.Join(w, "\n"))
	}
	// A Grafana policy that groups by labels keeps Grafana's key.
	b := strings.Replace(string(fixture(t, "grafana-org2.json")), `"groupLabels": {}`, `"groupLabels": {"grafana_folder": "Payments"}`, 1)
	b = strings.Replace(b, `"groupKey": "{}:{}"`, `"groupKey": "{}:{grafana_folder=\"Payments\"}"`, 1)
	sigs, err := parseAlertmanager([]byte(b), "grafana")
	must(t, err == nil && sigs[0].GroupKey == sigs[1].GroupKey &&
		sigs[0].GroupKey == `grafana/https://grafana.acme.example/org/2/hikeshi/{}:{grafana_folder="Payments"}`, "%v %+v", err, sigs)
	// Without a rule UID anywhere, the folder and the rule's title.
	a := amAlert{Labels: map[string]string{"alertname": "Disk", "grafana_folder": "Infra"}, Fingerprint: "f"}
	must(t, grafanaRule(&a) == "Infra/Disk", "rule %q", grafanaRule(&a))
	a.Labels = nil
	must(t, grafanaRule(&a) == "alert/f", "rule %q", grafanaRule(&a))

	gen, err := parseGeneric([]byte(`[{"source":"datadog","fingerprint":"m1","title":"t","severity":"low","starts_at":"2025-01-01T00:00:00Z","group_key":"disk"},
		{"source":"datadog","fingerprint":"m2","title":"t","severity":"low","starts_at":"2025-01-01T00:00:00Z"}]`))
	must(t, err == nil && gen[0].GroupKey == "generic/datadog/disk" && gen[1].GroupKey == "generic/datadog/m2", "%v %+v", err, gen)
}

// A rule's group_by replaces the default key, still under the source.
func TestGroupByKeepsSourcesApart(t *testing.T) {
	rs, err := rules.Compile([]rules.Rule{{Name: "by-service", GroupBy: `signal.service`, Route: rules.RouteIncident}}, rules.Rule{})
	must(t, err == nil, "%v", err)
	am := rs.Evaluate(&events.Signal{Source: "alertmanager", Service: "payments"})
	gf := rs.Evaluate(&events.Signal{Source: "grafana", Service: "payments"})
	must(t, am.GroupKey == "alertmanager/payments" && gf.GroupKey == "grafana/payments", "%q %q", am.GroupKey, gf.GroupKey)
	// A generic producer calling itself alertmanager stays under generic.
	gen, err := parseGeneric([]byte(`{"source":"alertmanager","fingerprint":"f","title":"t","severity":"high","starts_at":"2025-01-01T00:00:00Z","service":"payments"}`))
	must(t, err == nil, "%v", err)
	d := rs.Evaluate(&gen[0])
	must(t, d.GroupKey == "generic/alertmanager/payments", "%q", d.GroupKey)
}
