package incident

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/events"
)

const incID = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"

var t0 = time.Date(2025, 3, 14, 9, 26, 0, 0, time.UTC)

func envelope(t *testing.T, n int, data events.Data) events.Envelope {
	t.Helper()
	e, err := events.New(incID, data, events.Meta{
		ID: fmt.Sprintf("evt-%02d", n), Actor: "alice", Time: t0.Add(time.Duration(n) * time.Minute),
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestApplyFullLife(t *testing.T) {
	var s State
	if s.Exists() || s.Open() {
		t.Fatal("zero state exists")
	}
	// Stream sequences are shared by every incident, so they have gaps.
	steps := []struct {
		seq   uint64
		data  events.Data
		check func(t *testing.T, s *State)
	}{
		{3, &events.Declared{Title: "Checkout 500", Service: "checkout", Severity: events.SEV3, Summary: "cards fail",
			DeclaredBy: "alice", CaseNumber: "INC-4", Drill: true}, func(t *testing.T, s *State) {
			if s.ID != incID || s.CaseNumber != "INC-4" || s.Title != "Checkout 500" || s.Service != "checkout" ||
				s.Severity != events.SEV3 || s.Status != events.Investigating || s.Summary != "cards fail" ||
				s.DeclaredBy != "alice" || !s.Drill || s.Confidential || s.Codename != "" {
				t.Fatalf("after declared: %+v", s)
			}
			if !s.DeclaredAt.Equal(t0.Add(time.Minute)) || !s.Exists() || !s.Open() {
				t.Fatalf("declared at %v, exists %v, open %v", s.DeclaredAt, s.Exists(), s.Open())
			}
		}},
		{8, &events.SeverityChanged{From: events.SEV3, To: events.SEV1, Reason: "all regions"}, func(t *testing.T, s *State) {
			if s.Severity != events.SEV1 {
				t.Fatalf("severity %s", s.Severity)
			}
		}},
		{9, &events.CommanderAssigned{User: "bob"}, func(t *testing.T, s *State) {
			if s.Commander != "bob" {
				t.Fatalf("commander %q", s.Commander)
			}
		}},
		{12, &events.StatusUpdated{From: events.Investigating, To: events.Identified}, func(t *testing.T, s *State) {
			if s.Status != events.Identified {
				t.Fatalf("status %s", s.Status)
			}
		}},
		{13, &events.NoteAdded{Text: "rolled back"}, nil},
		{20, events.NewLinked(events.TypeSlackChannelLinked, events.Linked{System: "slack", Ref: "C123", Name: "#inc-4", URL: "https://slack.invalid/C123"}),
			func(t *testing.T, s *State) {
				if got := s.Links["slack"]; got != (Link{Ref: "C123", Name: "#inc-4", URL: "https://slack.invalid/C123"}) {
					t.Fatalf("slack link %+v", got)
				}
			}},
		{21, &events.NoteAdded{Text: "error rate back to normal"}, func(t *testing.T, s *State) {
			if s.Notes != 2 {
				t.Fatalf("notes %d", s.Notes)
			}
		}},
		{22, &events.CommanderAssigned{User: "carol", Previous: "bob"}, nil},
		{25, &events.StatusUpdated{From: events.Identified, To: events.Resolved}, func(t *testing.T, s *State) {
			if s.Status != events.Resolved || !s.Open() || s.ClosedAt != nil {
				t.Fatalf("status %s open %v closed at %v", s.Status, s.Open(), s.ClosedAt)
			}
		}},
		{30, &events.IncidentClosed{Resolution: "bad deploy reverted", LessonsLearned: "canary first"}, func(t *testing.T, s *State) {
			if s.Status != events.Closed || s.Open() || !s.Exists() {
				t.Fatalf("status %s open %v", s.Status, s.Open())
			}
			if s.ClosedAt == nil || !s.ClosedAt.Equal(t0.Add(10*time.Minute)) {
				t.Fatalf("closed at %v", s.ClosedAt)
			}
			if s.Resolution != "bad deploy reverted" || s.LessonsLearned != "canary first" {
				t.Fatalf("resolution %q lessons %q", s.Resolution, s.LessonsLearned)
			}
		}},
		// Integrations record links after close.
		{31, events.NewLinked(events.TypeGitHubPostmortemOpened, events.Linked{System: "github", Ref: "17"}), nil},
	}
	for i, step := range steps {
		n := i + 1
		if err := s.Apply(envelope(t, n, step.data), step.seq); err != nil {
			t.Fatalf("step %d (%s): %v", n, step.data.EventType(), err)
		}
		if s.Version != step.seq || s.Events != n || !s.UpdatedAt.Equal(t0.Add(time.Duration(n)*time.Minute)) {
			t.Fatalf("step %d: version %d events %d updated %v", n, s.Version, s.Events, s.UpdatedAt)
		}
		if !s.Has(fmt.Sprintf("evt-%02d", n)) {
			t.Fatalf("step %d: event id not remembered", n)
		}
		if step.check != nil {
			step.check(t, &s)
		}
	}
	if s.Commander != "carol" || s.Notes != 2 || s.Severity != events.SEV1 || len(s.Links) != 2 || s.Links["github"].Ref != "17" {
		t.Fatalf("final state %+v", s)
	}
	if !s.DeclaredAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("declared at changed: %v", s.DeclaredAt)
	}

	// A closed incident refuses every command but links.
	if _, err := (AddNote{Text: "x"}).Decide(&s); !isConflict(err) {
		t.Fatalf("note after close: %v", err)
	}
}

func TestApplyIdempotentByEventID(t *testing.T) {
	var s State
	decl := envelope(t, 1, &events.Declared{Title: "t", Service: "s", Severity: events.SEV2, DeclaredBy: "a", CaseNumber: "INC-1"})
	note := envelope(t, 2, &events.NoteAdded{Text: "once"})
	for _, e := range []struct {
		env events.Envelope
		seq uint64
	}{{decl, 1}, {note, 2}} {
		if err := s.Apply(e.env, e.seq); err != nil {
			t.Fatal(err)
		}
	}
	before := s.Clone()
	// The same envelope again, even under a later sequence (a redelivery
	// or a duplicate publish), changes nothing.
	for _, seq := range []uint64{2, 5} {
		if err := s.Apply(note, seq); err != nil {
			t.Fatal(err)
		}
		if err := s.Apply(decl, seq); err != nil {
			t.Fatal(err)
		}
	}
	if s.Notes != 1 || s.Events != 2 || s.Version != 2 || !s.UpdatedAt.Equal(before.UpdatedAt) {
		t.Fatalf("re-applied events changed the state: notes %d events %d version %d", s.Notes, s.Events, s.Version)
	}
	a, _ := json.Marshal(before)
	b, _ := json.Marshal(s)
	if string(a) != string(b) {
		t.Fatalf("state changed:\n%s\n%s", a, b)
	}
}

func TestApplyFirstEventMustBeDeclared(t *testing.T) {
	for _, d := range []events.Data{
		&events.NoteAdded{Text: "x"},
		&events.StatusUpdated{From: events.Investigating, To: events.Identified},
		&events.IncidentClosed{Resolution: "x"},
		events.NewLinked(events.TypeSlackChannelLinked, events.Linked{System: "slack", Ref: "C1"}),
	} {
		var s State
		err := s.Apply(envelope(t, 1, d), 1)
		if err == nil {
			t.Fatalf("%s as first event: no error", d.EventType())
		}
		if !strings.Contains(err.Error(), events.TypeDeclared) {
			t.Fatalf("error %q does not say a declared event is expected", err)
		}
		if s.Exists() || s.Version != 0 || s.Events != 0 || s.Has("evt-01") {
			t.Fatalf("a refused event changed the state: %+v", s)
		}
	}
}

func TestApplyMalformedData(t *testing.T) {
	for _, data := range []string{`{"title":42}`, `null`, `{"title":"t"} {}`, `[`} {
		var s State
		e := envelope(t, 1, &events.Declared{Title: "t", Service: "s", Severity: events.SEV2, DeclaredBy: "a", CaseNumber: "INC-1"})
		e.Data = json.RawMessage(data)
		if err := s.Apply(e, 1); err == nil || s.Exists() || s.Has(e.ID) {
			t.Fatalf("malformed data %s: err %v, exists %v", data, err, s.Exists())
		}
	}
}

func TestCloneAndViewShareNothing(t *testing.T) {
	var s State
	for i, d := range []events.Data{
		&events.Declared{Title: "t", Service: "s", Severity: events.SEV2, DeclaredBy: "a", CaseNumber: "INC-1"},
		events.NewLinked(events.TypeJiraCaseLinked, events.Linked{System: "jira", Ref: "OPS-1"}),
		&events.StatusUpdated{From: events.Investigating, To: events.Resolved},
		&events.IncidentClosed{Resolution: "x"},
	} {
		if err := s.Apply(envelope(t, i+1, d), uint64(i+1)); err != nil {
			t.Fatal(err)
		}
	}
	if v := s.View(); v.Has("evt-01") || v.Links["jira"].Ref != "OPS-1" || v.ClosedAt == nil {
		t.Fatalf("View: %+v", v)
	} else {
		v.Links["jira"] = Link{Ref: "changed"}
		*v.ClosedAt = time.Time{}
	}
	c := s.Clone()
	c.Links["jira"] = Link{Ref: "changed"}
	*c.ClosedAt = time.Time{}
	if err := c.Apply(envelope(t, 9, events.NewLinked(events.TypeSlackChannelLinked, events.Linked{System: "slack", Ref: "C"})), 9); err != nil {
		t.Fatal(err)
	}
	if s.Links["jira"].Ref != "OPS-1" || s.ClosedAt.IsZero() || s.Has("evt-09") || len(s.Links) != 1 {
		t.Fatalf("clone shares state with the original: %+v", s)
	}
	if !c.Has("evt-01") {
		t.Fatal("clone lost the applied event ids")
	}
}

func TestDisplayTitle(t *testing.T) {
	s := State{Title: "Customer database exfiltrated", Codename: "jade-owl"}
	if got := s.DisplayTitle(); got != "Customer database exfiltrated" {
		t.Fatalf("DisplayTitle = %q", got)
	}
	s.Confidential = true
	if got := s.DisplayTitle(); got != "jade-owl" {
		t.Fatalf("confidential DisplayTitle = %q, want the codename", got)
	}
}

func TestCodename(t *testing.T) {
	form := regexp.MustCompile(`^([a-z]+)-([a-z]+)$`)
	seen := map[string]bool{}
	for i := range 500 {
		seed := fmt.Sprintf("incident-%d", i)
		c := Codename(seed)
		if again := Codename(seed); again != c {
			t.Fatalf("Codename(%q) = %q then %q", seed, c, again)
		}
		m := form.FindStringSubmatch(c)
		if m == nil {
			t.Fatalf("Codename(%q) = %q, want adjective-creature", seed, c)
		}
		if !slices.Contains(adjectives, m[1]) || !slices.Contains(creatures, m[2]) {
			t.Fatalf("Codename(%q) = %q: words not from the lists", seed, c)
		}
		seen[c] = true
	}
	if len(seen) < 300 {
		t.Fatalf("only %d distinct codenames for 500 seeds", len(seen))
	}
	if Codename("") == "" {
		t.Fatal("empty seed gives empty codename")
	}
}

// TestApplyChannelMembers: who joins and leaves the private channel is
// folded into the members, each once, with the identity last recorded;
// the declarer's and commander's mapped identities are kept.
func TestApplyChannelMembers(t *testing.T) {
	var s State
	for i, d := range []events.Data{
		&events.Declared{Title: "t", Service: "s", Severity: events.SEV2, DeclaredBy: "U1", DeclaredByIdentity: "person:a@example.com", CaseNumber: "INC-1"},
		&events.MembersChanged{ChannelID: "C1", Joined: []events.ChannelMember{{User: "U1"}, {User: "U2", Identity: "person:b@example.com"}}},
		&events.MembersChanged{ChannelID: "C1", Joined: []events.ChannelMember{{User: "U1", Identity: "person:a@example.com"}, {User: "U3"}}},
		&events.MembersChanged{ChannelID: "C1", Left: []events.ChannelMember{{User: "U2"}}},
		&events.CommanderAssigned{User: "U3", UserIdentity: "person:c@example.com"},
	} {
		if err := s.Apply(envelope(t, i+1, d), uint64(i+1)); err != nil {
			t.Fatal(err)
		}
	}
	want := []events.ChannelMember{{User: "U1", Identity: "person:a@example.com"}, {User: "U3"}}
	if !slices.Equal(s.Members, want) {
		t.Fatalf("members %+v, want %+v", s.Members, want)
	}
	if s.DeclaredByIdentity != "person:a@example.com" || s.CommanderIdentity != "person:c@example.com" {
		t.Fatalf("identities %q %q", s.DeclaredByIdentity, s.CommanderIdentity)
	}
	v := s.View()
	v.Members[0].User = "changed"
	if s.Members[0].User != "U1" {
		t.Fatal("View shares the members")
	}
}
