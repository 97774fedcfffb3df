package events_test

import (
	"errors"
	"testing"

	"github.com/hikeshi/hikeshi/events"
)

func TestParseSeverity(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want events.Severity
	}{
		{"SEV1", events.SEV1},
		{"sev2", events.SEV2},
		{" Sev3 ", events.SEV3},
		{"4", events.SEV4},
		{"5\n", events.SEV5},
	} {
		if got, err := events.ParseSeverity(tc.in); err != nil || got != tc.want {
			t.Errorf("ParseSeverity(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"", " ", "SEV0", "SEV6", "0", "6", "sev 1", "SEV1x", "SEV", "S", "high", "SEV-1", "１"} {
		if got, err := events.ParseSeverity(in); err == nil {
			t.Errorf("ParseSeverity(%q) = %q, want an error", in, got)
		}
	}
}

func TestSeverityRank(t *testing.T) {
	for i, s := range []events.Severity{events.SEV1, events.SEV2, events.SEV3, events.SEV4, events.SEV5} {
		if s.Rank() != i+1 {
			t.Errorf("%s.Rank() = %d, want %d", s, s.Rank(), i+1)
		}
	}
	for _, s := range []events.Severity{"", "SEV6", "sev1", "critical"} {
		if s.Rank() != 0 {
			t.Errorf("%q.Rank() = %d, want 0", s, s.Rank())
		}
	}
	if !(events.SEV1.Rank() < events.SEV4.Rank()) {
		t.Error("SEV1 must rank before (worse than) SEV4")
	}
}

func TestStatusRank(t *testing.T) {
	lifecycle := []events.Status{events.Investigating, events.Identified, events.Monitoring, events.Resolved, events.Closed}
	for i, s := range lifecycle {
		if s.Rank() != i+1 {
			t.Errorf("%s.Rank() = %d, want %d", s, s.Rank(), i+1)
		}
	}
	for _, s := range []events.Status{"", "open", "Resolved", "mitigated"} {
		if s.Rank() != 0 {
			t.Errorf("%q.Rank() = %d, want 0", s, s.Rank())
		}
	}
}

func TestIncidentSubject(t *testing.T) {
	got, err := events.IncidentSubject("inc-1", events.TypeSeverityChanged)
	if err != nil || got != "incidents.inc-1.severity_changed" {
		t.Errorf("IncidentSubject = %q, %v", got, err)
	}
	if got, err := events.IncidentSubject("inc-1", "io.hikeshi.incident.archived"); !errors.Is(err, events.ErrMalformed) {
		t.Errorf("IncidentSubject(unknown type) = %q, %v; want ErrMalformed", got, err)
	}
	if f := events.IncidentFilter("inc-1"); f != "incidents.inc-1.>" {
		t.Errorf("IncidentFilter = %q", f)
	}
	for _, s := range events.Specs() {
		subject, err := events.IncidentSubject("019593fa-5d95-7d57-b4cb-bc6b32ea3529", s.Type)
		if err != nil {
			t.Fatal(err)
		}
		if id, ok := events.IncidentID(subject); !ok || id != "019593fa-5d95-7d57-b4cb-bc6b32ea3529" {
			t.Errorf("IncidentID(%q) = %q, %v", subject, id, ok)
		}
	}
}

func TestIncidentID(t *testing.T) {
	for _, tc := range []struct {
		subject string
		id      string
		ok      bool
	}{
		{"incidents.inc-1.declared", "inc-1", true},
		{"incidents.019593fa-5d95-7d57-b4cb-bc6b32ea3529.closed", "019593fa-5d95-7d57-b4cb-bc6b32ea3529", true},
		{"incidents.inc-1.declared.extra", "inc-1", true},
		{"incidents.inc-1", "", false},
		{"incidents..declared", "", false},
		{"incidents.", "", false},
		{"incidents", "", false},
		{"", "", false},
		{"timeline.inc-1.declared", "", false},
		{"xincidents.inc-1.declared", "", false},
	} {
		id, ok := events.IncidentID(tc.subject)
		if ok != tc.ok || ok && id != tc.id {
			t.Errorf("IncidentID(%q) = %q, %v; want %q, %v", tc.subject, id, ok, tc.id, tc.ok)
		}
	}
}
