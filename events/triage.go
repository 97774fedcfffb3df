package events

import "time"

// Triage items: an escalation waiting for the security team to accept it
// (declare an incident) or dismiss it. Each item is its own subject on the
// TRIAGE stream, triage.<key>: first opened, then at most one decision,
// which the deciding side publishes expecting the subject's last sequence
// to be the opening, so two decisions cannot both land.
const (
	TriageStream        = "TRIAGE"
	TriageSubjectPrefix = "triage"

	TypeTriageOpened    = "io.hikeshi.signal.triage_opened"
	TypeTriageAccepted  = "io.hikeshi.signal.triage_accepted"
	TypeTriageDismissed = "io.hikeshi.signal.triage_dismissed"
)

// TriageKey names the triage item of a signal: the source and fingerprint
// (an escalation's support ticket id), so a repeat is the same item.
func TriageKey(source, fingerprint string) string { return DeriveID("triage", source, fingerprint) }

// TriageSubject is the item's subject on TRIAGE.
func TriageSubject(key string) string { return TriageSubjectPrefix + "." + key }

// TriageOpened is a new triage item.
type TriageOpened struct {
	Key            string       `json:"key"`
	Source         string       `json:"source"`
	Fingerprint    string       `json:"fingerprint"`
	Title          string       `json:"title"`
	Summary        string       `json:"summary,omitempty"`
	ReportedBy     string       `json:"reported_by,omitempty"`
	ReportedAt     time.Time    `json:"reported_at"`
	CustomerImpact string       `json:"customer_impact,omitempty"`
	Service        string       `json:"service,omitempty"` // suspected service
	Severity       string       `json:"severity"`          // a signal severity
	Priority       string       `json:"priority,omitempty"`
	Links          []SignalLink `json:"links,omitempty"`
}

// TriageAccepted: an incident was declared from the item. It is on the
// item's subject and, as a fact, on the incident.
type TriageAccepted struct {
	Key        string `json:"key"`
	IncidentID string `json:"incident_id"`
	CaseNumber string `json:"case_number"`
	AcceptedBy string `json:"accepted_by"`
}

// TriageDismissed: the item needs no incident.
type TriageDismissed struct {
	Key         string `json:"key"`
	DismissedBy string `json:"dismissed_by"`
	Reason      string `json:"reason"`
}

func (TriageOpened) EventType() string    { return TypeTriageOpened }
func (TriageAccepted) EventType() string  { return TypeTriageAccepted }
func (TriageDismissed) EventType() string { return TypeTriageDismissed }

func init() {
	Register(Spec{Type: TypeTriageOpened, Name: "signal_triage_opened", Version: 1,
		Doc: "An escalation opened a triage item for the security team.",
		New: func() Data { return &TriageOpened{} }})
	Register(Spec{Type: TypeTriageAccepted, Name: "signal_triage_accepted", Version: 1,
		Doc: "A triage item was accepted: an incident was declared from it.",
		New: func() Data { return &TriageAccepted{} }})
	Register(Spec{Type: TypeTriageDismissed, Name: "signal_triage_dismissed", Version: 1,
		Doc: "A triage item was dismissed, by whom and why.",
		New: func() Data { return &TriageDismissed{} }})
}
