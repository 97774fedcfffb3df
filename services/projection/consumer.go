package projection

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Consumer is a projector's durable consumer, kept where the projector's
// own store stands: a store rebuilt or lost is refilled, a store ahead of
// the consumer is not fed twice. The runner aligns its projectors' push
// consumers with it, the signal projector its pull consumer.
type Consumer struct {
	JS     jetstream.JetStream
	Stream string
	// Config is the consumer's configuration except where it starts
	// (DeliverPolicy, OptStartSeq): a push consumer when it has a
	// DeliverSubject, a pull consumer otherwise.
	Config jetstream.ConsumerConfig
	// Checkpoint is the last stream sequence in the projector's store;
	// nil when it has none, and the consumer's ack floor is its position.
	Checkpoint func(context.Context) (uint64, error)
	// Behind is how far behind the checkpoint the consumer may stand and
	// be kept: what it delivers again, the checkpoint skips. 0 keeps it
	// only exactly at the checkpoint, for a projector whose batches must
	// start right after it to be cut as before.
	Behind uint64
	Logger *slog.Logger
}

// Align creates the consumer, or makes it again after the checkpoint when
// it stands elsewhere, when it was made for another kind of delivery, when
// deliveries are stranded (awaiting their ack with no subscriber, as a
// process that died leaves them: the server would hold them for a whole
// AckWait) or when asked to (force).
func (c Consumer) Align(ctx context.Context, force bool) error {
	var start, cp uint64 // start 0: from the beginning
	if c.Checkpoint != nil {
		var err error
		if cp, err = c.Checkpoint(ctx); err != nil {
			return fmt.Errorf("checkpoint: %w", err)
		}
		start = cp + 1
	}
	info, err := c.info(ctx)
	if err != nil {
		return err
	}
	if info == nil {
		return c.Create(ctx, start)
	}
	floor := info.AckFloor.Stream
	stranded := info.NumAckPending > 0 && !info.PushBound
	if info.PushBound && c.Checkpoint != nil {
		c.logger().Warn("another process reads this consumer (or the server has not yet seen a previous one go): a projector with a store of its own needs a consumer of its own; give every hub replica its own --node-name",
			"projector", c.Config.Durable)
	}
	if !force && !c.otherKind(info.Config) {
		if err := c.retune(ctx, info.Config); err != nil {
			return err
		}
	}
	switch {
	case force || c.otherKind(info.Config):
		if c.Checkpoint == nil {
			start = floor + 1
		}
	case c.Checkpoint == nil:
		// No store of its own: everything up to the ack floor is done
		// and, delivery being in order, the next message follows it.
		if !stranded {
			return nil
		}
		start = floor + 1
	case floor <= cp && cp-floor <= c.Behind && !stranded:
		// Ahead of the store means the store lost events and must be
		// refilled.
		return nil
	}
	c.logger().Warn("realigning consumer", "projector", c.Config.Durable, "ack_floor", floor, "checkpoint", cp,
		"unacked_without_subscriber", stranded, "restart_at", start)
	if err := c.JS.DeleteConsumer(ctx, c.Stream, c.Config.Durable); err != nil {
		return fmt.Errorf("delete consumer: %w", err)
	}
	return c.Create(ctx, start)
}

// Create creates the consumer, delivering from stream sequence start (0
// or 1: from the beginning).
func (c Consumer) Create(ctx context.Context, start uint64) error {
	cfg := c.Config
	cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverAllPolicy, 0
	if start > 1 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, start
	}
	for attempt := 1; ; attempt++ {
		var err error
		if c.push() {
			_, err = c.JS.CreatePushConsumer(ctx, c.Stream, cfg)
		} else {
			_, err = c.JS.CreateConsumer(ctx, c.Stream, cfg)
		}
		// A consumer made again right after its delete can meet the
		// server still removing the old one's files (10012, "rename …
		// o.dat: no such file or directory"): that passes in moments.
		var apiErr *jetstream.APIError
		if err == nil || !errors.As(err, &apiErr) || apiErr.ErrorCode != jetstream.JSErrCodeConsumerCreate || attempt == 5 {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(attempt) * 50 * time.Millisecond):
		}
	}
}

// info is the consumer's, of either kind; nil when there is none.
func (c Consumer) info(ctx context.Context) (*jetstream.ConsumerInfo, error) {
	push := c.push()
	for range 2 {
		var found cachedInfo
		var err error
		if push {
			found, err = c.JS.PushConsumer(ctx, c.Stream, c.Config.Durable)
		} else {
			found, err = c.JS.Consumer(ctx, c.Stream, c.Config.Durable)
		}
		switch {
		case errors.Is(err, jetstream.ErrConsumerNotFound):
			return nil, nil
		case errors.Is(err, jetstream.ErrNotPushConsumer), errors.Is(err, jetstream.ErrNotPullConsumer):
			push = !push // the other kind: read it as such, to be made again
		case err != nil:
			return nil, fmt.Errorf("consumer info: %w", err)
		default:
			return found.CachedInfo(), nil
		}
	}
	return nil, fmt.Errorf("consumer info: %s is neither a push nor a pull consumer", c.Config.Durable)
}

// cachedInfo is what push and pull consumers have in common.
type cachedInfo interface {
	CachedInfo() *jetstream.ConsumerInfo
}

// retune updates in place what may change on an existing consumer: its
// AckWait (an earlier version's was minutes) and how long it is kept
// without a reader.
func (c Consumer) retune(ctx context.Context, have jetstream.ConsumerConfig) error {
	if have.AckWait == c.Config.AckWait && have.InactiveThreshold == c.Config.InactiveThreshold {
		return nil
	}
	have.AckWait, have.InactiveThreshold = c.Config.AckWait, c.Config.InactiveThreshold
	var err error
	if c.push() {
		_, err = c.JS.UpdatePushConsumer(ctx, c.Stream, have)
	} else {
		_, err = c.JS.UpdateConsumer(ctx, c.Stream, have)
	}
	if err != nil {
		return fmt.Errorf("update consumer %s: %w", c.Config.Durable, err)
	}
	return nil
}

// otherKind reports an existing consumer made for another kind of
// delivery, which cannot be changed in place.
func (c Consumer) otherKind(have jetstream.ConsumerConfig) bool {
	return (have.DeliverSubject != "") != c.push() || have.AckPolicy != c.Config.AckPolicy || have.MaxAckPending != c.Config.MaxAckPending
}

func (c Consumer) push() bool { return c.Config.DeliverSubject != "" }

func (c Consumer) logger() *slog.Logger {
	if c.Logger == nil {
		return slog.Default()
	}
	return c.Logger
}
