package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const rulesYAML = `
signals:
  rules:
    - name: guardduty-incidents
      when: 'signal.labels["detail-type"] == "GuardDuty Finding"'
      route: incident
      incident: {service: cloud, severity: SEV2, confidential: true}
      group_by: 'signal.account + "/" + signal.title'
    - name: kafka-lag
      when: 'signal.labels["alertname"] == "KafkaConsumerLag"'
      route: none
      priority: P3
  default: {route: incident}
`

// rules test reads what senders send — a vendor payload from a file or
// stdin — through the endpoint's own parser and prints each normalised
// signal and its decision; a configuration the hub would refuse is
// refused with the same error.
func TestRulesTestReadsVendorPayloads(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "hikeshi.yaml")
	if err := os.WriteFile(cfg, []byte(rulesYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	testdata := filepath.Join("..", "..", "signals", "ingest", "testdata")
	cli := func(stdin string, args ...string) (string, int) {
		t.Helper()
		if stdin != "" {
			f, err := os.Open(stdin)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			old := os.Stdin
			os.Stdin = f
			defer func() { os.Stdin = old }()
		}
		var out, errOut bytes.Buffer
		code := run(context.Background(), args, &out, &errOut)
		return out.String() + errOut.String(), code
	}

	out, code := cli("", "rules", "test", "--source", "alertmanager", cfg, filepath.Join(testdata, "alertmanager-v4.json"))
	for _, want := range []string{`"source": "alertmanager"`, `"alertname": "KafkaConsumerLag"`, "matched: kafka-lag", "action: none", "priority: P3"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("alertmanager: exit %d, output lacks %q:\n%s", code, want, out)
		}
	}
	if n := strings.Count(out, "signal (the data of io.hikeshi.signal.received)"); n != 2 {
		t.Errorf("alertmanager: %d signals printed, want the payload's 2:\n%s", n, out)
	}

	out, code = cli(filepath.Join(testdata, "guardduty-eventbridge.json"), "rules", "test", cfg, "--source", "aws")
	for _, want := range []string{`"kind": "finding"`, "matched: guardduty-incidents",
		`action: incident for group "aws/123456789012/`, `(service "cloud", severity SEV2, confidential true)`} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("guardduty on stdin: exit %d, output lacks %q:\n%s", code, want, out)
		}
	}

	out, code = cli("", "rules", "test", "--source", "grafana", "--json", cfg, filepath.Join(testdata, "grafana.json"))
	if code != 0 || !strings.Contains(out, `"decision": {`) || !strings.Contains(out, `"source": "grafana"`) {
		t.Errorf("grafana --json: exit %d:\n%s", code, out)
	}

	out, code = cli("", "rules", "test", "--source", "nagios", cfg, filepath.Join(testdata, "grafana.json"))
	if code != 1 || !strings.Contains(out, "alertmanager, aws, escalation, gcp-scc, generic, grafana") {
		t.Errorf("unknown source: exit %d:\n%s", code, out)
	}

	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("signals:\n  rules:\n    - name: findings\n      when: 'signal.kind == \"finding\"'\n      route: ticket\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, code = cli("", "rules", "test", "--source", "aws", bad, filepath.Join(testdata, "guardduty-eventbridge.json"))
	if code != 1 || !strings.Contains(out, "signals.rules[0] (findings): route ticket needs signals.github or signals.jira") {
		t.Errorf("ticket route without a tracker: exit %d:\n%s", code, out)
	}
}
