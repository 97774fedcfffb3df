// Package incident is the domain core: the state of an incident folded from
// its past events, and the decisions that turn a command into a new event.
// It does no I/O, so every rule is tested with tables.
package incident

import (
	"fmt"
	"slices"
	"time"

	"github.com/hikeshi/hikeshi/events"
)

// Link is where an integration put the incident (channel, case, PR).
type Link struct {
	Ref  string `json:"ref"`
	Name string `json:"name,omitempty"`
	URL  string `json:"url,omitempty"`
}

// State is an incident as its events describe it.
type State struct {
	ID             string          `json:"id"`
	CaseNumber     string          `json:"case_number"`
	Title          string          `json:"title"`
	Service        string          `json:"service"`
	Severity       events.Severity `json:"severity"`
	Status         events.Status   `json:"status"`
	Summary        string          `json:"summary,omitempty"`
	Commander      string          `json:"commander,omitempty"`
	DeclaredBy     string          `json:"declared_by"`
	Confidential   bool            `json:"confidential"`
	Codename       string          `json:"codename,omitempty"`
	Drill          bool            `json:"drill"`
	DeclaredAt     time.Time       `json:"declared_at"`
	UpdatedAt      time.Time       `json:"updated_at"`
	ClosedAt       *time.Time      `json:"closed_at,omitempty"`
	Resolution     string          `json:"resolution,omitempty"`
	LessonsLearned string          `json:"lessons_learned,omitempty"`
	Notes          int             `json:"notes"`
	Links          map[string]Link `json:"links,omitempty"`
	// DeclaredByIdentity and CommanderIdentity are the hub identities a
	// Slack declarer and commander map to (person:<email>), when recorded.
	DeclaredByIdentity string `json:"declared_by_identity,omitempty"`
	CommanderIdentity  string `json:"commander_identity,omitempty"`
	// Members of the incident's private channel, as the Slack integration
	// recorded them: they may read and act on a confidential incident.
	Members []events.ChannelMember `json:"channel_members,omitempty"`
	// Evidence lists the items of evidence with their chain of custody.
	Evidence []Evidence `json:"evidence,omitempty"`
	// Milestones are the response's milestones, recorded and derived.
	Milestones Milestones `json:"milestones,omitzero"`
	// Version is the stream sequence of the last event applied: the value
	// to send as If-Match, and the expectation for the next append.
	Version uint64 `json:"version"`
	// Events counts the events applied.
	Events int `json:"events"`

	// seen holds the ids of applied events, so a retried command whose
	// event is already in the log is answered without appending.
	seen map[string]struct{}
	// untracked: the ids are not kept (ForgetEventIDs).
	untracked bool
}

// ForgetEventIDs drops the applied event ids and stops keeping them, so the
// state's size no longer grows with its events. For long-lived caches,
// which recognise a retried event another way; Has is false from then on.
func (s *State) ForgetEventIDs() {
	s.seen, s.untracked = nil, true
}

// Exists reports whether the incident was declared.
func (s *State) Exists() bool { return s.Events > 0 }

// Open reports whether commands other than reads are still accepted.
func (s *State) Open() bool { return s.Exists() && s.Status != events.Closed }

// Has reports whether an event with this id was already applied.
func (s *State) Has(eventID string) bool {
	_, ok := s.seen[eventID]
	return ok
}

// DisplayTitle is what may be shown outside the private channel: the
// codename for a confidential incident, the title otherwise.
func (s *State) DisplayTitle() string {
	if s.Confidential {
		return s.Codename
	}
	return s.Title
}

// Apply folds one stored event into the state. seq is its stream sequence.
// Events of unknown integrations are counted and otherwise ignored, so an
// old hub can read a stream that newer consumers write to.
func (s *State) Apply(e events.Envelope, seq uint64) error {
	if s.Has(e.ID) {
		return nil
	}
	d, err := e.Decode()
	if err != nil {
		return err
	}
	return s.ApplyData(e, d, seq)
}

// ApplyData is Apply for a caller that already decoded the envelope's data.
func (s *State) ApplyData(e events.Envelope, d events.Data, seq uint64) error {
	if s.Has(e.ID) {
		return nil
	}
	if l, ok := d.(events.Linked); ok {
		d = &l // as built by events.NewLinked; decoding yields a pointer
	}
	if !s.Exists() {
		if _, ok := d.(*events.Declared); !ok {
			return fmt.Errorf("incident %s: first event is %s, want %s", e.Subject, e.Type, events.TypeDeclared)
		}
	}
	switch d := d.(type) {
	case *events.Declared:
		s.ID = e.Subject
		s.CaseNumber = d.CaseNumber
		s.Title, s.Service, s.Summary = d.Title, d.Service, d.Summary
		s.Severity, s.Status = d.Severity, events.Investigating
		s.DeclaredBy, s.DeclaredByIdentity = d.DeclaredBy, d.DeclaredByIdentity
		s.Confidential, s.Codename, s.Drill = d.Confidential, d.Codename, d.Drill
		s.DeclaredAt = e.Time
	case *events.SeverityChanged:
		s.Severity = d.To
	case *events.StatusUpdated:
		s.Status = d.To
	case *events.CommanderAssigned:
		s.Commander, s.CommanderIdentity = d.User, d.UserIdentity
	case *events.MembersChanged:
		s.Members = changeMembers(s.Members, d)
	case *events.NoteAdded:
		s.Notes++
	case *events.IncidentClosed:
		s.Status = events.Closed
		s.Resolution, s.LessonsLearned = d.Resolution, d.LessonsLearned
		t := e.Time
		s.ClosedAt = &t
	case *events.Linked:
		if s.Links == nil {
			s.Links = map[string]Link{}
		}
		s.Links[d.System] = Link{Ref: d.Ref, Name: d.Name, URL: d.URL}
	}
	s.applyEvidence(e, d)
	s.Milestones.observe(e, d)
	if !s.untracked {
		if s.seen == nil {
			s.seen = map[string]struct{}{}
		}
		s.seen[e.ID] = struct{}{}
	}
	s.Events++
	s.Version = seq
	s.UpdatedAt = e.Time
	return nil
}

// View returns a copy for callers outside the aggregate: it shares nothing
// mutable with s and leaves out the applied event ids, whose copy would
// cost time in proportion to the incident's length (Has is false on it).
func (s *State) View() State {
	c := *s
	c.seen = nil
	if s.ClosedAt != nil {
		t := *s.ClosedAt
		c.ClosedAt = &t
	}
	c.Members = slices.Clone(s.Members)
	c.Evidence = cloneEvidence(s.Evidence)
	c.Milestones = s.Milestones.clone()
	if s.Links != nil {
		c.Links = make(map[string]Link, len(s.Links))
		for k, v := range s.Links {
			c.Links[k] = v
		}
	}
	return c
}

// Clone returns a full copy, applied event ids included.
func (s *State) Clone() State {
	c := s.View()
	c.seen = make(map[string]struct{}, len(s.seen))
	for k := range s.seen {
		c.seen[k] = struct{}{}
	}
	return c
}

// changeMembers returns members after d: who left removed, who joined
// added once (a join recorded both by the invitation and by Slack's event
// counts once), in the order they joined.
func changeMembers(members []events.ChannelMember, d *events.MembersChanged) []events.ChannelMember {
	out := slices.DeleteFunc(slices.Clone(members), func(m events.ChannelMember) bool {
		return slices.ContainsFunc(d.Left, func(l events.ChannelMember) bool { return l.User == m.User })
	})
	for _, j := range d.Joined {
		i := slices.IndexFunc(out, func(m events.ChannelMember) bool { return m.User == j.User })
		switch {
		case j.User == "":
		case i < 0:
			out = append(out, j)
		case j.Identity != "":
			out[i].Identity = j.Identity
		}
	}
	return out
}
