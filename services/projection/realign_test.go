package projection_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/adapters/natsjs/natstest"
	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/projection"
	"github.com/nats-io/nats.go/jetstream"
)

// deleteFails is a JetStream whose next consumer delete fails, as one
// does while the consumer's leader is elected after a lost node.
type deleteFails struct {
	jetstream.JetStream
	fail   atomic.Bool
	failed chan struct{}
}

func (d *deleteFails) DeleteConsumer(ctx context.Context, stream, consumer string) error {
	if d.fail.CompareAndSwap(true, false) {
		close(d.failed)
		return fmt.Errorf("delete consumer: %w", context.DeadlineExceeded)
	}
	return d.JetStream.DeleteConsumer(ctx, stream, consumer)
}

// A batch projector that could not make its consumer again after lost
// deliveries does not read on from the old consumer: the events lost on
// the way would come again behind its checkpoint and be skipped for good.
func TestBatchProjectorReadsOnOnlyAfterItsConsumerIsMadeAgain(t *testing.T) {
	bus := natstest.Start(t)
	js := &deleteFails{JetStream: bus.JS, failed: make(chan struct{})}
	s := &batchStore{changed: make(chan struct{}, 1)}
	r, err := projection.New(context.Background(), projection.Config{Dial: bus.Dial, JS: js, Logger: slog.New(slog.DiscardHandler), AckWait: time.Minute},
		[]projection.Projector{{Durable: "batched", Checkpoint: s.checkpoint, HandleBatch: s.apply}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	appendNotes(t, bus, events.NewID(), 2) // seqs 1..3
	stealDeliveries(t, bus, "batched", 3)
	js.fail.Store(true)
	go r.Run(context.Background())
	select {
	case <-js.failed:
	case <-time.After(20 * time.Second):
		t.Fatal("the projector did not make its consumer again after its deliveries stalled")
	}
	appendNotes(t, bus, events.NewID(), 2) // seqs 4..6

	s.appliedInOrder(t, 6)
}

// A batch projector whose first deliveries never reach it (sent to a
// subscription being replaced, or lost on a route that broke as a node
// rejoined) does not take the next one for a start: acking it would
// acknowledge the lost ones too, and the events they carried would be
// skipped for good.
func TestBatchProjectorSkipsNothingWhenItsFirstDeliveriesAreLost(t *testing.T) {
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
	appendNotes(t, bus, events.NewID(), 2) // seqs 4..6, delivered first
	go r.Run(context.Background())

	s.appliedInOrder(t, 6)
}
