package sqlite

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/adapters/sqlstore"
	"github.com/hikeshi/hikeshi/events"
)

// TestTimelineKeepsWhoActed: a store written before events carried the
// actor's name gets the columns when opened (its old entries without a
// name); new events keep their actorname and via, returned by Timeline,
// TimelineBefore and Dump.
func TestTimelineKeepsWhoActed(t *testing.T) {
	ctx := context.Background()
	s := openOldStore(t, `INSERT INTO events VALUES (3, 'e3', 'a', 't', '2025-03-14T09:26:53Z', 'alice', '{}');`)
	note := events.Stored{Seq: 4, Subject: "incidents.a.note_added", Envelope: events.Envelope{
		ID: "e4", Type: events.TypeNoteAdded, Time: time.Date(2025, 3, 14, 9, 30, 0, 0, time.UTC),
		Actor: "person:erin@example.com", ActorName: "Erin Park", Via: "slack:UERIN0001"}}
	if _, err := s.Apply(ctx, "timeline", []sqlstore.Change{{Event: note, Data: json.RawMessage(`{"text":"x"}`)}}); err != nil {
		t.Fatal(err)
	}
	want := []struct{ actor, name, via string }{{"alice", "", ""}, {"person:erin@example.com", "Erin Park", "slack:UERIN0001"}}
	check := func(what string, got []sqlstore.Entry) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s: %d entries, want %d", what, len(got), len(want))
		}
		for i, w := range want {
			if e := got[i]; e.Actor != w.actor || e.ActorName != w.name || e.Via != w.via {
				t.Errorf("%s %d: actor %q name %q via %q; want %+v", what, i, e.Actor, e.ActorName, e.Via, w)
			}
		}
	}
	tl, err := s.Timeline(ctx, "a", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	check("timeline", tl)
	back, err := s.TimelineBefore(ctx, "a", 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	check("timeline before", []sqlstore.Entry{back[1], back[0]})
	dump, err := s.Dump(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if e := dump.Events[1]; e.ActorName != "Erin Park" || e.Via != "slack:UERIN0001" {
		t.Errorf("dump: %+v", e)
	}
	b, _ := json.Marshal(tl[1])
	var wire map[string]any
	_ = json.Unmarshal(b, &wire)
	if wire["actorname"] != "Erin Park" || wire["via"] != "slack:UERIN0001" {
		t.Errorf("entry JSON %s: want actorname and via", b)
	}
}

// openOldStore opens a store whose file was written before actorname,
// via and occurred_at existed, holding the rows insert adds.
func openOldStore(t *testing.T, insert string) *Store {
	t.Helper()
	path := filepath.Join(t.TempDir(), "timeline.db")
	db, err := openDB(path, false, `
CREATE TABLE events (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, incident_id TEXT NOT NULL, type TEXT NOT NULL, time TEXT NOT NULL, actor TEXT NOT NULL, data TEXT NOT NULL);
CREATE TABLE incidents (id TEXT PRIMARY KEY, case_number TEXT NOT NULL UNIQUE, status TEXT NOT NULL, open INTEGER NOT NULL, declared_at TEXT NOT NULL, version INTEGER NOT NULL, snapshot TEXT NOT NULL);
`+insert)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
