package incident

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/hikeshi/hikeshi/events"
)

// Bounds of a backdated time. A fact may be stamped a little after the
// hub's clock (the sender's clock runs ahead) and long before the
// declaration (an attacker's first login months before anyone noticed),
// but not in the future nor before any plausible start of the incident.
const (
	ClockSkew   = 5 * time.Minute
	MaxBackdate = 366 * 24 * time.Hour
)

// occurred checks a backdated time against now and the declaration and
// returns it in UTC; zero stays zero (not backdated).
func occurred(field string, t, now time.Time, s *State) (time.Time, error) {
	if t.IsZero() {
		return t, nil
	}
	if now.IsZero() {
		return time.Time{}, fmt.Errorf("%s: the command carries no clock (Now)", field)
	}
	if t.After(now.Add(ClockSkew)) {
		return time.Time{}, invalid(field, "%s is in the future (now is %s; at most %s of clock skew is accepted)",
			t.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339), ClockSkew)
	}
	if earliest := s.DeclaredAt.Add(-MaxBackdate); t.Before(earliest) {
		return time.Time{}, invalid(field, "%s is more than 366 days before the incident was declared (earliest %s)",
			t.UTC().Format(time.RFC3339), earliest.UTC().Format(time.RFC3339))
	}
	return t.UTC(), nil
}

// mustExist: facts may still be recorded on a closed incident (evidence
// changes hands, a milestone is corrected in the review).
func mustExist(s *State) error {
	if !s.Exists() {
		return ErrNotFound
	}
	return nil
}

var sha256Hex = regexp.MustCompile(`^[0-9a-f]{64}$`)

// AddEvidence records an item of evidence.
type AddEvidence struct {
	Name, SHA256, Location, Custodian, Description string
}

func (c AddEvidence) Decide(s *State) (events.Data, error) {
	if err := mustExist(s); err != nil {
		return nil, err
	}
	d := &events.EvidenceAdded{EvidenceID: fmt.Sprintf("E%d", len(s.Evidence)+1)}
	var err error
	if d.Name, err = text("name", c.Name, MaxTitle, true); err != nil {
		return nil, err
	}
	d.SHA256 = strings.ToLower(strings.TrimSpace(c.SHA256))
	if !sha256Hex.MatchString(d.SHA256) {
		return nil, invalid("sha256", "must be the SHA-256 of the item as 64 hexadecimal digits (sha256sum prints it), got %q", c.SHA256)
	}
	if d.Location, err = text("location", c.Location, MaxText, true); err != nil {
		return nil, err
	}
	if d.Custodian, err = text("custodian", c.Custodian, MaxName, true); err != nil {
		return nil, err
	}
	if d.Description, err = text("description", c.Description, MaxText, false); err != nil {
		return nil, err
	}
	if i := slices.IndexFunc(s.Evidence, func(e Evidence) bool { return e.SHA256 == d.SHA256 }); i >= 0 {
		return nil, conflict("evidence %s (%s) has the same SHA-256; hand it over instead of adding it again", s.Evidence[i].ID, s.Evidence[i].Name)
	}
	return d, nil
}

// HandOverEvidence moves an item to a new custodian. From, when given,
// must be the current custodian; At, when given, is when it changed hands.
type HandOverEvidence struct {
	EvidenceID, From, To, Reason string
	At, Now                      time.Time
}

func (c HandOverEvidence) Decide(s *State) (events.Data, error) {
	if err := mustExist(s); err != nil {
		return nil, err
	}
	id := strings.ToUpper(strings.TrimSpace(c.EvidenceID))
	if id == "" {
		return nil, invalid("evidence_id", "is required")
	}
	item := s.evidence(id)
	if item == nil {
		return nil, invalid("evidence_id", "incident %s has no evidence %s", s.CaseNumber, id)
	}
	to, err := text("to", c.To, MaxName, true)
	if err != nil {
		return nil, err
	}
	reason, err := text("reason", c.Reason, MaxText, false)
	if err != nil {
		return nil, err
	}
	if from := strings.TrimSpace(c.From); from != "" && from != item.Custodian {
		return nil, conflict("evidence %s is held by %s, not %s", id, item.Custodian, from)
	}
	if to == item.Custodian {
		return nil, conflict("evidence %s is already held by %s", id, to)
	}
	at, err := occurred("at", c.At, c.Now, s)
	if err != nil {
		return nil, err
	}
	if last := item.since(); !at.IsZero() && at.Before(last) {
		return nil, conflict("evidence %s came to %s at %s; a hand-over cannot be earlier", id, item.Custodian, last.UTC().Format(time.RFC3339))
	}
	return &events.EvidenceHandedOver{EvidenceID: id, From: item.Custodian, To: to, Reason: reason, At: at}, nil
}

// RecordMilestone says when the incident reached a milestone; recording one
// again corrects it (the earlier record stays in the log).
type RecordMilestone struct {
	Name, Reason    string
	OccurredAt, Now time.Time
}

func (c RecordMilestone) Decide(s *State) (events.Data, error) {
	if err := mustExist(s); err != nil {
		return nil, err
	}
	name := strings.ToLower(strings.TrimSpace(c.Name))
	if !slices.Contains(events.MilestoneNames, name) {
		return nil, invalid("name", "%q is not one of %s", c.Name, strings.Join(events.MilestoneNames, ", "))
	}
	if c.OccurredAt.IsZero() {
		return nil, invalid("occurred_at", "is required: when the incident reached %s (RFC 3339)", name)
	}
	at, err := occurred("occurred_at", c.OccurredAt, c.Now, s)
	if err != nil {
		return nil, err
	}
	reason, err := text("reason", c.Reason, MaxText, false)
	if err != nil {
		return nil, err
	}
	d := &events.MilestoneRecorded{Name: name, OccurredAt: at, Reason: reason}
	if prev, ok := s.Milestones.Recorded[name]; ok {
		if prev.At.Equal(at) {
			return nil, conflict("%s is already recorded at %s", name, at.Format(time.RFC3339))
		}
		d.Corrects = prev.EventID
	}
	return d, nil
}

// Evidence is an item of evidence and its chain of custody.
type Evidence struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	SHA256      string    `json:"sha256"`
	Location    string    `json:"location"`
	Custodian   string    `json:"custodian"`
	Description string    `json:"description,omitempty"`
	AddedAt     time.Time `json:"added_at"`
	AddedBy     string    `json:"added_by,omitempty"`
	// Custody lists the hand-overs, oldest first.
	Custody []Custody `json:"custody,omitempty"`
}

// Custody is one hand-over: At when it happened, RecordedAt when it was
// recorded, By who recorded it.
type Custody struct {
	From       string    `json:"from"`
	To         string    `json:"to"`
	Reason     string    `json:"reason,omitempty"`
	At         time.Time `json:"at"`
	RecordedAt time.Time `json:"recorded_at"`
	By         string    `json:"by,omitempty"`
}

// since is when the current custodian received the item.
func (e *Evidence) since() time.Time {
	if n := len(e.Custody); n > 0 {
		return e.Custody[n-1].At
	}
	return e.AddedAt
}

func (s *State) evidence(id string) *Evidence {
	for i := range s.Evidence {
		if s.Evidence[i].ID == id {
			return &s.Evidence[i]
		}
	}
	return nil
}

// applyEvidence folds the evidence events.
func (s *State) applyEvidence(e events.Envelope, d events.Data) {
	switch d := d.(type) {
	case *events.EvidenceAdded:
		s.Evidence = append(s.Evidence, Evidence{ID: d.EvidenceID, Name: d.Name, SHA256: d.SHA256, Location: d.Location,
			Custodian: d.Custodian, Description: d.Description, AddedAt: e.Time, AddedBy: e.Actor})
	case *events.EvidenceHandedOver:
		item := s.evidence(d.EvidenceID)
		if item == nil {
			return // not decided by this hub; nothing to attach it to
		}
		at := d.At
		if at.IsZero() {
			at = e.Time
		}
		item.Custody = append(item.Custody, Custody{From: d.From, To: d.To, Reason: d.Reason, At: at, RecordedAt: e.Time, By: e.Actor})
		item.Custodian = d.To
	}
}

// cloneEvidence copies the items and their custody chains.
func cloneEvidence(in []Evidence) []Evidence {
	if in == nil {
		return nil
	}
	out := slices.Clone(in)
	for i := range out {
		out[i].Custody = slices.Clone(in[i].Custody)
	}
	return out
}
