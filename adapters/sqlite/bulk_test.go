package sqlite

import (
	"context"
	"path/filepath"
	"testing"
)

func hasEventsIndex(t *testing.T, s *Store) bool {
	t.Helper()
	var n int
	if err := s.DB().QueryRow(`SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = 'events_incident'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n == 1
}

// TestBulkWriteBuildsTheEventsIndexAfter: a catch-up onto a store holding
// fewer events than are coming writes them without the index of events by
// incident and builds it at the end; one onto a fuller store keeps it; and
// a store a crash left without it has it again when opened.
func TestBulkWriteBuildsTheEventsIndexAfter(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "timeline.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	restore, err := s.BulkWrite(ctx, 100, 60)
	if err != nil {
		t.Fatal(err)
	}
	if !hasEventsIndex(t, s) {
		t.Error("a catch-up onto a store holding more events than are coming dropped the index")
	}
	if err := restore(ctx); err != nil {
		t.Fatal(err)
	}

	if _, err := s.BulkWrite(ctx, 0, 60); err != nil {
		t.Fatal(err)
	}
	if hasEventsIndex(t, s) {
		t.Error("a catch-up onto an empty store kept the index")
	}
	s.Close() // as a crash would, without restore
	if s, err = Open(path); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !hasEventsIndex(t, s) {
		t.Fatal("the store opened after an interrupted catch-up has no index of events by incident")
	}
	restore, err = s.BulkWrite(ctx, 0, 60)
	if err != nil {
		t.Fatal(err)
	}
	if err := restore(ctx); err != nil {
		t.Fatal(err)
	}
	if !hasEventsIndex(t, s) {
		t.Error("the index is not built again at the end of the catch-up")
	}
}
