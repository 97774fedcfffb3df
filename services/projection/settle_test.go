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

// stealDeliveries takes n deliveries of durable's consumer and drops them
// unacknowledged while its connection stays up: deliveries lost on the way
// (a node lost between the server and the projector), or acks a dying
// leader took and lost. The server holds them as sent.
func stealDeliveries(t *testing.T, bus *natstest.Bus, durable string, n int) {
	t.Helper()
	nc, err := bus.Dial("thief")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	sub, err := nc.QueueSubscribeSync("_hikeshi.deliver."+durable, durable)
	if err != nil {
		t.Fatal(err)
	}
	for range n {
		if _, err := sub.NextMsg(5 * time.Second); err != nil {
			t.Fatalf("nothing to steal: %v", err)
		}
	}
	if err := sub.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	// Once the server has taken the unsubscription, nothing more is sent
	// to the thief.
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

// A projector that handles one event at a time gets a lost delivery again
// within seconds, not after minutes, while its process runs on.
func TestLostDeliveryComesAgainWithinSeconds(t *testing.T) {
	bus := natstest.Start(t)
	var mu sync.Mutex
	var seen []uint64
	p := projection.Projector{Durable: "sidefx", Handle: func(_ context.Context, e events.Stored) error {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, e.Seq)
		return nil
	}}
	r, err := projection.New(context.Background(), projection.Config{Dial: bus.Dial, JS: bus.JS, Logger: slog.New(slog.DiscardHandler)}, []projection.Projector{p})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	appendNotes(t, bus, events.NewID(), 2) // seqs 1..3
	stealDeliveries(t, bus, p.Durable, 1)  // seq 1, the one in flight
	go r.Run(context.Background())

	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		got := fmt.Sprint(seen)
		mu.Unlock()
		if got == "[1 2 3]" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("handled %s 10 s after a delivery was lost, want [1 2 3]", got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A batch projector whose deliveries stop while its consumer holds events
// sent and not received starts again after its checkpoint at once, not
// after the server's AckWait.
func TestBatchProjectorResumesAfterLostDeliveries(t *testing.T) {
	bus := natstest.Start(t)
	s := &batchStore{changed: make(chan struct{}, 1)}
	r, err := projection.New(context.Background(), projection.Config{Dial: bus.Dial, JS: bus.JS, Logger: slog.New(slog.DiscardHandler), AckWait: time.Minute},
		[]projection.Projector{{Durable: "batched", Checkpoint: s.checkpoint, HandleBatch: s.apply}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	appendNotes(t, bus, events.NewID(), 2) // seqs 1..3
	stealDeliveries(t, bus, "batched", 3)
	go r.Run(context.Background())

	s.appliedInOrder(t, 3) // fails after 20 s, a third of the AckWait
}

// A consumer made by an earlier version, with an AckWait of minutes, gets
// the short one in place: same position, nothing delivered again.
func TestExistingConsumerGetsTheShortAckWait(t *testing.T) {
	bus := natstest.Start(t)
	appendNotes(t, bus, events.NewID(), 2) // seqs 1..3
	handled := make(chan uint64, 8)
	p := projection.Projector{Durable: "sidefx", Handle: func(_ context.Context, e events.Stored) error {
		handled <- e.Seq
		return nil
	}}
	old, err := projection.New(context.Background(), projection.Config{Dial: bus.Dial, JS: bus.JS, Logger: slog.New(slog.DiscardHandler), AckWait: 5 * time.Minute}, []projection.Projector{p})
	if err != nil {
		t.Fatal(err)
	}
	go old.Run(context.Background())
	for range 3 {
		<-handled
	}
	old.Close()

	r, err := projection.New(context.Background(), projection.Config{Dial: bus.Dial, JS: bus.JS, Logger: slog.New(slog.DiscardHandler)}, []projection.Projector{p})
	if err != nil {
		t.Fatal(err)
	}
	go r.Run(context.Background())
	defer r.Close()
	<-r.Running()
	c, err := bus.JS.PushConsumer(context.Background(), events.IncidentStream, p.Durable)
	if err != nil {
		t.Fatal(err)
	}
	info := c.CachedInfo()
	if info.Config.AckWait != 5*time.Second || info.AckFloor.Stream != 3 {
		t.Fatalf("consumer after the upgrade: AckWait %v, ack floor %d; want 5s at 3", info.Config.AckWait, info.AckFloor.Stream)
	}
}

// A handler that works longer than the AckWait (a remote's Retry-After)
// keeps its event: it is not handed to another worker meanwhile.
func TestSlowHandlerKeepsItsDelivery(t *testing.T) {
	bus := natstest.Start(t)
	var mu sync.Mutex
	calls := map[uint64]int{}
	p := projection.Projector{Durable: "slow", Handle: func(_ context.Context, e events.Stored) error {
		mu.Lock()
		calls[e.Seq]++
		first := calls[e.Seq] == 1 && e.Seq == 1
		mu.Unlock()
		if first {
			time.Sleep(3 * time.Second) // three AckWaits
		}
		return nil
	}}
	r, err := projection.New(context.Background(), projection.Config{Dial: bus.Dial, JS: bus.JS, Logger: slog.New(slog.DiscardHandler), AckWait: time.Second}, []projection.Projector{p})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	go r.Run(context.Background())
	appendNotes(t, bus, events.NewID(), 1) // seqs 1, 2
	deadline := time.Now().Add(15 * time.Second)
	for {
		mu.Lock()
		done := calls[2] > 0
		got := fmt.Sprint(calls)
		mu.Unlock()
		if done {
			time.Sleep(1500 * time.Millisecond) // a redelivery would come by now
			mu.Lock()
			defer mu.Unlock()
			if calls[1] != 1 || calls[2] != 1 {
				t.Fatalf("handled %v, want each event once", calls)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("handled %s after 15 s", got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A handler that panics gets its event again a moment later, as after an
// error, not after its budget or the AckWait.
func TestPanickingHandlerGetsItsEventAgainSoon(t *testing.T) {
	bus := natstest.Start(t)
	handled := make(chan uint64, 8)
	var once sync.Once
	p := projection.Projector{Durable: "panicky", Handle: func(_ context.Context, e events.Stored) error {
		once.Do(func() { panic("first delivery") })
		handled <- e.Seq
		return nil
	}}
	r, err := projection.New(context.Background(), projection.Config{Dial: bus.Dial, JS: bus.JS, Logger: slog.New(slog.DiscardHandler), AckWait: time.Minute}, []projection.Projector{p})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	go r.Run(context.Background())
	appendNotes(t, bus, events.NewID(), 0) // seq 1
	select {
	case got := <-handled:
		if got != 1 {
			t.Fatalf("handled seq %d, want 1", got)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the event a handler panicked on did not come again within 15 s")
	}
}
