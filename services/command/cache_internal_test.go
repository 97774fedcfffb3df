package command

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/adapters/natsjs/natstest"
	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/incident"
	"github.com/nats-io/nats.go"
)

func newTestHandler(t *testing.T, opts ...Option) *Handler {
	t.Helper()
	bus := natstest.Start(t)
	cases, err := natsjs.NewCases(context.Background(), bus.JS, "INC")
	if err != nil {
		t.Fatal(err)
	}
	return New(bus.Store, cases, opts...)
}

// TestCachedIncidentDoesNotGrowWithEvents: a cached incident holds its
// state, not the id of every event it ever had.
func TestCachedIncidentDoesNotGrowWithEvents(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	h := newTestHandler(t)
	st, err := h.Declare(ctx, incident.Declare{Title: "t", Service: "s", Severity: "SEV3", DeclaredBy: "a"}, Meta{Actor: "a"})
	if err != nil {
		t.Fatal(err)
	}
	const n = 200
	for i := range n {
		if _, err := h.Execute(ctx, st.ID, incident.AddNote{Text: "n"}, Meta{Actor: "a", Key: fmt.Sprint("k", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	e := h.entry(st.ID)
	if len(e.keyed) != 0 {
		t.Errorf("entry holds %d keyed ids after %d keyed notes, want none (recorded in the bucket)", len(e.keyed), n)
	}
	if first := events.DeriveID("event", st.ID, "k0"); e.st.Has(first) {
		t.Errorf("cached state still keeps the ids of applied events")
	}
	if e.st.Notes != n {
		t.Errorf("cached state has %d notes, want %d", e.st.Notes, n)
	}
}

// TestCacheEvictsLeastRecentlyUsed: the cache stays at its size and keeps
// the incidents in use.
func TestCacheEvictsLeastRecentlyUsed(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	h := newTestHandler(t, CacheSize(2))
	var ids []string
	for i := range 3 {
		st, err := h.Declare(ctx, incident.Declare{Title: fmt.Sprint("t", i), Service: "s", Severity: "SEV3", DeclaredBy: "a"}, Meta{Actor: "a"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, st.ID)
		if i == 1 {
			if _, err := h.Get(ctx, ids[0]); err != nil { // ids[0] used again: ids[1] is now oldest
				t.Fatal(err)
			}
		}
	}
	h.mu.Lock()
	_, kept0 := h.cache[ids[0]]
	_, kept1 := h.cache[ids[1]]
	size := len(h.cache)
	h.mu.Unlock()
	if size != 2 || !kept0 || kept1 {
		t.Errorf("cache holds %d incidents (first kept %v, second kept %v), want 2 with the second evicted", size, kept0, kept1)
	}
	for _, id := range ids {
		if st, err := h.Get(ctx, id); err != nil || st.ID != id {
			t.Errorf("get %s after eviction: %v", id, err)
		}
	}
}

// TestCommandOnStaleSnapshotDecidesOnLatestEvents: a process that has not
// seen an incident decides its first command on the incident's snapshot;
// when the snapshot is older than the incident's last event (a snapshot
// write lost), the append conflicts and the command is decided again on
// the events after the snapshot, so nothing is lost and the chain holds.
func TestCommandOnStaleSnapshotDecidesOnLatestEvents(t *testing.T) {
	ctx, bus, id, second := staleSnapshot(t, 1, incident.AddNote{Text: "one"}, incident.AddNote{Text: "two"}, incident.AddNote{Text: "three"})
	got, err := second.Execute(ctx, id, incident.AddNote{Text: "four"}, Meta{Actor: "b"})
	if err != nil {
		t.Fatal(err)
	}
	last, err := bus.Store.LastSeq(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if got.Notes != 4 || got.Version != last {
		t.Errorf("after a command on a stale snapshot: %d notes at version %d, want 4 at %d", got.Notes, got.Version, last)
	}
	stored, err := bus.Store.Load(ctx, id, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(stored); i++ {
		prev, err := stored[i-1].Envelope.Hash()
		if err != nil {
			t.Fatal(err)
		}
		if stored[i].PrevHash != prev {
			t.Errorf("event %d does not chain to event %d", i, i-1)
		}
	}
}

func waitAsync(ctx context.Context, bus *natstest.Bus) error {
	select {
	case <-bus.JS.PublishAsyncComplete():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// A command refused on a stale snapshot for what the snapshot lacks (an
// evidence item recorded through another replica) is decided again on the
// incident's latest events, not answered as invalid.
func TestRefusalOnStaleSnapshotIsDecidedAgain(t *testing.T) {
	ctx, _, id, second := staleSnapshot(t, 0, incident.AddEvidence{Name: "disk image", SHA256: strings.Repeat("ab", 32), Location: "s3://evidence/1", Custodian: "alice"})
	if _, err := second.Execute(ctx, id, incident.HandOverEvidence{EvidenceID: "E1", To: "bob"}, Meta{Actor: "b"}); err != nil {
		t.Errorf("hand-over through a replica with a stale snapshot: %v", err)
	}
}

// staleSnapshot declares an incident through one handler and runs cmds on
// it, losing the snapshot writes after the first keep of them: the bucket
// holds an older state than the stream. It returns a second handler, which
// has cached nothing, as another replica.
func staleSnapshot(t *testing.T, keep int, cmds ...incident.Command) (context.Context, *natstest.Bus, string, *Handler) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	t.Cleanup(cancel)
	bus := natstest.Start(t)
	cases, err := natsjs.NewCases(ctx, bus.JS, "INC")
	if err != nil {
		t.Fatal(err)
	}
	first := New(bus.Store, cases)
	st, err := first.Declare(ctx, incident.Declare{Title: "t", Service: "s", Severity: "SEV3", DeclaredBy: "a"}, Meta{Actor: "a"})
	if err != nil {
		t.Fatal(err)
	}
	var old []byte
	for i, c := range append(cmds, nil) {
		if i == keep {
			if err := first.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			if old, err = first.snaps.Get(ctx, st.ID); err != nil || old == nil {
				t.Fatalf("snapshot after %d commands: %v", keep, err)
			}
		}
		if c == nil {
			break
		}
		if _, err := first.Execute(ctx, st.ID, c, Meta{Actor: "a"}); err != nil {
			t.Fatal(err)
		}
	}
	// The later snapshot writes are lost: the bucket holds the old one.
	if err := first.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := first.snaps.Put(st.ID, old); err != nil {
		t.Fatal(err)
	}
	if err := waitAsync(ctx, bus); err != nil {
		t.Fatal(err)
	}
	return ctx, bus, st.ID, New(bus.Store, cases)
}

// countSnapshotWrites counts the writes to an incident's snapshot from now on.
func countSnapshotWrites(t *testing.T, bus *natstest.Bus, id string) func() int {
	t.Helper()
	var mu sync.Mutex
	n := 0
	sub, err := bus.Conn.Subscribe("$KV."+natsjs.SnapshotsBucket+"."+id, func(*nats.Msg) { mu.Lock(); n++; mu.Unlock() })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := bus.Conn.Flush(); err != nil {
		t.Fatal(err)
	}
	return func() int {
		if err := bus.Conn.Flush(); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		return n
	}
}

// snappedVersion is the version of the incident's stored snapshot.
func snappedVersion(t *testing.T, ctx context.Context, h *Handler, id string) uint64 {
	t.Helper()
	raw, err := h.snaps.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if raw == nil {
		return 0
	}
	var snap snapshot
	if err := json.Unmarshal(raw, &snap); err != nil {
		t.Fatal(err)
	}
	return snap.Version
}

// TestSnapshotsAreWrittenBehind: a burst of commands on one incident
// writes no snapshot while it runs (each would be a write as dear as the
// event's), and Flush, as a stopping process calls it, writes one with
// the last state.
func TestSnapshotsAreWrittenBehind(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	bus := natstest.Start(t)
	cases, err := natsjs.NewCases(ctx, bus.JS, "INC")
	if err != nil {
		t.Fatal(err)
	}
	h := New(bus.Store, cases, SnapshotDelay(time.Hour))
	st, err := h.Declare(ctx, incident.Declare{Title: "t", Service: "s", Severity: "SEV3", DeclaredBy: "a"}, Meta{Actor: "a"})
	if err != nil {
		t.Fatal(err)
	}
	writes := countSnapshotWrites(t, bus, st.ID)
	for range 50 {
		if st, err = h.Execute(ctx, st.ID, incident.AddNote{Text: "n"}, Meta{Actor: "a"}); err != nil {
			t.Fatal(err)
		}
	}
	if n := writes(); n != 0 {
		t.Errorf("%d snapshot writes during 50 commands, want none before the delay", n)
	}
	if err := h.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n := writes(); n != 1 {
		t.Errorf("%d snapshot writes on flush, want 1", n)
	}
	if v := snappedVersion(t, ctx, h, st.ID); v != st.Version {
		t.Errorf("snapshot at version %d after flush, want %d", v, st.Version)
	}
}

// TestSnapshotFollowsAfterTheDelay: without a flush, the snapshot of a
// changed incident is written once the delay has passed.
func TestSnapshotFollowsAfterTheDelay(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	h := newTestHandler(t, SnapshotDelay(20*time.Millisecond))
	st, err := h.Declare(ctx, incident.Declare{Title: "t", Service: "s", Severity: "SEV3", DeclaredBy: "a"}, Meta{Actor: "a"})
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if st, err = h.Execute(ctx, st.ID, incident.AddNote{Text: "n"}, Meta{Actor: "a"}); err != nil {
			t.Fatal(err)
		}
	}
	for snappedVersion(t, ctx, h, st.ID) != st.Version {
		if ctx.Err() != nil {
			t.Fatalf("snapshot never reached version %d", st.Version)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
