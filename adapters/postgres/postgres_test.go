package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/adapters/postgres/pgtest"
	"github.com/hikeshi/hikeshi/adapters/sqlstore"
	"github.com/hikeshi/hikeshi/events"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// TestMigratesAnOlderSchema: a database left at schema version 1, with
// rows, is brought to the latest version when the store opens, keeping
// its rows; opening again changes nothing.
func TestMigratesAnOlderSchema(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Database(t)
	cfg := mustConfig(t, url)
	db := stdlib.OpenDB(*cfg)
	if err := timelineMigrations.migrate(ctx, db, Schema, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO timeline.incidents VALUES ('a', 'INC-7', 'investigating', 1, '2026-12-01T10:00:00Z', 3, '{"id":"a"}', 3)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	for range 2 {
		s, err := Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		var versions []int
		rows, err := s.DB().QueryContext(ctx, `SELECT version FROM schema_migrations ORDER BY version`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var v int
			_ = rows.Scan(&v)
			versions = append(versions, v)
		}
		rows.Close()
		if !slices.Equal(versions, []int{1, 2}) {
			t.Errorf("schema_migrations = %v, want [1 2]", versions)
		}
		var idx int
		if err := s.DB().QueryRowContext(ctx, `SELECT count(*) FROM pg_indexes WHERE schemaname = 'timeline' AND indexname = 'incidents_case_folded'`).Scan(&idx); err != nil || idx != 1 {
			t.Errorf("version 2's index: %d (%v)", idx, err)
		}
		if id, err := s.FindByCase(ctx, "inc-7"); err != nil || id != "a" {
			t.Errorf("FindByCase(inc-7) after migration = %q, %v; want a", id, err)
		}
		s.Close()
	}
}

// TestNewerSchemaIsRefused: a database migrated by a newer release is not
// written by an older one.
func TestNewerSchemaIsRefused(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Database(t)
	s, err := Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.DB().ExecContext(ctx, `INSERT INTO schema_migrations (version) VALUES (99)`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := Open(ctx, url); err == nil {
		t.Fatal("opened a store at schema version 99")
	}
}

// TestChangedWakesOtherReplicas: a store waiting for an incident wakes
// when another process's store (another connection pool) commits to it.
func TestChangedWakesOtherReplicas(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Database(t)
	reader, err := Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	writer, err := Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Close()
	// The reader's listener is connected once a first commit reaches it.
	apply := func(seq uint64, id string) {
		t.Helper()
		ev := events.Stored{Seq: seq, Subject: "incidents." + id + ".note_added", Envelope: events.Envelope{
			ID: id + string(rune('a'+seq)), Type: events.TypeNoteAdded, Time: time.Now()}}
		if _, err := writer.Apply(ctx, "timeline", []sqlstore.Change{{Event: ev, Data: json.RawMessage(`{}`)}}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.After(20 * time.Second)
	for seq := uint64(1); ; seq++ {
		ch := reader.Changed("x")
		apply(seq, "x")
		select {
		case <-ch:
		case <-time.After(200 * time.Millisecond):
			continue
		case <-deadline:
			t.Fatal("the reader never woke at the writer's commits")
		}
		break
	}
	other := reader.Changed("y")
	ch := reader.Changed("x")
	apply(100, "x")
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("the reader did not wake at another process's commit to its incident")
	}
	select {
	case <-other:
		t.Error("a commit to incident x woke the waiter of y")
	default:
	}
}

// TestUnreachableServerSaysWhatToCheck: a store whose server does not
// answer fails at once, naming it and what to check.
func TestUnreachableServerSaysWhatToCheck(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, err = Open(context.Background(), "postgres://hikeshi:s3cret@"+addr+"/hikeshi?connect_timeout=5")
	if err == nil || !strings.Contains(err.Error(), "postgres://"+addr+"/hikeshi") || !strings.Contains(err.Error(), "--store") || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error %v; want the server named without its password, and --store to check", err)
	}
}

func mustConfig(t *testing.T, url string) *pgx.ConnConfig {
	t.Helper()
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestReplicasApplyTheSameEvents: two replicas' projectors, each on a
// consumer of its own, apply the same events to one store at the same
// time; each commit waits for the other's, neither fails, and every event
// is stored once.
func TestReplicasApplyTheSameEvents(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Database(t)
	var stores [2]*Store
	for i := range stores {
		s, err := Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		stores[i] = s
	}
	const n = 200
	changes := make([]sqlstore.Change, n)
	for i := range changes {
		seq := uint64(i + 1)
		changes[i] = sqlstore.Change{Event: events.Stored{Seq: seq, Subject: "incidents.a.note_added", Envelope: events.Envelope{
			ID: fmt.Sprint("e", seq), Type: events.TypeNoteAdded, Time: time.Now()}}, Data: json.RawMessage(`{}`)}
	}
	errs := make(chan error, 2*n)
	var wg sync.WaitGroup
	for _, s := range stores {
		wg.Go(func() {
			for _, c := range changes {
				if _, err := s.Apply(ctx, "timeline", []sqlstore.Change{c}); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if ev, _, err := stores[0].Counts(ctx); err != nil || ev != n {
		t.Errorf("%d events stored (%v), want %d", ev, err, n)
	}
}

// TestReplaceWakesAndServesOtherReplicas: a rebuild put in place wakes
// the waiters of a replica that has the store open, and that replica then
// reads the rebuilt store.
func TestReplaceWakesAndServesOtherReplicas(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Database(t)
	reader, err := Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	note := func(seq uint64, text string) []sqlstore.Change {
		return []sqlstore.Change{{Event: events.Stored{Seq: seq, Subject: "incidents.x.note_added", Envelope: events.Envelope{
			ID: fmt.Sprint("n", seq), Type: events.TypeNoteAdded, Time: time.Now()}}, Data: json.RawMessage(`{"text":"` + text + `"}`)}}
	}
	if _, err := reader.Apply(ctx, "timeline", note(1, "old")); err != nil {
		t.Fatal(err)
	}
	if _, err := reader.Timeline(ctx, "x", 0, 0); err != nil { // statements prepared on the old schema
		t.Fatal(err)
	}
	rb, err := OpenRebuild(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rb.Apply(ctx, "timeline", append(note(1, "new"), note(2, "new")...)); err != nil {
		t.Fatal(err)
	}
	if err := rb.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	// Time for the reader's listener to connect (it wakes every waiter when
	// it does, so a late one would not fail the test, only not test NOTIFY).
	time.Sleep(500 * time.Millisecond)
	woken := reader.Changed("x")
	if err := rb.Replace(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-woken:
	case <-time.After(10 * time.Second):
		t.Fatal("the replica's waiter was not woken when the rebuilt store was put in place")
	}
	got, err := reader.Timeline(ctx, "x", 0, 0)
	if err != nil {
		t.Fatalf("the replica cannot read the rebuilt store: %v", err)
	}
	if len(got) != 2 || string(got[0].Data) != `{"text":"new"}` {
		t.Errorf("the replica reads %+v, want the rebuilt two notes", got)
	}
}

// TestReplaceWithoutFinishKeepsTheIndex: a rebuild put in place without
// Finish (an empty store, say) still has the timelines' index, which the
// live schema's migrations, recorded as applied, would never build again.
func TestReplaceWithoutFinishKeepsTheIndex(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Database(t)
	rb, err := OpenRebuild(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	if err := rb.Replace(ctx); err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var n int
	if err := s.DB().QueryRowContext(ctx, `SELECT count(*) FROM pg_indexes WHERE schemaname = $1 AND indexname = 'events_incident'`, Schema).Scan(&n); err != nil || n != 1 {
		t.Errorf("events_incident in the replaced store: %d (%v), want 1", n, err)
	}
}
