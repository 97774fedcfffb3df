package sqlstore_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/adapters/sqlstore"
)

func row(id string, version uint64) sqlstore.Row {
	return sqlstore.Row{ID: id, CaseNumber: "INC-" + id, Status: "investigating", Open: true, DeclaredAt: time.Now(),
		Version: version, Snapshot: json.RawMessage(`{"id":"` + id + `","version":` + string(rune('0'+version)) + `}`), DeclaredSeq: 1}
}

// TestBatchTakesItsChangesInParts: a batch's parts are written with one
// checkpoint at commit; until then readers see none of them, and a batch
// rolled back leaves nothing.
func TestBatchTakesItsChangesInParts(t *testing.T) {
	eachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		b, err := s.Begin(ctx, "timeline")
		if err != nil {
			t.Fatal(err)
		}
		for seq := uint64(1); seq <= 4; seq++ {
			if err := b.Add(ctx, []sqlstore.Change{note(seq, "a", time.Now(), time.Time{})}); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.PutIncidents(ctx, []sqlstore.Row{row("a", 4)}); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Timeline(ctx, "a", 0, 0); err != nil || len(got) != 0 {
			t.Fatalf("before commit readers see %d events (%v)", len(got), err)
		}
		if n, err := b.Commit(ctx); err != nil || n != 4 {
			t.Fatalf("commit: %d, %v", n, err)
		}
		b.Rollback() // after a commit, nothing
		if cp, err := s.Checkpoint(ctx, "timeline"); err != nil || cp != 4 {
			t.Fatalf("checkpoint %d, %v; want 4", cp, err)
		}
		if got, err := s.Timeline(ctx, "a", 0, 0); err != nil || len(seqs(got)) != 4 {
			t.Fatalf("timeline %v, %v", seqs(got), err)
		}

		b, err = s.Begin(ctx, "timeline")
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Add(ctx, []sqlstore.Change{note(5, "a", time.Now(), time.Time{})}); err != nil {
			t.Fatal(err)
		}
		b.Rollback()
		if cp, err := s.Checkpoint(ctx, "timeline"); err != nil || cp != 4 {
			t.Fatalf("after a rollback the checkpoint is %d, %v; want 4", cp, err)
		}
	})
}

// TestBatchSkipsWhatIsApplied: changes at or below the checkpoint are
// skipped, and so is the row of an incident whose changes all were (it may
// come from a replica with an older state).
func TestBatchSkipsWhatIsApplied(t *testing.T) {
	eachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		first := []sqlstore.Change{note(1, "a", time.Now(), time.Time{}), note(2, "b", time.Now(), time.Time{})}
		first[0].Incident, first[1].Incident = new(row("a", 1)), new(row("b", 2))
		if _, err := s.Apply(ctx, "timeline", first); err != nil {
			t.Fatal(err)
		}
		b, err := s.Begin(ctx, "timeline")
		if err != nil {
			t.Fatal(err)
		}
		defer b.Rollback()
		if err := b.Add(ctx, []sqlstore.Change{note(2, "b", time.Now(), time.Time{}), note(3, "a", time.Now(), time.Time{})}); err != nil {
			t.Fatal(err)
		}
		stale := row("b", 1)
		if err := b.PutIncidents(ctx, []sqlstore.Row{row("a", 3), stale}); err != nil {
			t.Fatal(err)
		}
		if n, err := b.Commit(ctx); err != nil || n != 1 {
			t.Fatalf("applied %d, %v; want 1", n, err)
		}
		for id, want := range map[string]string{"a": `{"id":"a","version":3}`, "b": `{"id":"b","version":2}`} {
			if snap, err := s.Snapshot(ctx, id); err != nil || string(snap) != want {
				t.Errorf("incident %s: %s, %v; want %s", id, snap, err, want)
			}
		}
	})
}
