package events

import "time"

// Facts with their own time: evidence kept for an investigation, with its
// chain of custody, and the milestones of the response. Each carries the
// time it happened apart from the event's time, when it was recorded.

// Event types of facts recorded on an incident.
const (
	TypeEvidenceAdded      = "io.hikeshi.incident.evidence_added"
	TypeEvidenceHandedOver = "io.hikeshi.incident.evidence_handed_over"
	TypeMilestoneRecorded  = "io.hikeshi.incident.milestone_recorded"
)

// EvidenceAdded records an item of evidence: what it is, the SHA-256 of
// its bytes, where it is kept and who holds it.
type EvidenceAdded struct {
	// EvidenceID names the item within its incident (E1, E2, …): what a
	// hand-over refers to.
	EvidenceID  string `json:"evidence_id"`
	Name        string `json:"name"`
	SHA256      string `json:"sha256"`
	Location    string `json:"location"`
	Custodian   string `json:"custodian"`
	Description string `json:"description,omitempty"`
}

// EvidenceHandedOver moves an item of evidence from one custodian to the
// next: one link of its chain of custody.
type EvidenceHandedOver struct {
	EvidenceID string `json:"evidence_id"`
	From       string `json:"from"`
	To         string `json:"to"`
	Reason     string `json:"reason,omitempty"`
	// At is when the item changed hands; absent: when it was recorded.
	At time.Time `json:"at,omitzero"`
}

// Milestone names, in the order a response reaches them.
const (
	MilestoneImpactStarted = "impact_started"
	MilestoneDetected      = "detected"
	MilestoneAcknowledged  = "acknowledged"
	MilestoneMitigated     = "mitigated"
	MilestoneResolved      = "resolved"
)

// MilestoneNames lists the milestones in the order a response reaches them.
var MilestoneNames = []string{MilestoneImpactStarted, MilestoneDetected, MilestoneAcknowledged, MilestoneMitigated, MilestoneResolved}

// MilestoneRecorded says when the incident reached a milestone. A second
// record of the same milestone corrects the first, which stays in the log.
type MilestoneRecorded struct {
	Name       string    `json:"name"`
	OccurredAt time.Time `json:"occurred_at"`
	// Corrects is the id of the milestone_recorded event this one
	// replaces, if any.
	Corrects string `json:"corrects,omitempty"`
	Reason   string `json:"reason,omitempty"`
}

func (EvidenceAdded) EventType() string      { return TypeEvidenceAdded }
func (EvidenceHandedOver) EventType() string { return TypeEvidenceHandedOver }
func (MilestoneRecorded) EventType() string  { return TypeMilestoneRecorded }

// OccurredAt is when the fact in d happened, when it says so apart from
// the time it was recorded: a backdated note, a milestone, a hand-over.
// Zero for every other event.
func OccurredAt(d Data) time.Time {
	switch d := d.(type) {
	case *NoteAdded:
		return d.OccurredAt
	case *MilestoneRecorded:
		return d.OccurredAt
	case *EvidenceHandedOver:
		return d.At
	}
	return time.Time{}
}

func init() {
	reg := func(typ, name, doc string, newf func() Data) {
		Register(Spec{Type: typ, Name: name, Version: 1, Doc: doc, New: newf})
	}
	reg(TypeEvidenceAdded, "evidence_added", "An item of evidence was recorded: name, SHA-256, where it is stored and its custodian.",
		func() Data { return &EvidenceAdded{} })
	reg(TypeEvidenceHandedOver, "evidence_handed_over", "An item of evidence changed hands: one link of its chain of custody.",
		func() Data { return &EvidenceHandedOver{} })
	reg(TypeMilestoneRecorded, "milestone_recorded", "The incident reached a milestone at a given time; a later record of the same milestone corrects it.",
		func() Data { return &MilestoneRecorded{} })
}
