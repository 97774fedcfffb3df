package incident

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hikeshi/hikeshi/events"
)

// ErrNotFound: the incident was never declared.
var ErrNotFound = errors.New("incident not found")

// ValidationError names the field that is wrong and why (HTTP 400).
type ValidationError struct {
	Field   string
	Message string
}

func (e *ValidationError) Error() string { return e.Field + ": " + e.Message }

// ConflictError is a command the incident's current state forbids, such as
// an invalid status transition (HTTP 409).
type ConflictError struct{ Reason string }

func (e *ConflictError) Error() string { return e.Reason }

func invalid(field, format string, a ...any) error {
	return &ValidationError{Field: field, Message: fmt.Sprintf(format, a...)}
}

func conflict(format string, a ...any) error {
	return &ConflictError{Reason: fmt.Sprintf(format, a...)}
}

// Command is anything that can be decided against a state.
type Command interface {
	Decide(s *State) (events.Data, error)
}

// Limits on free text, so one request cannot bloat the log.
const (
	MaxTitle = 200
	MaxText  = 10_000
	MaxName  = 100
)

func text(field, v string, max int, required bool) (string, error) {
	v = strings.TrimSpace(v)
	switch {
	case required && v == "":
		return "", invalid(field, "is required")
	case !utf8.ValidString(v):
		return "", invalid(field, "is not valid UTF-8")
	case utf8.RuneCountInString(v) > max:
		return "", invalid(field, "is longer than %d characters", max)
	}
	return v, nil
}

// Declare opens an incident. CaseNumber and Codename are allocated by the
// caller (they need I/O or randomness) before deciding.
type Declare struct {
	Title        string
	Service      string
	Severity     string
	Summary      string
	DeclaredBy   string
	Confidential bool
	Drill        bool
	CaseNumber   string
	Codename     string

	// DeclaredByIdentity is the hub identity DeclaredBy maps to, when it
	// differs (a Slack user mapped by e-mail).
	DeclaredByIdentity string
}

// Validate checks the fields a user typed, before anything is allocated.
func (c Declare) Validate() error {
	_, err := c.normalise()
	return err
}

func (c Declare) normalise() (*events.Declared, error) {
	var err error
	d := &events.Declared{Confidential: c.Confidential, Drill: c.Drill, CaseNumber: c.CaseNumber, Codename: c.Codename,
		DeclaredByIdentity: mappedIdentity(c.DeclaredBy, c.DeclaredByIdentity)}
	if d.Title, err = text("title", c.Title, MaxTitle, true); err != nil {
		return nil, err
	}
	if d.Service, err = text("service", c.Service, MaxName, true); err != nil {
		return nil, err
	}
	if strings.ContainsAny(d.Service, " \t\n/") {
		return nil, invalid("service", "must be one word without spaces or slashes, got %q", d.Service)
	}
	if d.Severity, err = events.ParseSeverity(c.Severity); err != nil {
		return nil, invalid("severity", "%v", err)
	}
	if d.Summary, err = text("summary", c.Summary, MaxText, false); err != nil {
		return nil, err
	}
	if d.DeclaredBy, err = text("declared_by", c.DeclaredBy, MaxName, true); err != nil {
		return nil, err
	}
	return d, nil
}

func (c Declare) Decide(s *State) (events.Data, error) {
	if s.Exists() {
		return nil, conflict("incident %s is already declared", s.ID)
	}
	d, err := c.normalise()
	if err != nil {
		return nil, err
	}
	if d.CaseNumber == "" {
		return nil, errors.New("declare: case number not allocated")
	}
	if d.Confidential && d.Codename == "" {
		return nil, errors.New("declare: confidential incident without codename")
	}
	return d, nil
}

func mustBeOpen(s *State) error {
	if !s.Exists() {
		return ErrNotFound
	}
	if s.Status == events.Closed {
		return conflict("incident %s is closed; closed incidents accept no changes", s.CaseNumber)
	}
	return nil
}

// ChangeSeverity sets a new severity.
type ChangeSeverity struct {
	Severity string
	Reason   string
}

func (c ChangeSeverity) Decide(s *State) (events.Data, error) {
	if err := mustBeOpen(s); err != nil {
		return nil, err
	}
	sev, err := events.ParseSeverity(c.Severity)
	if err != nil {
		return nil, invalid("severity", "%v", err)
	}
	reason, err := text("reason", c.Reason, MaxText, false)
	if err != nil {
		return nil, err
	}
	if sev == s.Severity {
		return nil, conflict("severity is already %s", sev)
	}
	return &events.SeverityChanged{From: s.Severity, To: sev, Reason: reason}, nil
}

// UpdateStatus moves the incident along its status model.
type UpdateStatus struct {
	Status  string
	Message string
}

// CanTransition reports whether an open incident may move from one status to
// another: forward along investigating → identified → monitoring → resolved
// (skipping is allowed), or back to investigating when the fix did not hold.
// Closing is its own command.
func CanTransition(from, to events.Status) error {
	switch {
	case to == events.Closed:
		return conflict("use close to close an incident (it records resolution and lessons learned)")
	case to.Rank() == 0:
		return invalid("status", "%q is not one of investigating, identified, monitoring, resolved", to)
	case from == to:
		return conflict("status is already %s", to)
	case to == events.Investigating:
		return nil
	case to.Rank() < from.Rank():
		return conflict("cannot go back from %s to %s; only a return to investigating is allowed", from, to)
	}
	return nil
}

func (c UpdateStatus) Decide(s *State) (events.Data, error) {
	if err := mustBeOpen(s); err != nil {
		return nil, err
	}
	to := events.Status(strings.ToLower(strings.TrimSpace(c.Status)))
	if to == "" {
		return nil, invalid("status", "is required")
	}
	if err := CanTransition(s.Status, to); err != nil {
		return nil, err
	}
	msg, err := text("message", c.Message, MaxText, false)
	if err != nil {
		return nil, err
	}
	return &events.StatusUpdated{From: s.Status, To: to, Message: msg}, nil
}

// AssignCommander names the incident commander. UserIdentity is the hub
// identity User maps to, when it differs (a Slack user mapped by e-mail).
type AssignCommander struct{ User, UserIdentity string }

func (c AssignCommander) Decide(s *State) (events.Data, error) {
	if err := mustBeOpen(s); err != nil {
		return nil, err
	}
	u, err := text("user", c.User, MaxName, true)
	if err != nil {
		return nil, err
	}
	if u == s.Commander {
		return nil, conflict("%s is already the commander", u)
	}
	return &events.CommanderAssigned{User: u, Previous: s.Commander, UserIdentity: mappedIdentity(u, c.UserIdentity)}, nil
}

// mappedIdentity is identity unless it adds nothing to who.
func mappedIdentity(who, identity string) string {
	identity = strings.TrimSpace(identity)
	if identity == strings.TrimSpace(who) {
		return ""
	}
	return identity
}

// AddNote adds free text to the timeline. OccurredAt, when set, is when
// what it tells happened (a backdated fact), checked against Now.
type AddNote struct {
	Text            string
	OccurredAt, Now time.Time
}

func (c AddNote) Decide(s *State) (events.Data, error) {
	if err := mustBeOpen(s); err != nil {
		return nil, err
	}
	t, err := text("text", c.Text, MaxText, true)
	if err != nil {
		return nil, err
	}
	at, err := occurred("occurred_at", c.OccurredAt, c.Now, s)
	if err != nil {
		return nil, err
	}
	return &events.NoteAdded{Text: t, OccurredAt: at}, nil
}

// Close ends a resolved incident.
type Close struct {
	Resolution     string
	LessonsLearned string
}

func (c Close) Decide(s *State) (events.Data, error) {
	if err := mustBeOpen(s); err != nil {
		return nil, err
	}
	res, err := text("resolution", c.Resolution, MaxText, true)
	if err != nil {
		return nil, err
	}
	lessons, err := text("lessons_learned", c.LessonsLearned, MaxText, false)
	if err != nil {
		return nil, err
	}
	if s.Status != events.Resolved {
		return nil, conflict("incident is %s; resolve it before closing", s.Status)
	}
	return &events.IncidentClosed{Resolution: res, LessonsLearned: lessons}, nil
}

// RecordLink records an integration result. Integrations may still record
// links after close (the postmortem PR is opened then).
type RecordLink struct {
	Type   string
	Linked events.Linked
}

func (c RecordLink) Decide(s *State) (events.Data, error) {
	if !s.Exists() {
		return nil, ErrNotFound
	}
	return events.NewLinked(c.Type, c.Linked), nil
}

// RecordFact appends a fact an integration observed or did (a reminder
// posted, a notification sent, a conversation archived). Like links, facts
// may arrive after close. Commands that change the incident itself are not
// facts: they go through their own command and its rules.
type RecordFact struct{ Data events.Data }

func (c RecordFact) Decide(s *State) (events.Data, error) {
	if !s.Exists() {
		return nil, ErrNotFound
	}
	switch c.Data.(type) {
	case nil, *events.Declared, *events.SeverityChanged, *events.StatusUpdated,
		*events.CommanderAssigned, *events.NoteAdded, *events.IncidentClosed,
		*events.EvidenceAdded, *events.EvidenceHandedOver, *events.MilestoneRecorded:
		return nil, fmt.Errorf("record fact: %T is a command, not a fact", c.Data)
	}
	return c.Data, nil
}
