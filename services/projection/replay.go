package projection

// Replay runs one projector by itself over a range of its stream, while no
// runner consumes it (hikeshi replay). It is safe to hand a projector
// events it has handled before: every projector looks before it does
// something outside and records what it did in the effects ledger.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/events"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ReplayStats is what Replay did.
type ReplayStats struct {
	Events       int    // events handed to the projector
	DeadLettered int    // of those, the ones no retry could handle
	First, Last  uint64 // stream sequences of the first and the last
	Duration     time.Duration
}

// ErrConsumerInUse: a runner is subscribed to the projector's consumer.
var ErrConsumerInUse = errors.New("the consumer is in use")

// replayRetries are the attempts at one event before the replay stops,
// spaced as the runner's retries are.
const replayRetries = 6

// Replay hands p the events of its stream from stream sequence from (0:
// the first) up to the last one there when it starts, in order and one at
// a time, as its consumer would. An event no retry can handle is
// dead-lettered, as the runner does. Then p's durable consumer is placed
// after the last event, so that a runner continues from there. When an
// event still fails after the retries, or ctx ends, the replay stops and
// leaves the consumer where it was.
//
// It refuses a projector with a store of its own (Checkpoint: rebuild the
// store instead), a consumer a runner is subscribed to, and a from beyond
// what the consumer has handled (the events between would be skipped).
// progress, when not nil, is called every so often with the sequence
// reached and the stream's last.
func Replay(ctx context.Context, cfg Config, p Projector, from uint64, progress func(seq, until uint64)) (ReplayStats, error) {
	start := time.Now()
	cfg.defaults()
	p, err := withDefaults(p)
	if err != nil {
		return ReplayStats{}, err
	}
	if p.Handle == nil || p.Checkpoint != nil {
		return ReplayStats{}, fmt.Errorf("projector %s keeps a store of its own: rebuild the store rather than replay the consumer", p.Durable)
	}
	r := &Runner{cfg: cfg}
	floor, err := r.handledUpTo(ctx, p)
	if err != nil {
		return ReplayStats{}, err
	}
	stream, err := r.cfg.JS.Stream(ctx, p.Stream)
	if err != nil {
		return ReplayStats{}, fmt.Errorf("stream %s: %w", p.Stream, err)
	}
	from = max(from, 1)
	if from > floor+1 && floor < stream.CachedInfo().State.LastSeq {
		return ReplayStats{}, fmt.Errorf("consumer %s has handled events up to stream sequence %d: replaying from %d would skip those between; replay from %d or earlier",
			p.Durable, floor, from, floor+1)
	}
	stats, err := r.replay(ctx, p, stream, from, progress)
	stats.Duration = time.Since(start)
	if err != nil || stats.Events == 0 {
		return stats, err
	}
	// The consumer is made again after the last event replayed, so that
	// the runner neither skips an event nor handles one a second time.
	if err := r.cfg.JS.DeleteConsumer(ctx, p.Stream, p.Durable); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return stats, fmt.Errorf("consumer %s: %w", p.Durable, err)
	}
	if err := r.consumer(p).Create(ctx, max(stats.Last, floor)+1); err != nil {
		return stats, fmt.Errorf("consumer %s: %w", p.Durable, err)
	}
	return stats, nil
}

// handledUpTo is the stream sequence up to which p's consumer has handled
// events (0 when it has none yet). It refuses a consumer a runner holds.
func (r *Runner) handledUpTo(ctx context.Context, p Projector) (uint64, error) {
	c, err := r.cfg.JS.PushConsumer(ctx, p.Stream, p.Durable)
	switch {
	case errors.Is(err, jetstream.ErrConsumerNotFound):
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("consumer %s: %w", p.Durable, err)
	}
	info := c.CachedInfo()
	if info.PushBound {
		return 0, fmt.Errorf("%w: a hub is running projector %s; stop it first", ErrConsumerInUse, p.Durable)
	}
	return info.AckFloor.Stream, nil
}

// replay reads the range through a consumer of its own, which counts the
// events pending when it is made: those are the events replayed.
func (r *Runner) replay(ctx context.Context, p Projector, stream jetstream.Stream, from uint64, progress func(seq, until uint64)) (ReplayStats, error) {
	var stats ReplayStats
	until := stream.CachedInfo().State.LastSeq
	cc := jetstream.ConsumerConfig{
		Description: "Hikeshi replay of " + p.Durable, FilterSubject: p.Filter,
		AckPolicy: jetstream.AckNonePolicy, DeliverPolicy: jetstream.DeliverAllPolicy,
		InactiveThreshold: time.Minute, MemoryStorage: true,
	}
	if from > 1 {
		cc.DeliverPolicy, cc.OptStartSeq = jetstream.DeliverByStartSequencePolicy, from
	}
	c, err := stream.CreateConsumer(ctx, cc)
	if err != nil {
		return stats, fmt.Errorf("read %s: %w", p.Stream, err)
	}
	defer func() { _ = stream.DeleteConsumer(context.WithoutCancel(ctx), c.CachedInfo().Name) }()
	pending := c.CachedInfo().NumPending
	if pending == 0 {
		return stats, nil
	}
	it, err := c.Messages(jetstream.PullMaxMessages(256))
	if err != nil {
		return stats, fmt.Errorf("read %s: %w", p.Stream, err)
	}
	defer it.Stop()
	defer context.AfterFunc(ctx, it.Stop)()
	for n := uint64(0); n < pending; n++ {
		m, err := it.Next()
		if err != nil {
			if ctx.Err() != nil {
				return stats, ctx.Err()
			}
			return stats, fmt.Errorf("read %s: %w", p.Stream, err)
		}
		md, err := m.Metadata()
		if err != nil {
			return stats, fmt.Errorf("read %s: %w", p.Stream, err)
		}
		seq := md.Sequence.Stream
		dead, err := r.replayOne(ctx, p, m, seq)
		if err != nil {
			return stats, fmt.Errorf("stream sequence %d: %w", seq, err)
		}
		if stats.Events == 0 {
			stats.First = seq
		}
		stats.Events++
		stats.Last = seq
		if dead {
			stats.DeadLettered++
		}
		if progress != nil {
			progress(seq, max(until, seq))
		}
	}
	return stats, nil
}

// replayOne hands p one event, retrying as the runner does; it reports
// whether the event was dead-lettered.
func (r *Runner) replayOne(ctx context.Context, p Projector, m jetstream.Msg, seq uint64) (dead bool, err error) {
	ev, err := natsjs.DecodeRaw(m.Subject(), seq, m.Data())
	if err == nil {
		err = r.handleRetrying(ctx, p, ev)
	}
	if err == nil || !permanent(err) {
		return false, err
	}
	return true, r.deadLetter(ctx, p, &nats.Msg{Subject: m.Subject(), Data: m.Data()}, seq, err)
}

// handleRetrying hands p the event until it takes it, it fails for good,
// or the retries run out.
func (r *Runner) handleRetrying(ctx context.Context, p Projector, ev events.Stored) error {
	wait := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := p.Handle(ctx, ev)
		if err == nil || permanent(err) || attempt == replayRetries {
			return err
		}
		r.cfg.Logger.Warn("projector failed; retrying", "projector", p.Durable, "seq", ev.Seq, "err", err)
		if !sleep(ctx, wait) {
			return ctx.Err()
		}
		wait = min(2*wait, 2*time.Second)
	}
}
