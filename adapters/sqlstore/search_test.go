package sqlstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/adapters/sqlstore"
	"github.com/hikeshi/hikeshi/events"
)

// searchFixture stores four incidents: their last activity is in the
// order a, b, c, d (d the most recent), and b has a note.
func searchFixture(t *testing.T, s *sqlstore.Store) *sqlstore.Store {
	t.Helper()
	type inc struct {
		id, status, severity, service, title string
		drill, confidential                  bool
	}
	incs := []inc{
		{"a", "investigating", "SEV1", "payments", "Checkout down", false, false},
		{"b", "closed", "SEV2", "search", "Slow search", false, false},
		{"c", "monitoring", "SEV2", "payments", "Card 100% declined", true, false},
		{"d", "investigating", "SEV3", "auth", "Login errors", false, true},
	}
	var changes []sqlstore.Change
	seq := uint64(0)
	event := func(id, typ string, data any) sqlstore.Change {
		seq++
		subj, err := events.IncidentSubject(id, typ)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := json.Marshal(data)
		return sqlstore.Change{Event: events.Stored{Seq: seq, Subject: subj, Envelope: events.Envelope{ID: fmt.Sprint("e", seq), Type: typ, Time: time.Now()}}, Data: raw}
	}
	for _, i := range incs {
		c := event(i.id, events.TypeDeclared, map[string]any{"title": i.title})
		if i.id == "b" {
			changes = append(changes, c)
			c = event(i.id, events.TypeNoteAdded, map[string]any{"text": "the index was rebuilt"})
		}
		snap, _ := json.Marshal(map[string]any{"id": i.id, "title": i.title, "severity": i.severity, "service": i.service, "drill": i.drill, "confidential": i.confidential, "status": i.status})
		c.Incident = &sqlstore.Row{ID: i.id, CaseNumber: "INC-" + i.id, Status: i.status, Open: i.status != "closed", DeclaredAt: time.Now(), Version: seq, Snapshot: snap, DeclaredSeq: seq}
		changes = append(changes, c)
	}
	if _, err := s.Apply(context.Background(), "timeline", changes); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSearchIncidents(t *testing.T) { eachStore(t, testSearchIncidents) }

func testSearchIncidents(t *testing.T, s *sqlstore.Store) {
	s = searchFixture(t, s)
	ids := func(f sqlstore.Search) []string {
		t.Helper()
		rows, err := s.SearchIncidents(context.Background(), f)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range rows {
			var v struct{ ID string }
			_ = json.Unmarshal(r, &v)
			out = append(out, v.ID)
		}
		return out
	}
	for _, c := range []struct {
		name string
		f    sqlstore.Search
		want []string
	}{
		{"all, by last activity", sqlstore.Search{}, []string{"d", "c", "b", "a"}},
		{"open", sqlstore.Search{Status: "open"}, []string{"d", "c", "a"}},
		{"closed", sqlstore.Search{Status: "closed"}, []string{"b"}},
		{"one status", sqlstore.Search{Status: "investigating"}, []string{"d", "a"}},
		{"severity", sqlstore.Search{Severity: "SEV2"}, []string{"c", "b"}},
		{"service, any case", sqlstore.Search{Service: "PAYMENTS"}, []string{"c", "a"}},
		{"drills", sqlstore.Search{Drill: "yes"}, []string{"c"}},
		{"no drills", sqlstore.Search{Drill: "no"}, []string{"d", "b", "a"}},
		{"confidential", sqlstore.Search{Confidential: "yes"}, []string{"d"}},
		{"not confidential drills", sqlstore.Search{Confidential: "no", Drill: "yes"}, []string{"c"}},
		{"text in a title", sqlstore.Search{Text: "checkout"}, []string{"a"}},
		{"text in a note", sqlstore.Search{Text: "INDEX WAS"}, []string{"b"}},
		{"percent is literal", sqlstore.Search{Text: "100%"}, []string{"c"}},
		{"first page", sqlstore.Search{Limit: 2}, []string{"d", "c"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := ids(c.f); !slices.Equal(got, c.want) {
				t.Errorf("got %v, want %v", got, c.want)
			}
		})
	}
	// The cursor of the next page is the last row's version.
	first, _ := s.SearchIncidents(context.Background(), sqlstore.Search{Limit: 2})
	var last struct{ ID string }
	_ = json.Unmarshal(first[1], &last)
	var version uint64
	dump, err := s.Dump(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range dump.Incidents {
		if r.ID == last.ID {
			version = r.Version
		}
	}
	if got := ids(sqlstore.Search{Limit: 2, Before: version}); !slices.Equal(got, []string{"b", "a"}) {
		t.Errorf("second page %v, want [b a]", got)
	}
	counts, err := s.CountByStatus(context.Background(), sqlstore.Search{Service: "payments", Status: "closed"})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(counts) != "map[investigating:1 monitoring:1]" {
		t.Errorf("counts %v", counts)
	}
}

func TestTimelineBefore(t *testing.T) { eachStore(t, testTimelineBefore) }

func testTimelineBefore(t *testing.T, s *sqlstore.Store) {
	s = searchFixture(t, s)
	got, err := s.TimelineBefore(context.Background(), "b", 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Type != events.TypeNoteAdded || got[1].Type != events.TypeDeclared {
		t.Fatalf("newest first: %+v", got)
	}
	older, err := s.TimelineBefore(context.Background(), "b", got[0].Seq, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(older) != 1 || older[0].Seq != got[1].Seq {
		t.Fatalf("before %d: %+v", got[0].Seq, older)
	}
}
