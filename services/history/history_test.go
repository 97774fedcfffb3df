package history_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/adapters/natsjs/natstest"
	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/history"
	"github.com/hikeshi/hikeshi/services/incident"
	"github.com/nats-io/nats.go/jetstream"
)

func store(t *testing.T) *natsjs.Store {
	t.Helper()
	bus := natstest.Start(t)
	nc, err := bus.Dial("history-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := natsjs.NewStore(context.Background(), js)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// writer appends events to incidents with chosen record times.
type writer struct {
	t       *testing.T
	st      *natsjs.Store
	version map[string]uint64
	log     map[string][]events.Stored
}

func (w *writer) add(id string, at time.Time, d events.Data) {
	w.t.Helper()
	env, err := events.New(id, d, events.Meta{Time: at, Actor: "alice"})
	if err != nil {
		w.t.Fatal(err)
	}
	seq, _, err := w.st.Append(context.Background(), env, w.version[id])
	if err != nil {
		w.t.Fatal(err)
	}
	w.version[id] = seq
	w.log[id] = append(w.log[id], events.Stored{Seq: seq, Envelope: env})
}

// randomIncident writes n events to id, with a clock that mostly moves on
// and sometimes steps back, interleaved with another incident's events.
func (w *writer) randomIncident(rng *rand.Rand, id, other string, start time.Time, n int) {
	at := start
	w.add(id, at, events.Declared{Title: "Checkout down", Service: "checkout", Severity: events.SEV3, DeclaredBy: "alice", CaseNumber: "INC-1"})
	statuses := []events.Status{events.Investigating, events.Identified, events.Monitoring, events.Resolved}
	for i := 1; i < n; i++ {
		at = at.Add(time.Duration(rng.IntN(90)-10) * time.Second)
		var d events.Data
		switch rng.IntN(5) {
		case 0:
			d = events.SeverityChanged{To: events.Severities[rng.IntN(5)]}
		case 1:
			d = events.StatusUpdated{To: statuses[rng.IntN(4)]}
		case 2:
			d = events.CommanderAssigned{User: fmt.Sprintf("user%d", rng.IntN(4))}
		case 3:
			d = events.NewLinked(events.TypeJiraCaseLinked, events.Linked{System: "jira", Ref: fmt.Sprintf("OPS-%d", i)})
		default:
			d = events.NoteAdded{Text: fmt.Sprintf("note %d", i)}
		}
		w.add(id, at, d)
		if rng.IntN(4) == 0 {
			w.add(other, at, events.NoteAdded{Text: "elsewhere"})
		}
	}
}

// reference folds, from nothing, the events before the first one recorded
// after p (or stored after p.Seq).
func reference(t *testing.T, log []events.Stored, p history.Point) (incident.State, bool) {
	t.Helper()
	var st incident.State
	for _, e := range log {
		switch {
		case p.Events != 0 && st.Events == p.Events,
			p.Seq != 0 && e.Seq > p.Seq,
			p.Seq == 0 && p.Events == 0 && e.Time.After(p.Time):
			return st.View(), st.Exists()
		}
		if err := st.Apply(e.Envelope, e.Seq); err != nil {
			t.Fatal(err)
		}
	}
	return st.View(), st.Exists()
}

func same(t *testing.T, what string, got, want incident.State) {
	t.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if string(g) != string(w) {
		t.Fatalf("%s:\n got  %s\n want %s", what, g, w)
	}
}

// An as-of read is the fold of the prefix of the incident's events, at any
// time or sequence, whichever mark it folds forward from.
func TestAtEqualsAFoldOfThePrefix(t *testing.T) {
	ctx := context.Background()
	st := store(t)
	w := &writer{t: t, st: st, version: map[string]uint64{}, log: map[string][]events.Stored{}}
	w.add("other", time.Date(2026, 11, 21, 13, 0, 0, 0, time.UTC), events.Declared{Title: "Other", Service: "x", Severity: events.SEV4, DeclaredBy: "bob", CaseNumber: "INC-2"})
	rng := rand.New(rand.NewPCG(1, 2))
	start := time.Date(2026, 11, 21, 14, 0, 0, 0, time.UTC)
	w.randomIncident(rng, "inc", "other", start, 300)
	log := w.log["inc"]
	end := log[len(log)-1].Time

	for _, every := range []int{1, 7, 64} {
		c := history.New(st, every, 0)
		for range 200 {
			var p history.Point
			switch rng.IntN(3) {
			case 0:
				p.Time = start.Add(time.Duration(rng.Int64N(int64(end.Sub(start)+2*time.Minute))) - time.Minute)
			case 1:
				p.Seq = uint64(rng.IntN(int(log[len(log)-1].Seq)+5) + 1)
			default:
				p.Events = rng.IntN(len(log)+5) + 1
			}
			want, existed := reference(t, log, p)
			got, err := c.At(ctx, "inc", p)
			if !existed {
				var bd *history.BeforeDeclared
				if !errors.As(err, &bd) || !bd.DeclaredAt.Equal(start) {
					t.Fatalf("every %d, at %s, before the declaration: err %v, want BeforeDeclared", every, p, err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("every %d, at %s: %v", every, p, err)
			}
			same(t, fmt.Sprintf("every %d, at %s", every, p), got, want)
		}
	}
}

// Events appended after a read are in the next one; an unknown incident is
// not found; a small bound evicts the incident read least recently and
// still answers both.
func TestAtFollowsTheStoreWithinItsBound(t *testing.T) {
	ctx := context.Background()
	st := store(t)
	w := &writer{t: t, st: st, version: map[string]uint64{}, log: map[string][]events.Stored{}}
	start := time.Date(2026, 11, 21, 14, 0, 0, 0, time.UTC)
	rng := rand.New(rand.NewPCG(3, 4))
	w.add("b", start, events.Declared{Title: "B", Service: "x", Severity: events.SEV4, DeclaredBy: "bob", CaseNumber: "INC-2"})
	w.randomIncident(rng, "a", "b", start, 40)
	c := history.New(st, 8, 30)
	now := history.Point{Time: start.Add(24 * time.Hour)}
	if _, err := c.At(ctx, "a", now); err != nil {
		t.Fatal(err)
	}
	w.add("a", start.Add(23*time.Hour), events.NoteAdded{Text: "later"})
	w.add("b", start.Add(23*time.Hour), events.NoteAdded{Text: "later"})
	for _, id := range []string{"a", "b", "a"} {
		got, err := c.At(ctx, id, now)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := reference(t, w.log[id], now)
		same(t, id, got, want)
		// Both are over the bound together: the other one left.
		if n, held := c.Size(); n != 1 || held != len(w.log[id]) {
			t.Fatalf("after reading %s the cache holds %d incidents, %d events; want 1, %d", id, n, held, len(w.log[id]))
		}
	}
	if _, err := c.At(ctx, "nope", now); !errors.Is(err, incident.ErrNotFound) {
		t.Fatalf("unknown incident: %v, want not found", err)
	}
	third, err := c.At(ctx, "a", history.Point{Events: 3})
	if err != nil || third.Events != 3 || third.Version != w.log["a"][2].Seq {
		t.Fatalf("after the third event: %d events at version %d, %v", third.Events, third.Version, err)
	}
}
