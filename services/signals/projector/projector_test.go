package projector

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/integrationtest"
	"github.com/hikeshi/hikeshi/services/signals/rules"
)

func sigFor(i, groups int, status string) events.Signal {
	g := i % groups
	return events.Signal{Source: "alertmanager", Kind: "alert", Fingerprint: fmt.Sprintf("fp-%d", i), Status: status,
		Title: fmt.Sprintf("Disk full on shard %d", g), Severity: "high", Service: "search",
		StartsAt: time.Unix(1750000000, 0).UTC(), GroupKey: fmt.Sprintf("group-%d", g)}
}

func TestRulesEvaluateInOrder(t *testing.T) {
	rs, err := rules.Compile([]rules.Rule{
		{Name: "noise", When: `signal.labels["env"] == "test"`, Drop: true},
		{Name: "owner", When: `signal.source == "aws"`, Annotate: map[string]string{"owner": "cloud-sec", "playbook": "https://wiki/gd"}, Priority: "P2"},
		{Name: "critical", When: `signal.severity in ["critical", "high"] && signal.kind == "finding"`, Route: rules.RouteIncident,
			Incident: rules.IncidentAction{Service: "cloud", Severity: "2", Confidential: true}, GroupBy: `signal.account + "/" + signal.labels["finding_type"]`},
		{Name: "broken", When: `int(signal.title) > 0`, Route: rules.RouteIncident},
	}, rules.Rule{Route: rules.RouteTicket})
	if err != nil {
		t.Fatal(err)
	}
	gd := events.Signal{Source: "aws", Kind: "finding", Severity: "high", Account: "111", Labels: map[string]string{"finding_type": "Recon"}, GroupKey: "x"}
	d := rs.Evaluate(&gd)
	if d.Route != rules.RouteIncident || d.Priority != "P2" || d.Annotations["owner"] != "cloud-sec" || d.GroupKey != "aws/111/Recon" ||
		d.Incident.Severity != "SEV2" || !d.Incident.Confidential || strings.Join(d.Rules, ",") != "owner,critical" {
		t.Errorf("GuardDuty high: %+v", d)
	}
	if d := rs.Evaluate(&events.Signal{Labels: map[string]string{"env": "test"}}); !d.Drop {
		t.Errorf("noise not dropped: %+v", d)
	}
	// A rule that fails to evaluate (no such label) never loses the signal:
	// the default routes it, flagged.
	d = rs.Evaluate(&events.Signal{Source: "grafana", Kind: "alert", Severity: "low", Title: "not a number"})
	if d.Route != rules.RouteTicket || d.Flagged == "" || !strings.Contains(d.Flagged, "broken") {
		t.Errorf("failing rule: %+v", d)
	}
	for _, bad := range []rules.Rule{{When: `signal.source +`}, {When: `"x"`}, {Route: "page"}, {Drop: true, Route: rules.RouteTicket}, {Incident: rules.IncidentAction{Severity: "SEV9"}}} {
		if _, err := rules.Compile([]rules.Rule{bad}, rules.Rule{}); err == nil {
			t.Errorf("Compile(%+v) accepted", bad)
		}
	}
}

const incidentYAML = `
signals:
  token_env: SIG_TOKEN
  count_every: 50
  rules:
    - name: drop-canaries
      when: 'signal.title.startsWith("Canary")'
      drop: true
    - name: page
      when: 'signal.severity in ["critical", "high"]'
      route: incident
      annotate:
        playbook: https://runbooks.acme.internal/disk
`

// A storm of one alert across many fingerprints yields one incident per
// group, whose timeline counts occurrences in a handful of events.
func TestOneIncidentPerGroup(t *testing.T) {
	setSecrets(t)
	r := newRig(t, rigOpts{yaml: incidentYAML})
	const n, groups = 300, 3
	sigs := make([]events.Signal, 0, n)
	for i := range n {
		sigs = append(sigs, sigFor(i, groups, "firing"))
	}
	sigs = append(sigs, events.Signal{Source: "grafana", Kind: "alert", Fingerprint: "c1", Status: "firing", Title: "Canary probe",
		Severity: "critical", StartsAt: time.Unix(1, 0).UTC(), GroupKey: "canary"})
	if _, err := r.pub.Put(context.Background(), sigs); err != nil {
		t.Fatal(err)
	}
	r.run()
	r.waitHandled(uint64(len(sigs)), 60*time.Second)
	incidents := r.incidents()
	must(t, len(incidents) == groups, "incidents: %d, want %d", len(incidents), groups)
	for id, evs := range incidents {
		// declared + the records of 100 joins, 100 to a record, one more where
		// a batch ends inside the group: at most 3 events for 100 alerts.
		must(t, len(evs) <= 5, "incident %s has %d events for %d alerts: %v", id, len(evs), n/groups, evs)
	}
	// Resolving every alert of group 0 records "resolved" once.
	var res []events.Signal
	for i := 0; i < n; i += groups {
		res = append(res, sigFor(i, groups, "resolved"))
	}
	if _, err := r.pub.Put(context.Background(), res); err != nil {
		t.Fatal(err)
	}
	r.waitHandled(uint64(len(sigs)+len(res)), 60*time.Second)
	var resolved int
	for _, evs := range r.incidents() {
		for _, e := range evs {
			if strings.HasSuffix(e, "/resolved") {
				resolved++
			}
		}
	}
	must(t, resolved == 1, "resolved facts: %d, want 1", resolved)
}

// incidents reads the INCIDENTS stream: incident id → event types (with
// the reason of occurrence facts).
func (r *rig) incidents() map[string][]string {
	r.t.Helper()
	out := map[string][]string{}
	for _, e := range integrationtest.Stream(r.t, r.bus.JS, events.IncidentStream) {
		what := e.Type
		if d, err := e.Decode(); err == nil {
			if o, ok := d.(*events.SignalOccurrences); ok {
				what += "/" + o.Reason
			}
		}
		out[e.Envelope.Subject] = append(out[e.Envelope.Subject], what)
	}
	return out
}

// An escalation opens one triage item, however often it is delivered.
func TestEscalationOpensTriageItem(t *testing.T) {
	setSecrets(t)
	r := newRig(t, rigOpts{yaml: incidentYAML})
	r.escalateTwice("ZD-88213")
	kv, err := r.bus.JS.KeyValue(context.Background(), "hikeshi_signals")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := kv.ListKeysFiltered(context.Background(), "triage.>")
	if err != nil {
		t.Fatal(err)
	}
	var n int
	for k := range keys.Keys() {
		e, err := kv.Get(context.Background(), k)
		if err != nil {
			t.Fatal(err)
		}
		must(t, strings.Contains(string(e.Value()), `"status":"open"`) && strings.Contains(string(e.Value()), "yuki.tanaka"), "item %s", e.Value())
		n++
	}
	must(t, n == 1, "%d triage items, want 1", n)
	must(t, len(r.incidents()) == 0, "an escalation declared an incident by itself")
}

// Within the Msg-Id window a copy is not stored again; later (Alertmanager
// repeats hours later, SNS retries for days) it is stored and the
// projector counts it once: no second occurrence, no second incident.
func TestRepeatStoredOnceOrIgnored(t *testing.T) {
	setSecrets(t)
	r := newRig(t, rigOpts{yaml: incidentYAML})
	sig := sigFor(0, 1, "firing")
	n, err := r.pub.Put(context.Background(), []events.Signal{sig})
	must(t, err == nil && n == 1, "first put: %d %v", n, err)
	n, err = r.pub.Put(context.Background(), []events.Signal{sig})
	must(t, err == nil && n == 0, "second put: %d %v", n, err)
	must(t, r.count() == 1, "stream holds %d", r.count())
	r.publishLate(sig)
	r.run()
	r.waitHandled(2, 20*time.Second)
	g := r.group("group-0")
	must(t, g.Count == 1 && g.Firing == 1 && r.p.repeated.Load() == 1, "group after a late repeat: %+v", g)
	must(t, len(r.incidents()) == 1, "incidents: %d", len(r.incidents()))
	// A different status or start time is a different signal.
	sig.Status = "resolved"
	n, err = r.pub.Put(context.Background(), []events.Signal{sig})
	must(t, err == nil && n == 1, "resolved: %d %v", n, err)
}
