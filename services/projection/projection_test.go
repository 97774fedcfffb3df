package projection_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/adapters/natsjs/natstest"
	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/projection"
)

func appendNotes(t *testing.T, bus *natstest.Bus, id string, n int) {
	t.Helper()
	ctx := context.Background()
	decl, err := events.New(id, &events.Declared{Title: "t", Service: "s", Severity: events.SEV3, DeclaredBy: "a", CaseNumber: "INC-1"}, events.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	last, _, err := bus.Store.Append(ctx, decl, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		env, _ := events.New(id, &events.NoteAdded{Text: fmt.Sprint("note ", i)}, events.Meta{})
		if last, _, err = bus.Store.Append(ctx, env, last); err != nil {
			t.Fatal(err)
		}
	}
}

// A projector without a store of its own resumes after its ack floor. When
// a process died holding a delivery, the next start must not wait out the
// server's AckWait (a minute) before that delivery comes back.
func TestStrandedDeliveryWithoutCheckpointResumesAtOnce(t *testing.T) {
	bus := natstest.Start(t)
	id := events.NewID()
	appendNotes(t, bus, id, 3) // seqs 1..4
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var mu sync.Mutex
	var seen []uint64
	handled := make(chan uint64, 16)
	p := projection.Projector{Durable: "sidefx", Handle: func(_ context.Context, e events.Stored) error {
		mu.Lock()
		seen = append(seen, e.Seq)
		mu.Unlock()
		handled <- e.Seq
		return nil
	}}
	cfg := projection.Config{Dial: bus.Dial, JS: bus.JS, Logger: slog.New(slog.DiscardHandler), AckWait: time.Minute}

	// First life handles seqs 1 to 4. Then seq 5 lands and a process takes
	// it and dies without acking (a raw subscription, closed hard).
	r, err := projection.New(ctx, cfg, []projection.Projector{p})
	if err != nil {
		t.Fatal(err)
	}
	go r.Run(ctx)
	for want := uint64(1); want <= 4; want++ {
		if got := <-handled; got != want {
			t.Fatalf("handled seq %d, want %d", got, want)
		}
	}
	r.Close()
	appendMore := func() {
		env, _ := events.New(id, &events.NoteAdded{Text: "late"}, events.Meta{})
		if _, _, err := bus.Store.Append(ctx, env, 4); err != nil {
			t.Fatal(err)
		}
	}
	appendMore() // seq 5
	nc, err := bus.Dial("doomed")
	if err != nil {
		t.Fatal(err)
	}
	sub, err := nc.QueueSubscribeSync("_hikeshi.deliver.sidefx", "sidefx")
	if err != nil {
		t.Fatal(err)
	}
	m, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatalf("the doomed process got nothing: %v", err)
	}
	if md, _ := m.Metadata(); md == nil || md.Sequence.Stream != 5 {
		t.Fatalf("doomed process got %+v, want seq 5", md)
	}
	nc.Close() // dies holding seq 5, unacked
	// The restarted process comes up once the server has seen the old one
	// go (its interest gone); until then the delivery may still be its.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := bus.JS.PushConsumer(ctx, events.IncidentStream, "sidefx")
		if err != nil {
			t.Fatal(err)
		}
		info, err := c.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !info.PushBound {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the server still sees the dead subscriber")
		}
		time.Sleep(10 * time.Millisecond)
	}

	// Second life: seq 5 comes back at once, not after a minute.
	r2, err := projection.New(ctx, cfg, []projection.Projector{p})
	if err != nil {
		t.Fatal(err)
	}
	go r2.Run(ctx)
	defer r2.Close()
	select {
	case got := <-handled:
		if got != 5 {
			t.Fatalf("after restart handled seq %d, want 5", got)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the stranded delivery did not come back before the server's AckWait")
	}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(seen) != "[1 2 3 4 5]" {
		t.Fatalf("handled %v, want every event once in order", seen)
	}
}
