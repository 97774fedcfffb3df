package projector

import (
	"context"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/hikeshi/hikeshi/services/config"
	"github.com/hikeshi/hikeshi/services/signals/ingest"
	"github.com/hikeshi/hikeshi/services/signals/rules"
)

func awsSecret() map[string]string { return map[string]string{"X-Hikeshi-Secret": "aws-secret"} }

// An updated finding (same id, higher count and severity) is a new stored
// signal; the same event delivered again is not.
func TestUpdatedFindingIsNewSignal(t *testing.T) {
	setSecrets(t)
	r := newRig(t, rigOpts{yaml: baseYAML})
	for _, c := range []struct {
		file, new string
	}{
		{"guardduty-portprobe.json", `"new":1`},
		{"guardduty-portprobe.json", `"new":0`}, // EventBridge retrying
		{"guardduty-portprobe-updated.json", `"new":1`},
		{"guardduty-portprobe-updated.json", `"new":0`},
	} {
		resp, out := r.post(ingest.PathAWS, fixture(t, c.file), awsSecret())
		must(t, resp.StatusCode == http.StatusAccepted && strings.Contains(out, c.new), "%s: %d %s, want %s", c.file, resp.StatusCode, out, c.new)
	}
	sigs := r.stored()
	must(t, len(sigs) == 2, "stored %d signals, want 2", len(sigs))
	first, upd := sigs[0], sigs[1]
	must(t, first.Fingerprint == upd.Fingerprint && first.StartsAt.Equal(upd.StartsAt) && first.Status == upd.Status,
		"the update is another occurrence: %+v / %+v", first, upd)
	must(t, first.Severity == "medium" && upd.Severity == "high" && first.Labels["count"] == "1" && upd.Labels["count"] == "14",
		"severity %s→%s, count %s→%s", first.Severity, upd.Severity, first.Labels["count"], upd.Labels["count"])
	must(t, upd.Revision == "2026-12-03T07:08:40.118Z count=14 severity=8", "revision %q", upd.Revision)
}

// The example rules drop sample findings and group GuardDuty findings by
// account and type, never by the instance or the remote IP.
func TestDeployExampleGuardDuty(t *testing.T) {
	b, err := os.ReadFile("../../../deploy/hikeshi.yaml")
	must(t, err == nil, "%v", err)
	f, err := config.Parse("deploy/hikeshi.yaml", b)
	must(t, err == nil, "%v", err)
	var c section
	_, err = f.Section("signals", &c)
	must(t, err == nil, "%v", err)
	rs, err := rules.Compile(c.Projector.Rules, c.Projector.Default)
	must(t, err == nil, "%v", err)

	sample, err := ingest.Parse("aws", fixture(t, "guardduty-sample.json"))
	must(t, err == nil, "%v", err)
	must(t, rs.Evaluate(&sample[0]).Drop, "sample finding not dropped")
	for _, name := range []string{"guardduty-portprobe.json", "guardduty-portprobe-updated.json"} {
		sigs, err := ingest.Parse("aws", fixture(t, name))
		must(t, err == nil, "%v", err)
		d := rs.Evaluate(&sigs[0])
		must(t, !d.Drop && d.Flagged == "", "%s: %+v", name, d)
		must(t, d.GroupKey == "aws/111122223333/Recon:EC2/PortProbeUnprotectedPort", "%s: group %q", name, d.GroupKey)
	}
}

// A GuardDuty finding routed to an incident, then its update with a higher
// severity, both as EventBridge delivers them (each twice): the update is
// stored and raises the incident's severity once; nothing opens a second
// incident.
func TestUpdatedGuardDutyFindingRaisesIncident(t *testing.T) {
	setSecrets(t)
	r := newRig(t, rigOpts{yaml: baseYAML + `
  rules:
    - name: findings
      when: 'signal.kind == "finding"'
      route: incident
`})
	r.run()
	for _, file := range []string{"guardduty-portprobe.json", "guardduty-portprobe.json", "guardduty-portprobe-updated.json", "guardduty-portprobe-updated.json"} {
		resp, out := r.post(ingest.PathAWS, fixture(t, file), awsSecret())
		must(t, resp.StatusCode == http.StatusAccepted, "%s: %d %s", file, resp.StatusCode, out)
		r.settle()
	}
	tls := r.timelines()
	must(t, len(tls) == 1, "incidents: %d", len(tls))
	got := tls[0].severities(t)
	must(t, slices.Equal(got, []string{"SEV3>SEV2 by signals"}), "severity changes: %q", got)
}

// Identifiers are bounded at ingest: a fingerprint too long for the facts
// it is copied into is refused with 400, not stored to stall the projector.
func TestLongIdentifiersRefused(t *testing.T) {
	setSecrets(t)
	r := newRig(t, rigOpts{yaml: incidentYAML})
	long := strings.Repeat("f", 1025)
	body := `{"source":"datadog","fingerprint":"` + long + `","title":"Disk full","severity":"critical","starts_at":"2025-06-01T00:00:00Z"}`
	resp, out := r.post(ingest.PathGeneric, []byte(body), auth(testToken))
	must(t, resp.StatusCode == http.StatusBadRequest && strings.Contains(out, "fingerprint is longer than"), "%d %s", resp.StatusCode, out)
	must(t, r.count() == 0, "stored %d signals", r.count())
}

// A service label of blanks is no service: the critical alert still opens
// an incident, under the source's name.
func TestBlankServiceStillDeclares(t *testing.T) {
	setSecrets(t)
	r := newRig(t, rigOpts{yaml: incidentYAML})
	r.run()
	body := `{"source":"datadog","fingerprint":"db-1","title":"Disk full","severity":"critical","service":" ","starts_at":"2025-06-01T00:00:00Z"}`
	resp, out := r.post(ingest.PathGeneric, []byte(body), auth(testToken))
	must(t, resp.StatusCode == http.StatusAccepted, "%d %s", resp.StatusCode, out)
	r.settle()
	tls := r.timelines()
	must(t, len(tls) == 1, "incidents: %d", len(tls))
	st, err := r.env.Commands.Get(context.Background(), tls[0].id)
	must(t, err == nil && st.Service == "datadog", "service %q %v", st.Service, err)
}
