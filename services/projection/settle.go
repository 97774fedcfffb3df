package projection

// Settling deliveries so that a lost node does not stall a projector.
//
// On a JetStream cluster an ack goes to the consumer's leader. When that
// node, or the node this process talks to, is lost, an ack can time out,
// or be taken by a leader that dies before replicating it, and a delivery
// can be lost on the way. The server then holds the delivery until its
// AckWait runs out, and a projector allowed one delivery in flight waits as
// long. So:
//
//   - acks are synchronous and retried until a leader answers: the common
//     case, an ack sent during an election, settles as soon as there is a
//     new leader;
//   - a projector that handles one event at a time has a short AckWait
//     (handleAckWait), and its handler renews it with in-progress acks while
//     it works: the server itself hands a delivery whose ack or message was
//     lost to a worker again within seconds, while a slow remote (Slack's
//     Retry-After) keeps its delivery with the replica working on it. A
//     redelivered event is safe: these projectors keep an effects ledger;
//   - a batch projector (the timeline) is one process's own consumer: when
//     deliveries stop while its consumer says there is more, or an ack
//     cannot be settled, it starts again after its store's checkpoint
//     (batch.go); its AckWait (batchAckWait) is only the last resort.

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
)

const (
	handleAckWait = 5 * time.Second
	batchAckWait  = 30 * time.Second
	// handlerBudget bounds one event's handling, retries included: long
	// enough to obey a remote's Retry-After (Slack asks for up to a
	// minute; httpx waits at most two).
	handlerBudget = 4 * time.Minute
	nakDelay      = 2 * time.Second
	// ackTry is how long one ack waits for the leader's answer.
	ackTry = time.Second
)

// ackWait is the server's AckWait for p's consumer.
func (r *Runner) ackWait(p Projector) time.Duration {
	switch {
	case r.cfg.AckWait > 0:
		return r.cfg.AckWait
	case p.HandleBatch != nil:
		return batchAckWait
	default:
		return handleAckWait
	}
}

// ackSync acks m, retrying until the consumer's leader answers or the
// server would have sent m again anyway (after wait).
func ackSync(ctx context.Context, m *nats.Msg, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		err := m.AckSync(nats.AckWait(ackTry))
		if err == nil || errors.Is(err, nats.ErrMsgAlreadyAckd) {
			return nil
		}
		if errors.Is(err, nats.ErrConnectionClosed) || time.Now().After(deadline) || !sleep(ctx, 100*time.Millisecond) {
			return err
		}
	}
}

// held keeps the deliveries the unmarshaler took from Watermill, by reply
// subject (unique to a delivery), until the handler has settled them.
type held struct{ m sync.Map }

// take hands m's reply to the runner: Watermill, seeing no reply, neither
// acks nor naks it (it would ack once, without retrying).
func (h *held) take(m *nats.Msg) string {
	if m.Reply == "" {
		return ""
	}
	own := *m
	h.m.Store(m.Reply, &own)
	m.Reply = ""
	return own.Reply
}

func (h *held) release(reply string) *nats.Msg {
	if v, ok := h.m.LoadAndDelete(reply); ok {
		return v.(*nats.Msg)
	}
	return nil
}

// settle is the handler middleware that settles each delivery itself: it
// renews the delivery while the handler works, acks it synchronously on
// success and asks for it again a little later on failure.
func (r *Runner) settle(p Projector, h *held) message.HandlerMiddleware {
	wait := r.ackWait(p)
	return func(next message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			d := h.release(msg.Metadata.Get(metaReply))
			if d == nil {
				return next(msg)
			}
			stop := inProgress(d, wait/3, handlerBudget)
			defer func() {
				if v := recover(); v != nil {
					// The recoverer logs it; the event comes again soon.
					stop()
					r.nak(p, d, wait)
					panic(v)
				}
			}()
			out, err := next(msg)
			stop()
			if err != nil {
				r.nak(p, d, wait)
				return out, err
			}
			if err := ackSync(msg.Context(), d, wait); err != nil && !r.closing.Load() {
				r.cfg.Logger.Warn("ack not settled; the server sends the event again after its ack wait, and the effects ledger skips it", "projector", p.Durable, "ack_wait", wait, "err", err)
			}
			return out, nil
		}
	}
}

// nak asks for d again after nakDelay.
func (r *Runner) nak(p Projector, d *nats.Msg, wait time.Duration) {
	if err := d.NakWithDelay(nakDelay); err != nil && !r.closing.Load() {
		r.cfg.Logger.Warn("delivery not handed back; the server sends it again after its ack wait", "projector", p.Durable, "ack_wait", wait, "err", err)
	}
}

// inProgress tells the server every so often that d is being worked on,
// until stop, or until budget has passed: a handler that hangs does not
// hold its event for ever.
func inProgress(d *nats.Msg, every, budget time.Duration) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		end := time.NewTimer(budget)
		defer end.Stop()
		for {
			select {
			case <-done:
				return
			case <-end.C:
				return
			case <-t.C:
				_ = d.InProgress()
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}
