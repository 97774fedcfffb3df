package projection_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/adapters/natsjs/natstest"
	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/projection"
	"github.com/nats-io/nats.go/jetstream"
)

// batchStore is a projector's store: events and a checkpoint written
// together, as the timeline does in one transaction.
type batchStore struct {
	mu      sync.Mutex
	cp      uint64
	applied []uint64
	calls   int
	refuse  uint64 // a seq the handler refuses for good
	changed chan struct{}
}

func (s *batchStore) checkpoint(context.Context) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cp, nil
}

func (s *batchStore) apply(_ context.Context, batch []events.Stored) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.calls == 1 {
		// A write takes time, while the server keeps delivering.
		time.Sleep(200 * time.Millisecond)
	}
	for _, e := range batch {
		if e.Seq == s.refuse {
			return fmt.Errorf("%w: seq %d", projection.ErrPermanent, e.Seq)
		}
	}
	for _, e := range batch {
		if e.Seq > s.cp {
			s.applied = append(s.applied, e.Seq)
			s.cp = e.Seq
		}
	}
	select {
	case s.changed <- struct{}{}:
	default:
	}
	return nil
}

// appliedInOrder waits until the store holds seq and checks that it
// applied every event from the first once, in order.
func (s *batchStore) appliedInOrder(t *testing.T, seq uint64) {
	t.Helper()
	s.waitFor(t, seq)
	want := make([]uint64, seq)
	for i := range want {
		want[i] = uint64(i + 1)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if fmt.Sprint(s.applied) != fmt.Sprint(want) {
		t.Fatalf("applied %v, want every event once in order", s.applied)
	}
}

func (s *batchStore) waitFor(t *testing.T, seq uint64) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		if cp, _ := s.checkpoint(context.Background()); cp >= seq {
			return
		}
		select {
		case <-s.changed:
		case <-deadline:
			cp, _ := s.checkpoint(context.Background())
			t.Fatalf("store at %d, want %d", cp, seq)
		}
	}
}

func runBatchProjector(t *testing.T, bus *natstest.Bus, s *batchStore) *projection.Runner {
	t.Helper()
	r, err := projection.New(context.Background(), projection.Config{Dial: bus.Dial, JS: bus.JS, Logger: slog.New(slog.DiscardHandler)},
		[]projection.Projector{{Durable: "batched", Checkpoint: s.checkpoint, HandleBatch: s.apply}})
	if err != nil {
		t.Fatal(err)
	}
	go r.Run(context.Background())
	t.Cleanup(func() { r.Close() })
	return r
}

// TestBatchProjectorTakesManyEventsPerWrite: events waiting for a batch
// projector are delivered many at a time (many in flight) and written in
// far fewer calls than events, every event once and in order.
func TestBatchProjectorTakesManyEventsPerWrite(t *testing.T) {
	bus := natstest.Start(t)
	const notes = 600
	appendNotes(t, bus, events.NewID(), notes) // seqs 1..601
	s := &batchStore{changed: make(chan struct{}, 1)}
	r := runBatchProjector(t, bus, s)
	s.waitFor(t, notes+1)

	// Live events after the backlog follow.
	appendNotes(t, bus, events.NewID(), 9) // seqs 602..611
	s.waitFor(t, notes+11)
	r.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, seq := range s.applied {
		if seq != uint64(i+1) {
			t.Fatalf("applied %v…, want every event once in order", s.applied[:i+1])
		}
	}
	if len(s.applied) != notes+11 {
		t.Errorf("applied %d events, want %d", len(s.applied), notes+11)
	}
	if s.calls > notes/4 {
		t.Errorf("%d writes for %d waiting events, want batches", s.calls, notes+1)
	}
	c, err := bus.JS.PushConsumer(context.Background(), events.IncidentStream, "batched")
	if err != nil {
		t.Fatal(err)
	}
	if info := c.CachedInfo(); info.Config.MaxAckPending <= 1 || info.Config.AckPolicy != jetstream.AckAllPolicy {
		t.Errorf("consumer takes %d in flight with ack policy %v, want many and AckAll", info.Config.MaxAckPending, info.Config.AckPolicy)
	}
}

// TestBatchProjectorDeadLettersOnlyTheBadEvent: an event the projector
// refuses for good goes to DEADLETTER; the others of its batch are applied.
func TestBatchProjectorDeadLettersOnlyTheBadEvent(t *testing.T) {
	bus := natstest.Start(t)
	appendNotes(t, bus, events.NewID(), 20) // seqs 1..21
	s := &batchStore{changed: make(chan struct{}, 1), refuse: 7}
	runBatchProjector(t, bus, s)
	s.waitFor(t, 21)
	s.mu.Lock()
	got := fmt.Sprint(s.applied)
	s.mu.Unlock()
	if want := "[1 2 3 4 5 6 8 9 10 11 12 13 14 15 16 17 18 19 20 21]"; got != want {
		t.Errorf("applied %s, want %s", got, want)
	}
	ctx := context.Background()
	dl, err := bus.JS.Stream(ctx, natsjs.DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	m, err := dl.GetLastMsgForSubject(ctx, natsjs.DeadLetterPrefix+".batched")
	if err != nil {
		t.Fatalf("nothing dead-lettered: %v", err)
	}
	if m.Header.Get("handler_poisoned") != "batched" {
		t.Errorf("dead letter headers %v", m.Header)
	}
}

// TestBatchProjectorIgnoresForeignDeliveries: another consumer pointed at
// the projector's deliver subject (an outside reader may create one) feeds
// it nothing: every event is applied once and in order from the
// projector's own consumer, and the foreign deliveries are not acked.
func TestBatchProjectorIgnoresForeignDeliveries(t *testing.T) {
	bus := natstest.Start(t)
	ctx := context.Background()
	s := &batchStore{changed: make(chan struct{}, 1)}
	runBatchProjector(t, bus, s)
	a := events.NewID()
	appendNotes(t, bus, a, 3) // seqs 1..4
	s.waitFor(t, 4)
	evil, err := bus.JS.CreatePushConsumer(ctx, events.IncidentStream, jetstream.ConsumerConfig{
		Durable: "evil", DeliverSubject: "_hikeshi.deliver.batched", DeliverGroup: "batched",
		FilterSubject: events.IncidentFilter(a), AckPolicy: jetstream.AckExplicitPolicy, DeliverPolicy: jetstream.DeliverAllPolicy,
		AckWait: 100 * time.Millisecond, // sent again and again while nobody acks
	})
	if err != nil {
		t.Fatal(err)
	}
	appendNotes(t, bus, events.NewID(), 5) // seqs 5..10
	appendNotes(t, bus, events.NewID(), 2) // seqs 11..13
	s.waitFor(t, 13)
	time.Sleep(time.Second) // the foreign deliveries keep coming
	s.mu.Lock()
	applied := append([]uint64(nil), s.applied...)
	s.mu.Unlock()
	if len(applied) != 13 {
		t.Errorf("applied %v, want 1..13 once each", applied)
	}
	for i, seq := range applied {
		if seq != uint64(i+1) {
			t.Fatalf("applied %v, want 1..13 once each in order", applied)
		}
	}
	info, err := evil.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.AckFloor.Consumer != 0 {
		t.Errorf("the projector acknowledged the foreign consumer's deliveries up to %d", info.AckFloor.Consumer)
	}
}
