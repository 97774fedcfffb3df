package ingest

import (
	"strings"
	"testing"
)

// GuardDuty's service block reaches labels and summary; a sample finding
// is marked in both shapes GuardDuty sends the flag in.
func TestGuardDutyDetailsAndSample(t *testing.T) {
	sigs, err := parseEventBridge(fixture(t, "guardduty-portprobe.json"))
	must(t, err == nil && len(sigs) == 1, "%v", err)
	s := sigs[0]
	for k, v := range map[string]string{
		"action_type": "PORT_PROBE", "resource_role": "TARGET", "count": "1", "event_first_seen": "2026-12-03T01:02:11.000Z",
		"event_last_seen": "2026-12-03T01:02:11.000Z", "remote_ip": "198.51.100.7", "remote_org": "Example Hosting",
		"remote_country": "Netherlands", "threat_lists": "ProofPoint", "threat_names": "Scanner", "severity_score": "5",
		"detector_id": "d4c5e8a1b2f34e6f9a0b1c2d3e4f5a6b", "resource_type": "Instance",
	} {
		must(t, s.Labels[k] == v, "label %s = %q, want %q (labels %v)", k, s.Labels[k], v, s.Labels)
	}
	_, sample := s.Labels["sample"]
	must(t, !sample, "a real finding is marked sample")
	for _, want := range []string{"unprotected port", "Action: PORT_PROBE", "Remote IP: 198.51.100.7", "Count: 1", "Threat lists: ProofPoint"} {
		must(t, strings.Contains(s.Summary, want), "summary lacks %q:\n%s", want, s.Summary)
	}

	sigs, err = parseEventBridge(fixture(t, "guardduty-sample.json"))
	must(t, err == nil && sigs[0].Labels["sample"] == "true" && strings.Contains(sigs[0].Summary, "Sample finding"), "%v %+v", err, sigs)
	old := strings.Replace(string(fixture(t, "guardduty-portprobe.json")), `"additionalInfo": {`, `"additionalInfo": {"sample": true, `, 1)
	sigs, err = parseEventBridge([]byte(old))
	must(t, err == nil && sigs[0].Labels["sample"] == "true", "additionalInfo.sample: %v %+v", err, sigs)
}

// Alertmanager's description annotation is kept beside the summary.
func TestAlertmanagerKeepsDescription(t *testing.T) {
	sigs, err := parseAlertmanager(fixture(t, "alertmanager-v4-eu.json"), "alertmanager")
	must(t, err == nil, "%v", err)
	must(t, sigs[0].Summary == "Consumer group ledger-events is 950000 messages behind.\n\n"+
		"The ledger consumers in eu-west-1 stopped committing offsets 25 minutes ago; settlement files are late.", "summary %q", sigs[0].Summary)
	sigs, err = parseAlertmanager(fixture(t, "grafana.json"), "grafana")
	must(t, err == nil && strings.HasSuffix(sigs[0].Summary, "\n\nThe system has high memory usage"), "%v %q", err, sigs[0].Summary)
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
