package sqlite

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/adapters/sqlstore"
	"github.com/hikeshi/hikeshi/events"
)

// TestTimelineInBothOrders: a backdated note is stored with its own time;
// the timeline lists it where it was recorded, or, ordered by occurrence,
// where it happened. A store written before occurred_at existed gets the
// column filled from each event's time when opened.
func TestTimelineInBothOrders(t *testing.T) {
	ctx := context.Background()
	s := openOldStore(t, `INSERT INTO events VALUES (1, 'e1', 'a', 'io.hikeshi.incident.declared', '2026-11-21T14:00:00.5Z', 'alice', '{}');`)
	at := func(h, m int) time.Time { return time.Date(2026, 11, 21, h, m, 0, 0, time.UTC) }
	change := func(seq uint64, recorded, occurred time.Time) sqlstore.Change {
		ev := events.Stored{Seq: seq, Subject: "incidents.a.note_added", Envelope: events.Envelope{
			ID: "e" + string(rune('0'+seq)), Type: events.TypeNoteAdded, Time: recorded, Actor: "bob"}}
		return sqlstore.Change{Event: ev, Data: json.RawMessage(`{"text":"x"}`), OccurredAt: occurred}
	}
	if _, err := s.Apply(ctx, "timeline", []sqlstore.Change{
		change(2, at(14, 10), time.Time{}),
		change(3, at(14, 20), at(2, 13)), // the attacker logged in at 02:13
		change(4, at(14, 30), at(14, 5)),
	}); err != nil {
		t.Fatal(err)
	}
	seqs := func(es []sqlstore.Entry) []uint64 {
		var out []uint64
		for _, e := range es {
			out = append(out, e.Seq)
		}
		return out
	}
	rec, err := s.Timeline(ctx, "a", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	occ, err := s.TimelineIn(ctx, sqlstore.Occurred, "a", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := seqs(rec); !equalSeqs(got, []uint64{1, 2, 3, 4}) {
		t.Errorf("recorded order = %v", got)
	}
	if got := seqs(occ); !equalSeqs(got, []uint64{3, 1, 4, 2}) {
		t.Errorf("occurred order = %v, want 3 (02:13), 1 (14:00), 4 (14:05), 2 (14:10)", got)
	}
	if rec[2].OccurredAt == nil || !rec[2].OccurredAt.Equal(at(2, 13)) {
		t.Errorf("backdated entry occurred_at = %v, want 02:13", rec[2].OccurredAt)
	}
	if rec[0].OccurredAt != nil || rec[1].OccurredAt != nil {
		t.Errorf("entries that are not backdated carry occurred_at: %v, %v", rec[0].OccurredAt, rec[1].OccurredAt)
	}
}

func equalSeqs(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
