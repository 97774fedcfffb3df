package projection

// A batch projector (Projector.HandleBatch) does not go through Watermill,
// where each event is delivered, handled, written and acked on its own with
// one delivery in flight. The server pushes up to batchInFlight deliveries
// ahead, in stream order; the projector takes what has arrived, up to
// batchMax, and writes it with its checkpoint in one transaction; the last
// delivery of the batch is acked, which acks the batch (AckAll). A failed
// write is retried with the same events; an event no retry can handle is
// dead-lettered on its own. A lost or reordered delivery (a gap in the
// consumer's delivery sequence, counted from the last delivery the consumer
// had acknowledged when the projector subscribed) restarts the consumer
// after the checkpoint, so that nothing is skipped.

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/events"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

const (
	batchMax      = 2048 // events per HandleBatch call
	batchInFlight = 8192 // deliveries the server sends ahead (MaxAckPending)
)

// delivery is a stored event and the message that brought it.
type delivery struct {
	ev  events.Stored
	msg *nats.Msg
}

// batchRuns are the batch projectors' loops.
type batchRuns struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// startBatches runs every batch projector until ctx ends or stopBatches.
func (r *Runner) startBatches(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	r.batchRuns.cancel = cancel
	for _, p := range r.batches {
		r.batchRuns.wg.Go(func() { r.runBatch(ctx, p) })
	}
}

func (r *Runner) stopBatches() {
	if r.batchRuns.cancel != nil {
		r.batchRuns.cancel()
	}
	r.batchRuns.wg.Wait()
}

// runBatch consumes until ctx ends, starting over after the checkpoint
// when the deliveries cannot be trusted to follow on. It keeps its
// connection throughout: the connection finds the cluster's other nodes
// when the one it was dialled to is lost, a new dial might not.
func (r *Runner) runBatch(ctx context.Context, p Projector) {
	r.catchUp(ctx, p)
	nc := r.dialBatch(ctx, p)
	if nc == nil {
		return
	}
	defer nc.Close()
	for ctx.Err() == nil {
		err := r.consumeBatches(ctx, p, nc)
		if ctx.Err() != nil {
			return
		}
		r.cfg.Logger.Warn("projector restarting after its checkpoint", "projector", p.Durable, "err", err)
		r.remake(ctx, p)
	}
}

// remake makes p's consumer again after its checkpoint, retrying until it
// is done. The loop reads on only then: the old consumer's deliveries
// lost on the way would come again behind the checkpoint and be skipped
// for good.
func (r *Runner) remake(ctx context.Context, p Projector) {
	if p.Restarted != nil {
		p.Restarted()
	}
	for ctx.Err() == nil {
		// Each try has a short deadline of its own: during a failover a
		// request can go to a meta leader that is gone, and waiting the
		// client's default five seconds for it would keep the projector
		// stopped that much longer after a new one is elected.
		actx, cancel := context.WithTimeout(ctx, remakeTimeout)
		err := r.consumer(p).Align(actx, true)
		cancel()
		if err == nil {
			return
		}
		r.cfg.Logger.Error("projector consumer not recreated; retrying", "projector", p.Durable, "err", err)
		sleep(ctx, remakeRetry)
	}
}

// remakeTimeout and remakeRetry pace remake's tries.
const (
	remakeTimeout = 3 * time.Second
	remakeRetry   = 250 * time.Millisecond
)

// catchUp runs p's CatchUp and moves its consumer to the checkpoint
// reached. A catch-up that fails leaves the rest to the consumer.
func (r *Runner) catchUp(ctx context.Context, p Projector) {
	if p.CatchUp == nil {
		return
	}
	moved, err := p.CatchUp(ctx)
	if err != nil && ctx.Err() == nil {
		r.cfg.Logger.Warn("projector catch-up from the stream failed; its consumer delivers the rest", "projector", p.Durable, "err", err)
	}
	if moved {
		r.remake(ctx, p)
	}
}

// dialBatch connects p's loop, retrying until ctx ends (nil then).
func (r *Runner) dialBatch(ctx context.Context, p Projector) *nats.Conn {
	for {
		nc, err := r.cfg.Dial("hikeshi-" + p.Durable)
		if err == nil {
			return nc
		}
		r.cfg.Logger.Error("projector not connected; retrying", "projector", p.Durable, "err", err)
		if !sleep(ctx, time.Second) {
			return nil
		}
	}
}

func (r *Runner) consumeBatches(ctx context.Context, p Projector, nc *nats.Conn) error {
	sub, err := nc.QueueSubscribeSync(deliverSubject(p.Durable), p.Durable)
	if err != nil {
		return err
	}
	defer func() { _ = sub.Unsubscribe() }()
	// The default limits would drop deliveries of large events; the
	// server never sends more than batchInFlight ahead.
	if err := sub.SetPendingLimits(2*batchInFlight, -1); err != nil {
		return err
	}
	lastDelivery, err := r.acked(ctx, p)
	if err != nil {
		return err
	}
	for {
		msgs, err := r.nextBatch(ctx, p, sub)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		ds := make([]delivery, 0, len(msgs))
		for _, m := range msgs {
			md, err := m.Metadata()
			if err != nil || md.Stream != p.Stream || md.Consumer != p.Durable {
				// Not a delivery of this projector's consumer: another
				// consumer pointed at its deliver subject is ignored, never
				// applied or acknowledged.
				continue
			}
			if md.Sequence.Consumer != lastDelivery+1 {
				return fmt.Errorf("delivery %d after %d: one was lost or came again out of order", md.Sequence.Consumer, lastDelivery)
			}
			lastDelivery = md.Sequence.Consumer
			ev, err := natsjs.DecodeRaw(m.Subject, md.Sequence.Stream, m.Data)
			if err != nil {
				if err := r.deadLetter(ctx, p, m, md.Sequence.Stream, err); err != nil {
					return err
				}
				continue
			}
			ds = append(ds, delivery{ev, m})
		}
		if err := r.handleBatch(ctx, p, ds); err != nil {
			return err
		}
		// Acks every delivery up to the last, waiting out an election; an
		// ack that cannot be settled starts over after the checkpoint.
		if last := lastOwn(msgs, p); last != nil {
			if err := ackSync(ctx, last, r.ackWait(p)); err != nil {
				return fmt.Errorf("ack: %w", err)
			}
		}
	}
}

// acked is the consumer sequence of the last delivery p's consumer had
// acknowledged when p subscribed: the first delivery must follow it, like
// every other. One that does not means deliveries were sent that p never
// got (to a subscription being replaced, over a route that broke as a node
// came back, or by an earlier incarnation of the consumer); acking it
// would acknowledge them too (AckAll), and their events would be skipped
// for good.
func (r *Runner) acked(ctx context.Context, p Projector) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, stallCheck)
	defer cancel()
	c, err := r.cfg.JS.PushConsumer(ctx, p.Stream, p.Durable)
	if err != nil {
		return 0, fmt.Errorf("consumer info: %w", err)
	}
	return c.CachedInfo().AckFloor.Consumer, nil
}

// nextBatch waits for a delivery and takes what else has arrived. While
// none comes, it checks every stallCheck that the consumer has nothing for
// it either.
func (r *Runner) nextBatch(ctx context.Context, p Projector, sub *nats.Subscription) ([]*nats.Msg, error) {
	var m *nats.Msg
	for m == nil {
		wait, cancel := context.WithTimeout(ctx, stallCheck)
		var err error
		m, err = sub.NextMsgWithContext(wait)
		cancel()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if errors.Is(err, context.DeadlineExceeded) {
			if err := r.flowing(ctx, p); err != nil {
				return nil, err
			}
			continue
		}
		if err != nil {
			return nil, err
		}
	}
	msgs := []*nats.Msg{m}
	for len(msgs) < batchMax {
		m, err := sub.NextMsg(0)
		if err != nil {
			break // nothing more right now
		}
		msgs = append(msgs, m)
	}
	return msgs, nil
}

// stallCheck is how long a batch projector waits for a delivery before it
// asks its consumer whether one should have come.
const stallCheck = 2 * time.Second

// flowing reports an error when p's consumer has deliveries that never
// arrived, or events it does not push, while every delivery received was
// acknowledged: what a lost node leaves behind (a delivery lost on the way,
// an ack its leader took and lost). The consumer is p's own, so no other
// process can be holding them. A consumer that does not answer (an
// election) is asked again at the next check.
func (r *Runner) flowing(ctx context.Context, p Projector) error {
	ctx, cancel := context.WithTimeout(ctx, stallCheck)
	defer cancel()
	c, err := r.cfg.JS.PushConsumer(ctx, p.Stream, p.Durable)
	switch {
	case errors.Is(err, jetstream.ErrConsumerNotFound):
		return errors.New("consumer deleted")
	case err != nil:
		return nil
	}
	if info := c.CachedInfo(); info.NumAckPending > 0 || info.NumPending > 0 {
		return fmt.Errorf("deliveries stalled: %d sent and not received or their ack lost, %d not sent, none for %v", info.NumAckPending, info.NumPending, stallCheck)
	}
	return nil
}

// handleBatch hands ds to the projector until it takes them. A permanent
// failure is narrowed down to the events that cause it, which are
// dead-lettered.
func (r *Runner) handleBatch(ctx context.Context, p Projector, ds []delivery) error {
	if len(ds) == 0 {
		return nil
	}
	batch := make([]events.Stored, len(ds))
	for i, d := range ds {
		batch[i] = d.ev
	}
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
		err := p.HandleBatch(ctx, batch)
		if err == nil {
			if r.cfg.Metrics != nil {
				for range batch {
					r.cfg.Metrics.Handled(p.Durable)
				}
			}
			return nil
		}
		if r.cfg.Metrics != nil {
			r.cfg.Metrics.Failed(p.Durable)
		}
		if permanent(err) {
			if len(ds) == 1 {
				return r.deadLetter(ctx, p, ds[0].msg, ds[0].ev.Seq, err)
			}
			for _, d := range ds {
				if err := r.handleBatch(ctx, p, []delivery{d}); err != nil {
					return err
				}
			}
			return nil
		}
		r.cfg.Logger.Error("projector failed; retrying the batch", "projector", p.Durable, "first_seq", batch[0].Seq, "events", len(batch), "err", err)
		if !sleep(ctx, wait) {
			return ctx.Err()
		}
	}
}

// deadLetter keeps an event no retry can handle on DEADLETTER.
func (r *Runner) deadLetter(ctx context.Context, p Projector, m *nats.Msg, seq uint64, why error) error {
	r.cfg.Logger.Error("event dead-lettered", "projector", p.Durable, "seq", seq, "err", why)
	return DeadLetter(ctx, r.cfg.JS, p.Durable, m.Subject, m.Data, seq, why)
}

// DeadLetter keeps the event data (stream sequence seq, on subject) that
// durable can never handle on DEADLETTER, with the headers Watermill's
// poison queue uses; the message id stores it once.
func DeadLetter(ctx context.Context, js jetstream.JetStream, durable, subject string, data []byte, seq uint64, why error) error {
	dl := nats.NewMsg(natsjs.DeadLetterPrefix + "." + durable)
	dl.Data = data
	dl.Header.Set(nats.MsgIdHdr, fmt.Sprintf("%s-%d", durable, seq))
	dl.Header.Set("reason_poisoned", why.Error())
	dl.Header.Set("topic_poisoned", subject)
	dl.Header.Set("handler_poisoned", durable)
	if _, err := js.PublishMsg(ctx, dl); err != nil {
		return fmt.Errorf("%w: dead letter: %w", natsjs.ErrUnavailable, err)
	}
	return nil
}

// sleep waits d unless ctx ends first; it reports whether it slept.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

var errNoHandler = errors.New("a projector needs Handle or HandleBatch")

// lastOwn is the last of msgs delivered by p's own consumer.
func lastOwn(msgs []*nats.Msg, p Projector) *nats.Msg {
	for i := len(msgs) - 1; i >= 0; i-- {
		if md, err := msgs[i].Metadata(); err == nil && md.Stream == p.Stream && md.Consumer == p.Durable {
			return msgs[i]
		}
	}
	return nil
}
