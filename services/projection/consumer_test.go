package projection_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/adapters/natsjs/natstest"
	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/projection"
	"github.com/nats-io/nats.go/jetstream"
)

const aligned = "aligned"

// alignedConfig is the consumer under test: pull, one ack for many.
func alignedConfig() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable: aligned, FilterSubject: events.IncidentSubjectPrefix + ".>",
		AckPolicy: jetstream.AckAllPolicy, AckWait: time.Minute, MaxAckPending: 100, MaxDeliver: -1,
	}
}

// existing makes the consumer as an earlier process left it: cfg,
// delivered up to stream sequence delivered, acknowledged up to acked.
func existing(t *testing.T, bus *natstest.Bus, cfg jetstream.ConsumerConfig, delivered, acked int) {
	t.Helper()
	ctx := context.Background()
	if cfg.DeliverSubject != "" {
		if _, err := bus.JS.CreatePushConsumer(ctx, events.IncidentStream, cfg); err != nil {
			t.Fatal(err)
		}
		return // no one subscribed: nothing delivered
	}
	c, err := bus.JS.CreateConsumer(ctx, events.IncidentStream, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if delivered == 0 {
		return
	}
	b, err := c.Fetch(delivered, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for m := range b.Messages() {
		if n++; n == acked {
			if err := m.DoubleAck(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n != delivered {
		t.Fatalf("delivered %d, want %d: %v", n, delivered, b.Error())
	}
}

// info is the consumer's, of either kind.
func info(t *testing.T, bus *natstest.Bus) *jetstream.ConsumerInfo {
	t.Helper()
	s, err := bus.JS.Stream(context.Background(), events.IncidentStream)
	if err != nil {
		t.Fatal(err)
	}
	for ci := range s.ListConsumers(context.Background()).Info() {
		if ci.Name == aligned {
			return ci
		}
	}
	return nil
}

// nextDelivered is the stream sequence the pull consumer delivers next.
func nextDelivered(t *testing.T, bus *natstest.Bus) uint64 {
	t.Helper()
	c, err := bus.JS.Consumer(context.Background(), events.IncidentStream, aligned)
	if err != nil {
		t.Fatal(err)
	}
	m, err := c.Next(jetstream.FetchMaxWait(5 * time.Second))
	if err != nil {
		t.Fatalf("nothing delivered at once: %v", err)
	}
	md, err := m.Metadata()
	if err != nil {
		t.Fatal(err)
	}
	return md.Sequence.Stream
}

// Align leaves a consumer where the store's checkpoint says delivery
// resumes, and makes it again only when it stands elsewhere.
func TestConsumerAlign(t *testing.T) {
	const last = 10 // events in the stream
	noCheckpoint := ^uint64(0)
	push := alignedConfig()
	push.DeliverSubject, push.AckPolicy, push.MaxAckPending = "_test.deliver."+aligned, jetstream.AckExplicitPolicy, 1
	for _, tc := range []struct {
		name               string
		before             *jetstream.ConsumerConfig // nil: no consumer yet
		delivered, acked   int
		checkpoint, behind uint64
		force              bool
		remade             bool
		next               uint64
	}{
		{name: "no consumer yet, empty store", checkpoint: 0, remade: true, next: 1},
		{name: "no consumer yet", checkpoint: 4, remade: true, next: 5},
		{name: "at the checkpoint", before: ptr(alignedConfig()), delivered: 6, acked: 6, checkpoint: 6, next: 7},
		{name: "at the checkpoint, forced", before: ptr(alignedConfig()), delivered: 6, acked: 6, checkpoint: 6, force: true, remade: true, next: 7},
		{name: "behind the checkpoint, within what it may", before: ptr(alignedConfig()), delivered: 3, acked: 3, checkpoint: 5, behind: 10, next: 4},
		{name: "behind the checkpoint, further than it may", before: ptr(alignedConfig()), delivered: 3, acked: 3, checkpoint: 8, behind: 2, remade: true, next: 9},
		{name: "behind the checkpoint, exactly at it required", before: ptr(alignedConfig()), delivered: 3, acked: 3, checkpoint: 5, remade: true, next: 6},
		{name: "ahead of the checkpoint: store lost", before: ptr(alignedConfig()), delivered: 8, acked: 8, checkpoint: 0, behind: 10, remade: true, next: 1},
		{name: "ahead of the checkpoint: older store", before: ptr(alignedConfig()), delivered: 8, acked: 8, checkpoint: 3, behind: 10, remade: true, next: 4},
		{name: "deliveries stranded", before: ptr(alignedConfig()), delivered: 6, acked: 4, checkpoint: 4, behind: 10, remade: true, next: 5},
		{name: "made for another kind of delivery", before: &push, checkpoint: 4, behind: 10, remade: true, next: 5},
		{name: "no store: at its ack floor", before: ptr(alignedConfig()), delivered: 6, acked: 6, checkpoint: noCheckpoint, next: 7},
		{name: "no store: deliveries stranded", before: ptr(alignedConfig()), delivered: 6, acked: 4, checkpoint: noCheckpoint, remade: true, next: 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bus := natstest.Start(t)
			appendNotes(t, bus, events.NewID(), last-1)
			if tc.before != nil {
				existing(t, bus, *tc.before, tc.delivered, tc.acked)
			}
			before := info(t, bus)
			var logs bytes.Buffer
			c := projection.Consumer{
				JS: bus.JS, Stream: events.IncidentStream, Config: alignedConfig(), Behind: tc.behind,
				Logger: slog.New(slog.NewTextHandler(&logs, nil)),
			}
			if tc.checkpoint != noCheckpoint {
				c.Checkpoint = func(context.Context) (uint64, error) { return tc.checkpoint, nil }
			}
			if err := c.Align(context.Background(), tc.force); err != nil {
				t.Fatal(err)
			}
			after := info(t, bus)
			if after == nil {
				t.Fatal("no consumer after Align")
			}
			if remade := before == nil || !after.Created.Equal(before.Created); remade != tc.remade {
				t.Errorf("consumer made again: %v, want %v", remade, tc.remade)
			}
			if after.Config.DeliverSubject != "" || after.Config.AckPolicy != jetstream.AckAllPolicy {
				t.Errorf("consumer config %+v, want the one asked for", after.Config)
			}
			if got := nextDelivered(t, bus); got != tc.next {
				t.Errorf("delivers stream sequence %d next, want %d", got, tc.next)
			}
			if realigned := strings.Contains(logs.String(), "realigning consumer"); realigned != (tc.remade && before != nil) {
				t.Errorf("realignment logged: %v; log: %s", realigned, logs.String())
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// busyJS fails its first creates as a server does while it still removes
// the files of a consumer of the same name deleted just before.
type busyJS struct {
	jetstream.JetStream
	fails int
}

func (b *busyJS) CreateConsumer(ctx context.Context, stream string, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	if b.fails > 0 {
		b.fails--
		return nil, &jetstream.APIError{Code: 500, ErrorCode: jetstream.JSErrCodeConsumerCreate,
			Description: "rename obs/" + cfg.Durable + "/o.dat.tmp obs/" + cfg.Durable + "/o.dat: no such file or directory"}
	}
	return b.JetStream.CreateConsumer(ctx, stream, cfg)
}

// TestConsumerCreateOutlastsTheOldOnesRemoval: a consumer made again
// right after its delete is made, not failed, when the server answers
// the first tries with its passing "could not create consumer".
func TestConsumerCreateOutlastsTheOldOnesRemoval(t *testing.T) {
	bus := natstest.Start(t)
	appendNotes(t, bus, events.NewID(), 3)
	c := projection.Consumer{JS: &busyJS{JetStream: bus.JS, fails: 2}, Stream: events.IncidentStream, Config: alignedConfig()}
	if err := c.Create(context.Background(), 2); err != nil {
		t.Fatalf("create: %v", err)
	}
	if got := info(t, bus); got == nil || got.Config.OptStartSeq != 2 {
		t.Fatalf("consumer after create: %+v, want one starting at seq 2", got)
	}
}
