package events

import (
	"fmt"
	"strings"
	"time"
)

// Subject prefixes on the INCIDENTS stream: incidents.<incident-id>.<name>.
const (
	IncidentStream        = "INCIDENTS"
	IncidentSubjectPrefix = "incidents"
)

// IncidentSubject is the NATS subject of an event of type typ on incident id.
func IncidentSubject(id, typ string) (string, error) {
	name, err := SubjectName(typ)
	if err != nil {
		return "", err
	}
	return IncidentSubjectPrefix + "." + id + "." + name, nil
}

// IncidentFilter matches every event of incident id.
func IncidentFilter(id string) string { return IncidentSubjectPrefix + "." + id + ".>" }

// Severity is SEV1 (worst) to SEV5.
type Severity string

const (
	SEV1 Severity = "SEV1"
	SEV2 Severity = "SEV2"
	SEV3 Severity = "SEV3"
	SEV4 Severity = "SEV4"
	SEV5 Severity = "SEV5"
)

// Severities lists every severity from worst to mildest.
var Severities = []Severity{SEV1, SEV2, SEV3, SEV4, SEV5}

// ParseSeverity accepts SEV1…SEV5 in any case, and 1…5.
func ParseSeverity(s string) (Severity, error) {
	u := strings.ToUpper(strings.TrimSpace(s))
	if len(u) == 1 {
		u = "SEV" + u
	}
	for _, v := range Severities {
		if Severity(u) == v {
			return v, nil
		}
	}
	return "", fmt.Errorf("%q is not one of SEV1, SEV2, SEV3, SEV4, SEV5", s)
}

// Rank is 1 for SEV1 … 5 for SEV5; 0 for an invalid severity.
func (s Severity) Rank() int {
	for i, v := range Severities {
		if s == v {
			return i + 1
		}
	}
	return 0
}

// Status is where an open incident stands, or closed.
type Status string

const (
	Investigating Status = "investigating"
	Identified    Status = "identified"
	Monitoring    Status = "monitoring"
	Resolved      Status = "resolved"
	Closed        Status = "closed"
)

// Statuses lists the statuses in lifecycle order.
var Statuses = []Status{Investigating, Identified, Monitoring, Resolved, Closed}

// Rank orders statuses along the lifecycle; 0 for an unknown status.
func (s Status) Rank() int {
	for i, v := range Statuses {
		if s == v {
			return i + 1
		}
	}
	return 0
}

// Event types of the incident catalogue.
const (
	TypeDeclared          = "io.hikeshi.incident.declared"
	TypeSeverityChanged   = "io.hikeshi.incident.severity_changed"
	TypeStatusUpdated     = "io.hikeshi.incident.status_updated"
	TypeCommanderAssigned = "io.hikeshi.incident.commander_assigned"
	TypeNoteAdded         = "io.hikeshi.incident.note_added"
	TypeClosed            = "io.hikeshi.incident.closed"

	// Integration results, appended by projectors after a side effect.
	TypeSlackChannelLinked     = "io.hikeshi.slack.channel_linked"
	TypeJiraCaseLinked         = "io.hikeshi.jira.case_linked"
	TypeGitHubPostmortemOpened = "io.hikeshi.github.postmortem_opened"
)

// Declared opens an incident.
type Declared struct {
	Title      string   `json:"title"`
	Service    string   `json:"service"`
	Severity   Severity `json:"severity"`
	Summary    string   `json:"summary,omitempty"`
	DeclaredBy string   `json:"declared_by"`
	// DeclaredByIdentity is the hub identity DeclaredBy maps to, when it
	// differs: person:<email> for a Slack user with map_users_by_email.
	DeclaredByIdentity string `json:"declared_by_identity,omitempty"`
	// CaseNumber is short, sequential and unique per deployment (INC-42).
	CaseNumber string `json:"case_number"`
	// Confidential marks a security incident: Codename replaces the title
	// and service everywhere outside the private channel and the API.
	Confidential bool   `json:"confidential,omitempty"`
	Codename     string `json:"codename,omitempty"`
	// Drill marks a training incident that touches no real stakeholder.
	Drill bool `json:"drill,omitempty"`
}

// SeverityChanged records a new severity.
type SeverityChanged struct {
	From   Severity `json:"from"`
	To     Severity `json:"to"`
	Reason string   `json:"reason,omitempty"`
}

// StatusUpdated records a move along the status model, with what changed.
type StatusUpdated struct {
	From    Status `json:"from"`
	To      Status `json:"to"`
	Message string `json:"message,omitempty"`
}

// CommanderAssigned names the incident commander.
type CommanderAssigned struct {
	User     string `json:"user"`
	Previous string `json:"previous,omitempty"`
	// UserIdentity is the hub identity User maps to, when it differs:
	// person:<email> for a Slack user with map_users_by_email.
	UserIdentity string `json:"user_identity,omitempty"`
}

// NoteAdded adds free text to the timeline.
type NoteAdded struct {
	Text string `json:"text"`
	// OccurredAt is when what the note tells happened, when it differs
	// from the time it was recorded (a backdated fact); absent otherwise.
	OccurredAt time.Time `json:"occurred_at,omitzero"`
}

// IncidentClosed ends the incident; no command is accepted after it.
type IncidentClosed struct {
	Resolution     string `json:"resolution"`
	LessonsLearned string `json:"lessons_learned,omitempty"`
}

// Linked is the shape of every integration result: a projector did
// something outside (a channel, a case, a pull request) and records where.
type Linked struct {
	System string `json:"system"`         // slack, jira, github
	Ref    string `json:"ref"`            // the remote id: channel id, issue key, PR number
	Name   string `json:"name,omitempty"` // human name: #channel, PROJ-12
	URL    string `json:"url,omitempty"`
	// Type is set by the envelope, kept here so one struct serves every
	// *_linked type.
	typ string
}

func (Declared) EventType() string          { return TypeDeclared }
func (SeverityChanged) EventType() string   { return TypeSeverityChanged }
func (StatusUpdated) EventType() string     { return TypeStatusUpdated }
func (CommanderAssigned) EventType() string { return TypeCommanderAssigned }
func (NoteAdded) EventType() string         { return TypeNoteAdded }
func (IncidentClosed) EventType() string    { return TypeClosed }
func (l Linked) EventType() string          { return l.typ }

// NewLinked returns an integration result of type typ (one of the *Linked
// and *Opened types).
func NewLinked(typ string, l Linked) Linked { l.typ = typ; return l }

func init() {
	reg := func(typ, name, doc string, newf func() Data) {
		Register(Spec{Type: typ, Name: name, Version: 1, Doc: doc, New: newf})
	}
	reg(TypeDeclared, "declared", "An incident was declared: title, service, severity, case number, confidential and drill flags.",
		func() Data { return &Declared{} })
	reg(TypeSeverityChanged, "severity_changed", "The severity changed, with the reason.",
		func() Data { return &SeverityChanged{} })
	reg(TypeStatusUpdated, "status_updated", "The status moved along investigating → identified → monitoring → resolved, with a message.",
		func() Data { return &StatusUpdated{} })
	reg(TypeCommanderAssigned, "commander_assigned", "An incident commander was assigned.",
		func() Data { return &CommanderAssigned{} })
	reg(TypeNoteAdded, "note_added", "A note was added to the timeline.",
		func() Data { return &NoteAdded{} })
	reg(TypeClosed, "closed", "The incident was closed with its resolution and lessons learned. Terminal.",
		func() Data { return &IncidentClosed{} })
	for _, l := range []struct{ typ, name, doc string }{
		{TypeSlackChannelLinked, "slack_channel_linked", "The Slack projector created or found the incident channel."},
		{TypeJiraCaseLinked, "jira_case_linked", "The JIRA projector created or found the incident's case."},
		{TypeGitHubPostmortemOpened, "github_postmortem_opened", "The GitHub projector opened the postmortem pull request."},
	} {
		typ := l.typ
		reg(typ, l.name, l.doc, func() Data { return &Linked{typ: typ} })
	}
}

// Stored is an event as the stream holds it: the envelope plus the stream
// sequence, which orders every event of every incident.
type Stored struct {
	Seq     uint64
	Subject string
	Envelope
}

// IncidentID extracts the incident id from a subject incidents.<id>.<name>.
func IncidentID(subject string) (string, bool) {
	rest, ok := strings.CutPrefix(subject, IncidentSubjectPrefix+".")
	if !ok {
		return "", false
	}
	id, _, ok := strings.Cut(rest, ".")
	return id, ok && id != ""
}
