package natsjs_test

import (
	"context"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/adapters/natsjs/natstest"
	"github.com/hikeshi/hikeshi/events"
)

// TestFilteredReadOfAnEmptyRangeEnds: a read of one incident's events up
// to a sequence returns at once when none lies in the range, and delivers
// nothing past Until. It waited for the incident's next event before.
func TestFilteredReadOfAnEmptyRangeEnds(t *testing.T) {
	bus := natstest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	appendTo := func(id string, expected uint64) uint64 {
		t.Helper()
		env, err := events.New(id, &events.NoteAdded{Text: "n"}, events.Meta{Actor: "a"})
		if err != nil {
			t.Fatal(err)
		}
		seq, _, err := bus.Store.Append(ctx, env, expected)
		if err != nil {
			t.Fatal(err)
		}
		return seq
	}
	a1 := appendTo("inc-a", 0)
	b1 := appendTo("inc-b", 0)
	a2 := appendTo("inc-a", a1)
	var got []uint64
	read := func(o natsjs.ReadOptions) {
		t.Helper()
		got = got[:0]
		if err := bus.Store.Read(ctx, o, func(e events.Stored) error { got = append(got, e.Seq); return nil }); err != nil {
			t.Fatalf("read %+v: %v", o, err)
		}
	}
	read(natsjs.ReadOptions{Filter: events.IncidentFilter("inc-a"), After: a1, Until: b1})
	if len(got) != 0 {
		t.Errorf("inc-a after %d until %d: %v, want none (its next event, %d, is past Until)", a1, b1, got, a2)
	}
	read(natsjs.ReadOptions{Filter: events.IncidentFilter("inc-b"), After: b1})
	if len(got) != 0 {
		t.Errorf("inc-b after its last event: %v, want none", got)
	}
	read(natsjs.ReadOptions{Filter: events.IncidentFilter("inc-a")})
	if len(got) != 2 || got[0] != a1 || got[1] != a2 {
		t.Errorf("inc-a: %v, want [%d %d]", got, a1, a2)
	}
}
