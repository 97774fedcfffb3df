package signals

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/hikeshi/hikeshi/services/config"
	"github.com/hikeshi/hikeshi/services/signals/rules"
)

func TestExplain(t *testing.T) {
	f, err := config.Parse("hikeshi.yaml", []byte(incidentYAML))
	if err != nil {
		t.Fatal(err)
	}
	xs, err := Explain(f, "generic", []byte(`{"source":"alertmanager","kind":"alert","fingerprint":"f","status":"firing","title":"DiskFull",
		"severity":"critical","starts_at":"2025-06-04T11:02:30Z","group_key":"g"}`))
	if err != nil || len(xs) != 1 {
		t.Fatal(xs, err)
	}
	var out bytes.Buffer
	xs[0].Describe(&out)
	for _, want := range []string{`"fingerprint": "f"`, "matched: page", `action: incident for group "generic/alertmanager/g" (service "alertmanager", severity SEV1`,
		"playbook: https://runbooks.acme.internal/disk"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if _, err := Explain(f, "generic", []byte(`{"source":"x","severity":"low"}`)); err == nil || !strings.Contains(err.Error(), "fingerprint") {
		t.Errorf("invalid signal: %v", err)
	}
	if _, err := Explain(f, "nagios", []byte(`{}`)); err == nil || !strings.Contains(err.Error(), "alertmanager, aws, escalation, gcp-scc, generic, grafana") {
		t.Errorf("unknown source: %v", err)
	}
}

// Every vendor payload is read by the parser of its endpoint, and each
// normalised signal gets its decision.
func TestExplainVendorPayloads(t *testing.T) {
	f, err := config.Parse("hikeshi.yaml", []byte(`
signals:
  rules:
    - name: guardduty
      when: 'signal.source == "aws" && signal.labels["detail-type"] == "GuardDuty Finding"'
      route: incident
      incident: {service: cloud, confidential: true}
    - name: scc
      when: 'signal.source == "gcp-scc"'
      route: none
    - name: grafana-blue
      when: 'signal.labels["team"] == "blue"'
      drop: true
  default: {route: incident}
`))
	if err != nil {
		t.Fatal(err)
	}
	gd := fixture(t, "guardduty-eventbridge.json")
	sns, _ := json.Marshal(map[string]string{"Type": "Notification", "TopicArn": "arn:aws:sns:us-west-2:1:t", "Message": string(gd)})
	scc := fixture(t, "scc-finding.json")
	push, _ := json.Marshal(map[string]any{"message": map[string]string{"data": base64.StdEncoding.EncodeToString(scc)}})
	for _, tc := range []struct {
		name, source string
		payload      []byte
		signals      int
		rule, route  string
	}{
		{"alertmanager", "alertmanager", fixture(t, "alertmanager-v4.json"), 2, "", rules.RouteIncident},
		{"grafana", "grafana", fixture(t, "grafana.json"), 2, "grafana-blue", "drop"},
		{"guardduty", "aws", gd, 1, "guardduty", rules.RouteIncident},
		{"guardduty via SNS", "aws", sns, 1, "guardduty", rules.RouteIncident},
		{"security hub", "aws", fixture(t, "securityhub-eventbridge.json"), 1, "", rules.RouteIncident},
		{"scc push", "gcp-scc", push, 1, "scc", rules.RouteNone},
		{"scc notification", "gcp-scc", scc, 1, "scc", rules.RouteNone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			xs, err := Explain(f, tc.source, tc.payload)
			if err != nil {
				t.Fatal(err)
			}
			if len(xs) != tc.signals {
				t.Fatalf("%d signals, want %d", len(xs), tc.signals)
			}
			for _, x := range xs {
				route, rule := x.Decision.Route, strings.Join(x.Decision.Rules, ",")
				if x.Decision.Drop {
					route = "drop"
				}
				if route != tc.route || rule != tc.rule || x.Signal.Source != tc.source || x.Signal.GroupKey == "" {
					t.Errorf("%s: rule %q route %q group %q", x.Signal.Fingerprint, rule, route, x.Signal.GroupKey)
				}
			}
		})
	}
	if _, err := Explain(f, "aws", fixture(t, "sns-subscription-confirmation.json")); err == nil || !strings.Contains(err.Error(), "SubscriptionConfirmation") {
		t.Errorf("subscription confirmation: %v", err)
	}
	if _, err := Explain(f, "alertmanager", []byte(`{"alerts":`)); err == nil || !strings.Contains(err.Error(), "alertmanager payload") {
		t.Errorf("broken payload: %v", err)
	}
}
