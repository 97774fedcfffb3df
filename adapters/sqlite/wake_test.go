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

// TestWaitersSeeAnotherProcesssCommits: SQLite has no notifications, yet
// a waiter on one process's store is woken when another process (another
// store on the same file) commits, by the store's one watcher, not by a
// poll of its own; its own commits wake only their incidents' waiters.
func TestWaitersSeeAnotherProcesssCommits(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "timeline.db")
	open := func() *Store {
		s, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	reader, writer := open(), open()
	seq := uint64(0)
	note := func(s *Store, incident string) {
		t.Helper()
		seq++
		ev := events.Stored{Seq: seq, Subject: "incidents." + incident + ".note_added", Envelope: events.Envelope{
			ID: "e" + string(rune('a'+seq)), Type: events.TypeNoteAdded, Time: time.Now(), Actor: "bob"}}
		if _, err := s.Apply(ctx, "timeline", []sqlstore.Change{{Event: ev, Data: json.RawMessage(`{"text":"x"}`)}}); err != nil {
			t.Fatal(err)
		}
	}
	woken := func(ch <-chan struct{}, within time.Duration) bool {
		select {
		case <-ch:
			return true
		case <-time.After(within):
			return false
		}
	}
	note(writer, "a") // the checkpoints exist before anyone waits
	ch := reader.Changed("a")
	called := make(chan struct{})
	reader.OnChanged("a", func() { close(called) })
	time.Sleep(2 * sqlstore.WatchEvery)
	note(writer, "a")
	if !woken(ch, 5*time.Second) || !woken(called, time.Second) {
		t.Fatal("a waiter was not woken by another process's commit")
	}
	// The reader's own commits: only their incident's waiters.
	other := reader.Changed("b")
	mine := reader.Changed("a")
	note(reader, "a")
	if !woken(mine, time.Second) {
		t.Fatal("a waiter was not woken by its own process's commit")
	}
	if woken(other, 5*sqlstore.WatchEvery) {
		t.Error("a waiter of another incident was woken by this process's own commit")
	}
}
