package sqlstore_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/adapters/postgres"
	"github.com/hikeshi/hikeshi/adapters/postgres/pgtest"
	"github.com/hikeshi/hikeshi/adapters/sqlite"
	"github.com/hikeshi/hikeshi/adapters/sqlstore"
	"github.com/hikeshi/hikeshi/events"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// backends open an empty store on each database the store runs on.
var backends = []struct {
	name string
	open func(t *testing.T) *sqlstore.Store
}{
	{"sqlite", func(t *testing.T) *sqlstore.Store {
		s, err := sqlite.Open(filepath.Join(t.TempDir(), "timeline.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s.Store
	}},
	{"postgres", func(t *testing.T) *sqlstore.Store {
		s, err := postgres.Open(context.Background(), pgtest.Database(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s.Store
	}},
}

// eachState runs test with a function that opens the state (the same
// each time) of each backend; the test closes what it opens.
func eachState(t *testing.T, test func(t *testing.T, open func() *sqlstore.State)) {
	t.Run("sqlite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "state.db")
		test(t, func() *sqlstore.State {
			s, err := sqlite.OpenState(path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s.State
		})
	})
	t.Run("postgres", func(t *testing.T) {
		url := pgtest.Database(t)
		test(t, func() *sqlstore.State {
			s, err := postgres.OpenState(context.Background(), url)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s.State
		})
	})
}

// eachStore runs test on an empty store of each backend.
func eachStore(t *testing.T, test func(t *testing.T, s *sqlstore.Store)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { test(t, b.open(t)) })
	}
}

func note(seq uint64, incident string, recorded, occurred time.Time) sqlstore.Change {
	ev := events.Stored{Seq: seq, Subject: "incidents." + incident + ".note_added", Envelope: events.Envelope{
		ID: "e" + string(rune('0'+seq)), Type: events.TypeNoteAdded, Time: recorded, Actor: "bob"}}
	return sqlstore.Change{Event: ev, Data: json.RawMessage(`{"text":"x"}`), OccurredAt: occurred}
}

func seqs(es []sqlstore.Entry) []uint64 {
	var out []uint64
	for _, e := range es {
		out = append(out, e.Seq)
	}
	return out
}

// TestTimelineOrders: a backdated note is listed where it was recorded,
// or, ordered by occurrence, where it happened; the actor's name and who
// acted for it come back as stored.
func TestTimelineOrders(t *testing.T) {
	eachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		at := func(h, m int) time.Time { return time.Date(2026, 11, 21, h, m, 0, 0, time.UTC) }
		first := note(1, "a", at(14, 0), time.Time{})
		first.Event.ActorName, first.Event.Via = "Erin Park", "slack:UERIN0001"
		if _, err := s.Apply(ctx, "timeline", []sqlstore.Change{
			first, note(2, "a", at(14, 10), time.Time{}), note(3, "a", at(14, 20), at(2, 13)), note(4, "a", at(14, 30), at(14, 5)),
		}); err != nil {
			t.Fatal(err)
		}
		rec, err := s.Timeline(ctx, "a", 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		occ, err := s.TimelineIn(ctx, sqlstore.Occurred, "a", 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if got := seqs(rec); !slices.Equal(got, []uint64{1, 2, 3, 4}) {
			t.Errorf("recorded order = %v", got)
		}
		if got := seqs(occ); !slices.Equal(got, []uint64{3, 1, 4, 2}) {
			t.Errorf("occurred order = %v, want 3 (02:13), 1 (14:00), 4 (14:05), 2 (14:10)", got)
		}
		if rec[2].OccurredAt == nil || !rec[2].OccurredAt.Equal(at(2, 13)) || rec[1].OccurredAt != nil {
			t.Errorf("occurred_at: backdated %v, not backdated %v", rec[2].OccurredAt, rec[1].OccurredAt)
		}
		if e := rec[0]; e.ActorName != "Erin Park" || e.Via != "slack:UERIN0001" || e.Actor != "bob" {
			t.Errorf("who acted: %+v", e)
		}
	})
}

// TestListAndFind: the list is newest first, by status, a page at a time
// from a case number; a case number is found whatever its case.
func TestListAndFind(t *testing.T) {
	eachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		var changes []sqlstore.Change
		for i, id := range []string{"a", "b", "c"} {
			c := note(uint64(i+1), id, time.Now(), time.Time{})
			c.Incident = &sqlstore.Row{ID: id, CaseNumber: "INC-" + id, Status: "investigating", Open: id != "b",
				DeclaredAt: time.Now(), Version: uint64(i + 1), Snapshot: json.RawMessage(`{"id":"` + id + `"}`), DeclaredSeq: uint64(i + 1)}
			changes = append(changes, c)
		}
		if n, err := s.Apply(ctx, "timeline", changes); err != nil || n != 3 {
			t.Fatalf("applied %d, %v", n, err)
		}
		list := func(f sqlstore.ListFilter) string {
			rows, err := s.List(ctx, f)
			if err != nil {
				return err.Error()
			}
			var out string
			for _, r := range rows {
				var v struct{ ID string }
				_ = json.Unmarshal(r, &v)
				out += v.ID
			}
			return out
		}
		for f, want := range map[sqlstore.ListFilter]string{
			{}: "cba", {Status: "open"}: "ca", {Status: "closed"}: "b", {Limit: 1, Before: "inc-c"}: "b", {Before: "b"}: "a",
		} {
			if got := list(f); got != want {
				t.Errorf("list %+v = %s, want %s", f, got, want)
			}
		}
		if id, err := s.FindByCase(ctx, "inc-B"); err != nil || id != "b" {
			t.Errorf("FindByCase(inc-B) = %q, %v", id, err)
		}
		if _, err := s.FindByCase(ctx, "INC-z"); err != sqlstore.ErrNotFound {
			t.Errorf("FindByCase(INC-z) error %v, want ErrNotFound", err)
		}
		if cp, err := s.Checkpoint(ctx, "timeline"); err != nil || cp != 3 {
			t.Errorf("checkpoint %d, %v; want 3", cp, err)
		}
		if ev, inc, err := s.Counts(ctx); err != nil || ev != 3 || inc != 3 {
			t.Errorf("counts %d events %d incidents, %v", ev, inc, err)
		}
	})
}

// TestMilestones: the first time of each step is read from the events,
// drills left out.
func TestMilestones(t *testing.T) {
	eachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		t0 := time.Date(2026, 11, 21, 14, 0, 0, 0, time.UTC)
		event := func(seq uint64, id, typ string, at time.Time, data string) sqlstore.Change {
			subj, _ := events.IncidentSubject(id, typ)
			return sqlstore.Change{Event: events.Stored{Seq: seq, Subject: subj, Envelope: events.Envelope{ID: "m" + string(rune('0'+seq)), Type: typ, Time: at}},
				Data: json.RawMessage(data)}
		}
		row := func(c sqlstore.Change, id, snap string, seq uint64) sqlstore.Change {
			c.Incident = &sqlstore.Row{ID: id, CaseNumber: "INC-" + id, Status: "resolved", Open: true, DeclaredAt: t0, Version: seq, Snapshot: json.RawMessage(snap), DeclaredSeq: seq}
			return c
		}
		changes := []sqlstore.Change{
			row(event(1, "a", events.TypeDeclared, t0, `{}`), "a", `{"service":"pay","severity":"SEV1","confidential":true,"declared_by":"alice"}`, 1),
			row(event(2, "d", events.TypeDeclared, t0, `{}`), "d", `{"drill":true}`, 2),
			event(3, "a", events.TypeCommanderAssigned, t0.Add(time.Minute), `{}`),
			event(4, "a", events.TypeStatusUpdated, t0.Add(2*time.Minute), `{"to":"monitoring"}`),
			event(5, "a", events.TypeStatusUpdated, t0.Add(3*time.Minute), `{"to":"resolved"}`),
		}
		if _, err := s.Apply(ctx, "timeline", changes); err != nil {
			t.Fatal(err)
		}
		ms, err := s.Milestones(ctx, t0.Add(-time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) != 1 {
			t.Fatalf("%d incidents, want 1 (the drill left out): %+v", len(ms), ms)
		}
		m := ms[0]
		if m.ID != "a" || m.Service != "pay" || m.Severity != "SEV1" || !m.Confidential || m.DeclaredBy != "alice" ||
			!m.Commander.Equal(t0.Add(time.Minute)) || !m.Identified.Equal(t0.Add(2*time.Minute)) ||
			!m.Mitigated.Equal(t0.Add(2*time.Minute)) || !m.Resolved.Equal(t0.Add(3*time.Minute)) || !m.Closed.IsZero() {
			t.Errorf("milestones %+v", m)
		}
	})
}
