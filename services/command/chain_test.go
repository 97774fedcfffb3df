package command_test

import (
	"encoding/json"
	"testing"

	"github.com/hikeshi/hikeshi/adapters/natsjs/natstest"
	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/command"
	"github.com/hikeshi/hikeshi/services/incident"
)

// assertChained checks that every event of the incident carries the hash
// of the one before it, the first the incident's genesis (from: the first
// chained event, after unchained ones).
func assertChained(t *testing.T, bus *natstest.Bus, id string, unchained int) {
	t.Helper()
	evs, err := bus.Store.Load(testCtx(t), id, 0)
	if err != nil {
		t.Fatal(err)
	}
	prev := events.Genesis(id)
	for i, s := range evs {
		switch {
		case i < unchained && s.PrevHash != "":
			t.Errorf("event %d (%s) written before chaining has prevhash %s", i, s.Type, s.PrevHash)
		case i >= unchained && s.PrevHash != prev:
			t.Errorf("event %d (%s, seq %d): prevhash %q, want %q", i, s.Type, s.Seq, s.PrevHash, prev)
		}
		if prev, err = s.Envelope.Hash(); err != nil {
			t.Fatal(err)
		}
	}
}

// Two replicas write to one incident; each chains onto the other's events,
// whether it learns of them from a conflict, a snapshot or its own cache.
func TestEventsChainAcrossReplicasAndSnapshots(t *testing.T) {
	ctx := testCtx(t)
	bus := natstest.Start(t)
	a, b := replica(t, bus, "a"), replica(t, bus, "b")
	st := declare(t, ctx, a, "db down")
	for i, h := range []*command.Handler{a, b, a, a, b, replica(t, bus, "fresh")} {
		if _, err := h.Execute(ctx, st.ID, incident.AddNote{Text: "note"}, command.Meta{Actor: "alice"}); err != nil {
			t.Fatalf("note %d: %v", i, err)
		}
	}
	assertChained(t, bus, st.ID, 0)
}

// An incident written before chaining: its snapshot has no head, its events
// no prevhash. The next event chains onto the hash of the last of them.
func TestFirstChainedEventFollowsEventsWrittenBefore(t *testing.T) {
	ctx := testCtx(t)
	bus := natstest.Start(t)
	id := events.NewID()
	var seq uint64
	var st incident.State
	for _, d := range []events.Data{
		&events.Declared{Title: "old", Service: "api", Severity: events.SEV3, DeclaredBy: "alice", CaseNumber: "INC-1"},
		&events.NoteAdded{Text: "before chaining"},
	} {
		env, err := events.New(id, d, events.Meta{Actor: "alice"})
		if err != nil {
			t.Fatal(err)
		}
		if seq, _, err = bus.Store.Append(ctx, env, seq); err != nil {
			t.Fatal(err)
		}
		if err := st.Apply(env, seq); err != nil {
			t.Fatal(err)
		}
	}
	raw, _ := json.Marshal(st.View()) // a snapshot as written before chaining
	if err := bus.Store.Snapshots().Put(id, raw); err != nil {
		t.Fatal(err)
	}
	<-bus.Store.JetStream().PublishAsyncComplete()
	if got, err := bus.Store.Snapshots().Get(ctx, id); err != nil || got == nil {
		t.Fatalf("snapshot not stored: %v", err)
	}
	h := replica(t, bus, "new")
	if _, err := h.Execute(ctx, id, incident.AddNote{Text: "after"}, command.Meta{Actor: "alice"}); err != nil {
		t.Fatal(err)
	}
	assertChained(t, bus, id, 2)
}
