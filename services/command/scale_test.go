package command_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/adapters/natsjs/natstest"
	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/command"
	"github.com/hikeshi/hikeshi/services/incident"
	"github.com/nats-io/nats.go"
	"log/slog"
	"strings"
	"sync"
)

// countConsumers counts the consumers created on the bus from now on.
func countConsumers(t *testing.T, bus *natstest.Bus) *atomic.Int64 {
	t.Helper()
	var n atomic.Int64
	sub, err := bus.Conn.Subscribe("$JS.API.CONSUMER.CREATE.>", func(*nats.Msg) { n.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := bus.Conn.Flush(); err != nil {
		t.Fatal(err)
	}
	return &n
}

// notes adds n notes to an incident, keyed "<prefix>-<i>" when prefix is set.
func notes(t *testing.T, ctx context.Context, h *command.Handler, id, prefix string, n int) incident.State {
	t.Helper()
	var st incident.State
	for i := range n {
		m := command.Meta{Actor: "bob"}
		if prefix != "" {
			m.Key = fmt.Sprintf("%s-%d", prefix, i)
		}
		var err error
		if st, err = h.Execute(ctx, id, incident.AddNote{Text: fmt.Sprintf("note %d", i)}, m); err != nil {
			t.Fatalf("note %d: %v", i, err)
		}
	}
	return st
}

// TestCacheMissReadsNoConsumer: a process that has not seen an incident
// (a restart, an eviction) loads it from its snapshot and the events after
// it by direct gets, not through a consumer over the stream.
func TestCacheMissReadsNoConsumer(t *testing.T) {
	ctx := testCtx(t)
	bus := natstest.Start(t)
	a := replica(t, bus, "replica-a")
	id := declare(t, ctx, a, "queue backlog").ID
	want := notes(t, ctx, a, id, "", 100)
	other := declare(t, ctx, a, "another").ID // the incident is not last in the stream
	notes(t, ctx, a, other, "", 5)

	created := countConsumers(t, bus)
	restarted := replica(t, bus, "replica-b")
	got, err := restarted.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	sameState(t, "after a restart", got, want)
	next, err := restarted.Execute(ctx, id, incident.AddNote{Text: "after restart"}, command.Meta{Actor: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	if next.Notes != 101 || next.Events != 102 {
		t.Errorf("after restart: %d notes in %d events, want 101 in 102", next.Notes, next.Events)
	}
	if n := created.Load(); n != 0 {
		t.Errorf("loading an incident created %d consumers, want none", n)
	}
}

// TestKeyedRetryAfterDuplicateWindow: once the stream no longer remembers
// a Msg-Id, a retried keyed command is still recognised, by a process that
// loaded the incident from a snapshot covering the first attempt.
func TestKeyedRetryAfterDuplicateWindow(t *testing.T) {
	ctx := testCtx(t)
	bus := natstest.Start(t)
	shortenDuplicateWindow(t, ctx, bus)
	a := replica(t, bus, "replica-a")
	id := declare(t, ctx, a, "cert expired").ID
	notes(t, ctx, a, id, "k", 3)
	st := notes(t, ctx, a, id, "", 80) // snapshots now cover the keyed notes
	time.Sleep(300 * time.Millisecond)

	for _, h := range []*command.Handler{a, replica(t, bus, "replica-b")} {
		again, err := h.Execute(ctx, id, incident.AddNote{Text: "note 1"}, command.Meta{Actor: "bob", Key: "k-1"})
		if err != nil {
			t.Fatal(err)
		}
		if again.Version != st.Version || again.Notes != st.Notes {
			t.Errorf("retry of k-1 answered version %d with %d notes, want version %d with %d (nothing appended)", again.Version, again.Notes, st.Version, st.Notes)
		}
	}
	if _, stored := fold(t, ctx, bus.Store, id); len(stored) != st.Events {
		t.Errorf("stream holds %d events, want %d", len(stored), st.Events)
	}
	// A new key is appended.
	if st2, err := a.Execute(ctx, id, incident.AddNote{Text: "new"}, command.Meta{Actor: "bob", Key: "k-new"}); err != nil || st2.Notes != st.Notes+1 {
		t.Errorf("new key: %d notes, %v; want %d", st2.Notes, err, st.Notes+1)
	}
}

// TestKeyedRetryAfterCrashBeforeSnapshot: a process that stored keyed
// events and stopped before their snapshot was written (snapshots are
// written behind the commands) leaves their ids unrecorded; a retry
// through another process after the stream forgot the Msg-Ids is still
// recognised, from the events after the older snapshot.
func TestKeyedRetryAfterCrashBeforeSnapshot(t *testing.T) {
	ctx := testCtx(t)
	bus := natstest.Start(t)
	shortenDuplicateWindow(t, ctx, bus)
	a := replica(t, bus, "replica-a", command.SnapshotDelay(time.Hour)) // never flushed: it "crashes"
	id := declare(t, ctx, a, "cert expired").ID
	st := notes(t, ctx, a, id, "k", 3)
	time.Sleep(300 * time.Millisecond)

	again, err := replica(t, bus, "replica-b").Execute(ctx, id, incident.AddNote{Text: "note 1"}, command.Meta{Actor: "bob", Key: "k-1"})
	if err != nil {
		t.Fatal(err)
	}
	if again.Version != st.Version || again.Notes != st.Notes {
		t.Errorf("retry of k-1 answered version %d with %d notes, want version %d with %d (nothing appended)", again.Version, again.Notes, st.Version, st.Notes)
	}
	if _, stored := fold(t, ctx, bus.Store, id); len(stored) != st.Events {
		t.Errorf("stream holds %d events, want %d", len(stored), st.Events)
	}
}

// shortenDuplicateWindow makes the incident stream forget Msg-Ids after
// 100 ms, as it does after two minutes in production.
func shortenDuplicateWindow(t *testing.T, ctx context.Context, bus *natstest.Bus) {
	t.Helper()
	s, err := bus.JS.Stream(ctx, events.IncidentStream)
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	cfg.Duplicates = 100 * time.Millisecond
	if _, err := bus.JS.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
}

// TestFailedLoadIsNotTakenForAMissingIncident: a first load that fails
// (the bus unavailable during a node's loss, an unreadable event) is tried
// again by the next command, not answered "no such incident".
func TestFailedLoadIsNotTakenForAMissingIncident(t *testing.T) {
	ctx := testCtx(t)
	bus := natstest.Start(t)
	id := events.NewID()
	subject, err := events.IncidentSubject(id, events.TypeDeclared)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bus.JS.Publish(ctx, subject, []byte("{not an event")); err != nil {
		t.Fatal(err)
	}
	h := replica(t, bus, "replica-a")
	for i := range 2 {
		_, err := h.Execute(ctx, id, incident.AddNote{Text: "n"}, command.Meta{Actor: "bob"})
		if err == nil || errors.Is(err, incident.ErrNotFound) {
			t.Fatalf("command %d on an incident whose load fails: %v, want the load's error", i+1, err)
		}
	}
}

// TestSnapshotOfAClosedBusIsNotRetried: a snapshot due when the process's
// bus connection has closed is given up with one warning, not retried
// and logged again and again.
func TestSnapshotOfAClosedBusIsNotRetried(t *testing.T) {
	ctx := testCtx(t)
	bus := natstest.Start(t)
	var logs syncBuffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&logs, nil)))
	t.Cleanup(func() { slog.SetDefault(prev) })

	h, nc := replicaConn(t, bus, "closing", command.SnapshotDelay(10*time.Millisecond))
	id := declare(t, ctx, h, "closing").ID
	nc.Close()
	time.Sleep(300 * time.Millisecond) // thirty delays
	// Other tests' handlers log too, when their buses close.
	if n := strings.Count(logs.String(), "incident="+id); n > 1 {
		t.Errorf("%d warnings about one snapshot after the bus closed, want at most 1:\n%s", n, logs.String())
	}
}

// syncBuffer is a log destination safe for the timers' goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
