package checkpoints_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/adapters/natsjs/natstest"
	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/checkpoints"
	"github.com/hikeshi/hikeshi/services/command"
	"github.com/hikeshi/hikeshi/services/incident"
	"github.com/nats-io/nats.go/jetstream"
)

type hub struct {
	bus *natstest.Bus
	cmd *command.Handler
	key ed25519.PrivateKey
	w   *checkpoints.Writer
	now time.Time
}

func newHub(t *testing.T) *hub {
	t.Helper()
	bus := natstest.Start(t)
	cases, err := natsjs.NewCases(context.Background(), bus.JS, "INC")
	if err != nil {
		t.Fatal(err)
	}
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	return &hub{bus: bus, cmd: command.New(bus.Store, cases), key: key, now: time.Date(2026, 11, 21, 14, 0, 0, 0, time.UTC),
		w: writer(bus, key)}
}

func writer(bus *natstest.Bus, key ed25519.PrivateKey) *checkpoints.Writer {
	return &checkpoints.Writer{JS: bus.JS, Store: bus.Store, Key: key, Config: checkpoints.Config{EveryEvents: 1000, Every: time.Minute}}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func (h *hub) pub() ed25519.PublicKey { return h.key.Public().(ed25519.PublicKey) }

// incident declares an incident with n notes.
func (h *hub) incident(t *testing.T, title string, notes int) string {
	t.Helper()
	ctx := ctxT(t)
	st, err := h.cmd.Declare(ctx, incident.Declare{Title: title, Service: "api", Severity: "SEV2", DeclaredBy: "alice"}, command.Meta{Actor: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	h.notes(t, st.ID, notes)
	return st.ID
}

func (h *hub) notes(t *testing.T, id string, n int) {
	t.Helper()
	for i := range n {
		if _, err := h.cmd.Execute(ctxT(t), id, incident.AddNote{Text: "note " + string(rune('a'+i))}, command.Meta{Actor: "bob"}); err != nil {
			t.Fatal(err)
		}
	}
}

// checkpoint writes a checkpoint now (it is due: the clock moved on).
func (h *hub) checkpoint(t *testing.T) {
	t.Helper()
	h.now = h.now.Add(time.Hour)
	before := h.count(t)
	if err := h.w.Step(ctxT(t), h.now); err != nil {
		t.Fatal(err)
	}
	if h.count(t) != before+1 {
		t.Fatalf("no checkpoint written")
	}
}

func (h *hub) count(t *testing.T) int {
	cps, _, err := checkpoints.ReadAll(ctxT(t), h.bus.JS)
	if err != nil {
		t.Fatal(err)
	}
	return len(cps)
}

func (h *hub) verify(t *testing.T) checkpoints.Report {
	t.Helper()
	r, err := checkpoints.VerifyStream(ctxT(t), h.bus.Store, h.bus.JS, h.pub(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestIntactRecordVerifies(t *testing.T) {
	h := newHub(t)
	a := h.incident(t, "db down", 3)
	h.checkpoint(t)
	b := h.incident(t, "queue backlog", 2)
	h.notes(t, a, 1)
	h.checkpoint(t)
	r := h.verify(t)
	last, _ := h.bus.Store.LastStreamSeq(ctxT(t))
	if !r.OK() || r.Events != 8 || r.Incidents != 2 || r.Checkpoints != 2 || r.LastSigned != last || r.Unchained != 0 {
		t.Fatalf("report %+v, want 8 events of 2 incidents, 2 checkpoints up to seq %d, no break", r, last)
	}
	for _, id := range []string{a, b} {
		r, err := checkpoints.VerifyIncident(ctxT(t), h.bus.Store, h.bus.JS, id, h.pub())
		if err != nil || !r.OK() || r.Checkpoints == 0 {
			t.Fatalf("incident %s: %+v, %v", id, r, err)
		}
	}
	// A hub restarted later carries on from the checkpoints alone.
	h.notes(t, b, 1)
	if r := h.verify(t); !r.OK() || r.LastSeq != last+1 || r.LastSigned != last {
		t.Fatalf("an event after the last checkpoint: %+v, want it verified (seq %d) but not signed", r, last+1)
	}
	h.w = writer(h.bus, h.key)
	h.checkpoint(t)
	if r := h.verify(t); !r.OK() || r.Checkpoints != 3 {
		t.Fatalf("after a restart: %+v", r)
	}
}

// Events written before chaining are chained by verification and reported
// as such, not as breaks.
func TestEventsWrittenBeforeChainingAreReportedNotBroken(t *testing.T) {
	h := newHub(t)
	id := events.NewID()
	var seq uint64
	for _, d := range []events.Data{
		&events.Declared{Title: "old", Service: "api", Severity: events.SEV3, DeclaredBy: "alice", CaseNumber: "INC-9"},
		&events.NoteAdded{Text: "before chaining"},
	} {
		env, _ := events.New(id, d, events.Meta{Actor: "alice"})
		var err error
		if seq, _, err = h.bus.Store.Append(ctxT(t), env, seq); err != nil {
			t.Fatal(err)
		}
	}
	h.notes(t, id, 1)
	h.checkpoint(t)
	r := h.verify(t)
	if !r.OK() || r.Unchained != 2 || r.Events != 3 {
		t.Fatalf("report %+v, want 3 events, 2 unchained, no break", r)
	}
}

func TestOnlyOneHubWritesEachCheckpoint(t *testing.T) {
	h := newHub(t)
	other := writer(h.bus, h.key)
	h.incident(t, "a", 0)
	h.checkpoint(t)
	if err := other.Step(ctxT(t), h.now); err != nil { // loads: nothing due
		t.Fatal(err)
	}
	h.incident(t, "b", 0)
	h.checkpoint(t)
	if err := other.Step(ctxT(t), h.now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if n := h.count(t); n != 2 {
		t.Fatalf("%d checkpoints, want 2: the second hub must not write one for the same events", n)
	}
	if r := h.verify(t); !r.OK() {
		t.Fatalf("%+v", r)
	}
}

// kinds lists the kinds of the breaks, and fails unless each names an event
// (or a checkpoint) of the record.
func kinds(r checkpoints.Report) []string {
	var out []string
	for _, b := range r.Breaks {
		out = append(out, b.Kind)
	}
	return out
}

func hasBreak(t *testing.T, r checkpoints.Report, kind string, seq uint64) {
	t.Helper()
	for _, b := range r.Breaks {
		if b.Kind == kind && (seq == 0 || b.Seq == seq) {
			return
		}
	}
	t.Errorf("no %s break at seq %d; breaks:\n%s", kind, seq, breaks(r))
}

func breaks(r checkpoints.Report) string {
	var s []string
	for _, b := range r.Breaks {
		s = append(s, "  "+b.String())
	}
	return strings.Join(s, "\n")
}

// A client with full access to the bus publishes straight to the incident
// stream: a forged event, a copy of a real event with altered data, an
// unaltered copy, a forged event replaying an earlier link of the chain,
// and one with a made-up link. Deleting is refused
// by the stream. verify names each.
func TestVerifyNamesEventsForgedOnTheStream(t *testing.T) {
	h := newHub(t)
	id := h.incident(t, "payments down", 2)
	h.checkpoint(t)
	nc, err := h.bus.Dial("mallory")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	publish := func(env events.Envelope) uint64 {
		t.Helper()
		b, _ := env.Marshal()
		subj, _ := events.IncidentSubject(env.Subject, env.Type)
		ack, err := js.Publish(ctxT(t), subj, b)
		if err != nil {
			t.Fatal(err)
		}
		return ack.Sequence
	}
	evs, _ := h.bus.Store.Load(ctxT(t), id, 0)

	forged, _ := events.New(id, &events.NoteAdded{Text: "the commander approved the refund"}, events.Meta{Actor: "bob"})
	forgedSeq := publish(forged)

	altered := evs[1].Envelope
	altered.Data = json.RawMessage(`{"text":"nothing happened"}`)
	alteredSeq := publish(altered)

	copied, _ := evs[1].Envelope.Marshal()
	subj, _ := events.IncidentSubject(id, evs[1].Type)
	ack, err := js.Publish(ctxT(t), subj, copied) // no Msg-Id: no duplicate check
	if err != nil {
		t.Fatal(err)
	}
	copiedSeq := ack.Sequence

	replayed, _ := events.New(id, &events.NoteAdded{Text: "inserted after the first note"}, events.Meta{Actor: "bob"})
	replayed.PrevHash = evs[1].PrevHash
	replayedSeq := publish(replayed)

	madeUp, _ := events.New(id, &events.NoteAdded{Text: "chained to nothing"}, events.Meta{Actor: "bob"})
	madeUp.PrevHash = strings.Repeat("ab", 32)
	madeUpSeq := publish(madeUp)

	st, err := js.Stream(ctxT(t), events.IncidentStream)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteMsg(ctxT(t), evs[1].Seq); err == nil {
		t.Fatal("the incident stream let a client delete an event")
	}
	h.notes(t, id, 1) // the hub carries on, chaining onto what it finds
	h.checkpoint(t)

	r := h.verify(t)
	hasBreak(t, r, checkpoints.Inserted, forgedSeq)
	hasBreak(t, r, checkpoints.Changed, alteredSeq)
	hasBreak(t, r, checkpoints.Inserted, copiedSeq)
	hasBreak(t, r, checkpoints.Inserted, replayedSeq)
	// A link to an unknown hash cannot be told from an edit of the event
	// before it: the break is at the forged event, named changed.
	hasBreak(t, r, checkpoints.Changed, madeUpSeq)
	if len(r.Breaks) != 5 {
		t.Errorf("%d breaks, want 5:\n%s", len(r.Breaks), breaks(r))
	}
	ri, err := checkpoints.VerifyIncident(ctxT(t), h.bus.Store, h.bus.JS, id, h.pub())
	if err != nil || len(ri.Breaks) != 5 {
		t.Errorf("verify of the incident alone: %v, breaks:\n%s", err, breaks(ri))
	}
}

// exported is a checkpointed incident's bundle, round-tripped through JSON.
func exported(t *testing.T) (*hub, checkpoints.Bundle) {
	t.Helper()
	h := newHub(t)
	h.incident(t, "other", 1)
	id := h.incident(t, "payments down", 4)
	h.checkpoint(t)
	b, err := checkpoints.Export(ctxT(t), h.bus.Store, h.bus.JS, id, h.now)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.MarshalIndent(b, "", "  ")
	var back checkpoints.Bundle
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	if r, err := checkpoints.VerifyBundle(back, h.pub()); err != nil || !r.OK() || r.Events != 5 || r.Checkpoints != 1 {
		t.Fatalf("intact bundle: %+v, %v", r, err)
	}
	return h, back
}

// Removal and reordering cannot be done on the stream (no deletes); they
// are done on a copy of the record, an exported bundle, as an insider with
// the files would. Offline verification with the public key names each.
func TestVerifyNamesRemovedReorderedAndChangedEventsInACopy(t *testing.T) {
	h, b := exported(t)
	edit := func(f func(evs []checkpoints.BundleEvent) []checkpoints.BundleEvent) checkpoints.Report {
		c := b
		c.Events = f(append([]checkpoints.BundleEvent(nil), b.Events...))
		r, err := checkpoints.VerifyBundle(c, h.pub())
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	removed := edit(func(e []checkpoints.BundleEvent) []checkpoints.BundleEvent { return append(e[:2], e[3:]...) })
	hasBreak(t, removed, checkpoints.Removed, b.Events[3].Seq)
	hasBreak(t, removed, checkpoints.BadCheckpoint, 0)

	tail := edit(func(e []checkpoints.BundleEvent) []checkpoints.BundleEvent { return e[:len(e)-1] })
	hasBreak(t, tail, checkpoints.BadCheckpoint, 0)

	reordered := edit(func(e []checkpoints.BundleEvent) []checkpoints.BundleEvent {
		e[2], e[3] = e[3], e[2]
		return e
	})
	hasBreak(t, reordered, checkpoints.Reordered, b.Events[3].Seq)
	if k := kinds(reordered); len(k) != 1 {
		t.Errorf("reordering: breaks %v, want one", k)
	}

	changed := edit(func(e []checkpoints.BundleEvent) []checkpoints.BundleEvent {
		env, _ := events.Unmarshal(e[2].Event)
		env.Data = json.RawMessage(`{"text":"nothing happened"}`)
		e[2].Event, _ = env.Marshal()
		e[2].Hash, _ = env.Hash()
		return e
	})
	hasBreak(t, changed, checkpoints.Changed, b.Events[3].Seq)
}

// A bundle edited by hand, as text, fails offline verification; so does a
// checkpoint whose signature or key is not the hub's.
func TestHandEditedBundleFailsOfflineVerification(t *testing.T) {
	h, b := exported(t)
	raw, _ := json.MarshalIndent(b, "", "  ")
	edited := strings.Replace(string(raw), "note b", "note B", 1)
	if edited == string(raw) {
		t.Fatal("the bundle has no note b to edit")
	}
	var e checkpoints.Bundle
	if err := json.Unmarshal([]byte(edited), &e); err != nil {
		t.Fatal(err)
	}
	if r, _ := checkpoints.VerifyBundle(e, h.pub()); r.OK() {
		t.Error("a hand-edited event verifies")
	}

	forged := b
	forged.Checkpoints = append([]checkpoints.Checkpoint(nil), b.Checkpoints...)
	forged.Checkpoints[0].Heads = append([]checkpoints.Head(nil), forged.Checkpoints[0].Heads...)
	forged.Checkpoints[0].Heads[0].Events++
	r, _ := checkpoints.VerifyBundle(forged, h.pub())
	hasBreak(t, r, checkpoints.BadCheckpoint, 0)
	if !strings.Contains(breaks(r), "signature") {
		t.Errorf("an altered checkpoint is not reported as a bad signature:\n%s", breaks(r))
	}

	other, _, _ := ed25519.GenerateKey(rand.Reader)
	if r, _ := checkpoints.VerifyBundle(b, other); !strings.Contains(breaks(r), "not the trusted key") {
		t.Errorf("a checkpoint signed by another key passes:\n%s", breaks(r))
	}
}

// A hub that was down writes several checkpoints to catch up, each within
// one message's size.
func TestCatchUpIsSplitIntoCheckpointsOfBoundedSize(t *testing.T) {
	h := newHub(t)
	id := events.NewID()
	var seq uint64
	for i := range 4100 {
		var d events.Data = &events.NoteAdded{Text: "n"}
		if i == 0 {
			d = &events.Declared{Title: "t", Service: "s", Severity: events.SEV3, DeclaredBy: "a", CaseNumber: "INC-1"}
		}
		env, _ := events.New(id, d, events.Meta{})
		var err error
		if seq, _, err = h.bus.Store.Append(ctxT(t), env, seq); err != nil {
			t.Fatal(err)
		}
	}
	h.checkpoint(t)
	h.checkpoint(t)
	cps, _, err := checkpoints.ReadAll(ctxT(t), h.bus.JS)
	if err != nil {
		t.Fatal(err)
	}
	if len(cps) != 2 || cps[0].Seq != 4000 || cps[1].Seq != 4100 {
		t.Fatalf("checkpoints at %v, want 4000 and 4100", cps)
	}
	if r := h.verify(t); !r.OK() || r.Unchained != 4100 {
		t.Fatalf("%+v", r)
	}
}

// Hubs with different keys would make each other's checkpoints fail
// verification: a hub that finds another key's checkpoint says so.
func TestWriterWarnsWhenTheLastCheckpointHasAnotherKey(t *testing.T) {
	h := newHub(t)
	h.incident(t, "a", 0)
	h.checkpoint(t)
	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	var log strings.Builder
	other := writer(h.bus, otherKey)
	other.Logger = slog.New(slog.NewTextHandler(&log, nil))
	if err := other.Step(ctxT(t), h.now); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "signed by another key") {
		t.Fatalf("no warning; log: %s", log.String())
	}
}
