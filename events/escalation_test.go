package events_test

import (
	"strings"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/events"
)

// An escalation becomes a firing escalation signal grouped by its id, of
// severity high unless it says otherwise; a missing field is named.
func TestEscalationSignal(t *testing.T) {
	at := time.Date(2025, 6, 5, 9, 48, 12, 0, time.FixedZone("CEST", 2*3600))
	e := events.Escalation{ID: "ZD-1", Title: "Charged twice", ReportedBy: "yuki", ReportedAt: at, CustomerImpact: "three tenants"}
	s, err := e.Signal()
	if err != nil {
		t.Fatal(err)
	}
	if s.Source != "escalation" || s.Kind != "escalation" || s.Fingerprint != "ZD-1" || s.Status != events.SignalFiring ||
		s.Severity != "high" || s.GroupKey != "escalation/ZD-1" || !s.StartsAt.Equal(at) || s.StartsAt.Location() != time.UTC {
		t.Fatalf("signal %+v", s)
	}
	for field, clear := range map[string]func(*events.Escalation){
		"id":              func(e *events.Escalation) { e.ID = "" },
		"title":           func(e *events.Escalation) { e.Title = "" },
		"reported_by":     func(e *events.Escalation) { e.ReportedBy = "" },
		"customer_impact": func(e *events.Escalation) { e.CustomerImpact = "" },
		"reported_at":     func(e *events.Escalation) { e.ReportedAt = time.Time{} },
	} {
		bad := e
		clear(&bad)
		if _, err := bad.Signal(); err == nil || !strings.HasPrefix(err.Error(), field+": is required") {
			t.Errorf("without %s: %v", field, err)
		}
	}
}
