package projector

import (
	"context"
	"testing"

	"github.com/hikeshi/hikeshi/events"
)

// An escalation's triage item is published on TRIAGE once, for the Slack
// module, however often the escalation is delivered and handled.
func TestEscalationPublishesTriageItemOnce(t *testing.T) {
	setSecrets(t)
	r := newRig(t, rigOpts{yaml: incidentYAML})
	r.escalateTwice("ZD-90001")
	ctx := context.Background()
	k := events.TriageKey("escalation", "ZD-90001")
	s, err := r.bus.JS.Stream(ctx, events.TriageStream)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetLastMsgForSubject(ctx, events.TriageSubject(k))
	if err != nil {
		t.Fatal(err)
	}
	env, err := events.Unmarshal(m.Data)
	if err != nil {
		t.Fatal(err)
	}
	d, err := env.Decode()
	if err != nil {
		t.Fatal(err)
	}
	it := d.(*events.TriageOpened)
	must(t, it.Key == k && it.Title == "Customers charged twice" && it.ReportedBy == "yuki.tanaka" && it.Service == "payments", "item %+v", it)
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	must(t, info.State.Msgs == 1, "%d messages on TRIAGE, want 1", info.State.Msgs)
}
