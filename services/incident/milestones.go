package incident

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/hikeshi/hikeshi/events"
)

// Milestone sources.
const (
	Recorded = "recorded" // a milestone_recorded event says so
	Derived  = "derived"  // inferred from another event (From)
)

// Milestone is when the incident reached one step of its response.
type Milestone struct {
	Name   string    `json:"name"`
	At     time.Time `json:"at"`
	Source string    `json:"source"`
	// From is the type of the event the milestone comes from.
	From    string `json:"from"`
	EventID string `json:"event_id"`
	// RecordedAt and By: when the event was recorded and by whom.
	RecordedAt time.Time `json:"recorded_at"`
	By         string    `json:"by,omitempty"`
	// Corrects and Reason, for a record that corrects an earlier one.
	Corrects string `json:"corrects,omitempty"`
	Reason   string `json:"reason,omitempty"`
}

// Milestones are an incident's milestones as its events tell them: the
// derived ones, the last record of each, and every record in order.
type Milestones struct {
	Derived  map[string]Milestone `json:"derived,omitempty"`
	Recorded map[string]Milestone `json:"recorded,omitempty"`
	History  []Milestone          `json:"history,omitempty"`
}

// DeriveMilestones folds an incident's events, in stream order, into its
// milestones. It is the fold State applies, offered on its own: pure, so
// its rules are tested with tables.
//
// Derived, each from the first event that shows it: detected from the
// declaration, acknowledged from a commander assigned, mitigated from a
// status at or past monitoring, resolved from the status resolved. A
// record (milestone_recorded) wins over the derivation; a later record of
// the same milestone corrects an earlier one, which stays in History.
func DeriveMilestones(evs []events.Envelope) (Milestones, error) {
	var m Milestones
	for _, e := range evs {
		d, err := e.Decode()
		if err != nil {
			return m, fmt.Errorf("milestones: event %s: %w", e.ID, err)
		}
		m.observe(e, d)
	}
	return m, nil
}

// derivations maps an event to the milestone it shows, if any.
func derivation(d events.Data) string {
	switch d := d.(type) {
	case *events.Declared:
		return events.MilestoneDetected
	case *events.CommanderAssigned:
		return events.MilestoneAcknowledged
	case *events.StatusUpdated:
		switch d.To {
		case events.Monitoring:
			return events.MilestoneMitigated
		case events.Resolved:
			return events.MilestoneResolved
		}
	}
	return ""
}

func (m *Milestones) observe(e events.Envelope, d events.Data) {
	if r, ok := d.(*events.MilestoneRecorded); ok {
		ms := Milestone{Name: r.Name, At: r.OccurredAt, Source: Recorded, From: e.Type, EventID: e.ID,
			RecordedAt: e.Time, By: e.Actor, Corrects: r.Corrects, Reason: r.Reason}
		if m.Recorded == nil {
			m.Recorded = map[string]Milestone{}
		}
		m.Recorded[r.Name] = ms
		m.History = append(m.History, ms)
		return
	}
	name := derivation(d)
	if name == "" {
		return
	}
	if _, seen := m.Derived[name]; seen {
		return
	}
	if m.Derived == nil {
		m.Derived = map[string]Milestone{}
	}
	m.Derived[name] = Milestone{Name: name, At: e.Time, Source: Derived, From: e.Type, EventID: e.ID, RecordedAt: e.Time, By: e.Actor}
	// A status that skips a step reaches the steps it skipped too.
	if name == events.MilestoneResolved {
		if _, seen := m.Derived[events.MilestoneMitigated]; !seen {
			mit := m.Derived[name]
			mit.Name = events.MilestoneMitigated
			m.Derived[events.MilestoneMitigated] = mit
		}
	}
}

// Effective lists the milestones reached, in the order a response reaches
// them: each one's last record, else its derivation.
func (m Milestones) Effective() []Milestone {
	out := []Milestone{}
	for _, name := range events.MilestoneNames {
		if r, ok := m.Recorded[name]; ok {
			out = append(out, r)
		} else if d, ok := m.Derived[name]; ok {
			out = append(out, d)
		}
	}
	return out
}

// At is when the incident reached the milestone, zero if it has not.
func (m Milestones) At(name string) time.Time {
	if r, ok := m.Recorded[name]; ok {
		return r.At
	}
	return m.Derived[name].At
}

func (m Milestones) clone() Milestones {
	return Milestones{Derived: maps.Clone(m.Derived), Recorded: maps.Clone(m.Recorded), History: slices.Clone(m.History)}
}
