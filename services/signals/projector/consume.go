package projector

// The signal projector does not run through projection's Watermill router,
// where every message is delivered, handled, its state written and acked
// on its own (MaxAckPending 1): signals come by the thousand in a storm,
// and per-message acks and state writes cost several times the ingest
// itself. It pulls them in stream order instead, in batches of what is
// waiting, keeps the batch's state changes in memory, commits them to its
// state file with the batch's last sequence in one transaction, then acks
// the batch with one ack (AckAll). A failure before the commit discards
// the batch's changes and handles the same messages again; a signal at or
// below the committed sequence is skipped, so nothing is counted twice.
// The consumer starts after the committed sequence: a lost or older state
// file is rebuilt from the stream. One process consumes SIGNALS at a time.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime"
	"time"

	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/projection"
	"github.com/hikeshi/hikeshi/services/signals/ingest"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// maxBatch bounds the signals handled between two state writes.
const maxBatch = 1024

// linger is the pause after a batch that was not full.
const linger = 100 * time.Millisecond

// ensureConsumer creates the durable pull consumer, or recreates it right
// after the committed signal cp when it stands anywhere else: a batch
// stranded (its process died before the ack, so the server would hold it
// for a whole AckWait), a state file lost or restored from a backup, or
// the push consumer of an earlier version. Exactly after cp, because the
// occurrences records' keys depend on where batches are cut: a batch
// handled again after a crash must start where it started before.
func ensureConsumer(ctx context.Context, js jetstream.JetStream, log *slog.Logger, ackWait time.Duration, cp uint64) (jetstream.Consumer, error) {
	c := projection.Consumer{
		JS: js, Stream: events.SignalStream,
		Config: jetstream.ConsumerConfig{
			Durable: Durable, Description: "Hikeshi signal projector", FilterSubject: events.SignalSubjectPrefix + ".>",
			AckPolicy: jetstream.AckAllPolicy, AckWait: ackWait, MaxAckPending: maxBatch, MaxDeliver: -1,
		},
		Checkpoint: func(context.Context) (uint64, error) { return cp, nil },
		Logger:     log,
	}
	if err := c.Align(ctx, false); err != nil {
		return nil, err
	}
	return js.Consumer(ctx, events.SignalStream, Durable)
}

// standbyPart names the projector in /readyz while it waits for the lease.
const standbyPart = "signals projector"

// Run handles signals until ctx ends, while this process holds the lease.
func (p *Runner) Run(ctx context.Context) error {
	env := p.env
	l := newLease(p.st.kv, env.DataDir, env.DataDirID)
	how, holder, err := l.acquire(ctx, func(holder leaseOwner) {
		env.Standby.Wait(standbyPart, "waiting for the lease held by "+holder.String())
		env.Logger.Warn("signals: the signal projector runs in another process; this one waits as a standby and takes over when that process stops or stops renewing its lease for "+l.ttl.String(),
			"holder", holder.String())
	})
	env.Standby.Done(standbyPart)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	switch how {
	case leaseOrphan:
		env.Logger.Info("signals: took over the signal projector lease at once from the previous process of this data dir, which is no longer running", "previous", holder.String())
	case leaseExpired:
		env.Logger.Warn("signals: took over the signal projector lease, not renewed for "+l.ttl.String(), "previous", holder.String())
	}
	ctx, cancel := context.WithCancelCause(ctx)
	held := make(chan error, 1)
	go func() {
		err := l.hold(ctx)
		cancel(err)
		held <- err
	}()
	err = p.consume(ctx)
	cancel(nil)
	if lost := <-held; lost != nil {
		return lost
	}
	return err
}

// consume handles signals until ctx ends.
func (p *Runner) consume(ctx context.Context) error {
	if p.env.DataDir == "" {
		return errors.New("signals: no data dir for the projector's state")
	}
	if err := p.st.open(ctx, filepath.Join(p.env.DataDir, StateFile)); err != nil {
		return err
	}
	defer p.st.close()
	// Deliveries come on a connection of their own: a batch of signals
	// read on the shared one would queue every ingest's acknowledgement
	// behind it.
	nc, err := p.env.Dial("hikeshi-signals")
	if err != nil {
		return fmt.Errorf("signals consumer: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("signals consumer: %w", err)
	}
	c, err := ensureConsumer(ctx, js, p.env.Logger, p.ackWait, p.st.checkpoint())
	if err != nil {
		return fmt.Errorf("signals consumer: %w", err)
	}
	// realign makes the consumer again after the committed signal when it
	// is gone or holds signals this process never got or acked (a node
	// lost with them), rather than waiting for its AckWait.
	realign := func(why error) {
		p.env.Logger.Warn("signals: consumer checked, and made again after the committed signal if need be", "why", why)
		sleep(ctx, time.Second)
		if again, err := ensureConsumer(ctx, js, p.env.Logger, p.ackWait, p.st.checkpoint()); err == nil {
			c = again
		} else if ctx.Err() == nil {
			p.env.Logger.Warn("signals: consumer not reached; retrying", "err", err)
		}
	}
	for ctx.Err() == nil {
		msgs, busy, err := next(ctx, c)
		if err == nil && len(msgs) == 0 {
			err = stranded(ctx, c)
		}
		if err != nil {
			if ctx.Err() == nil {
				realign(err)
			}
			continue
		}
		for wait := 100 * time.Millisecond; len(msgs) > 0; wait = min(2*wait, 5*time.Second) {
			err := p.batch(ctx, msgs)
			if err == nil {
				// Acks every message up to the last, waiting out an
				// election; if the ack is lost the batch comes again and
				// changes nothing.
				if err := ackBatch(ctx, msgs[len(msgs)-1]); err != nil && ctx.Err() == nil {
					realign(fmt.Errorf("ack: %w", err))
				}
				// A storm is handled in batches, not one by one as fast as
				// signals arrive: the state writes and the ack are shared by
				// what arrives meanwhile. A lone signal is handled at once.
				if busy && len(msgs) > 1 && len(msgs) < maxBatch {
					sleep(ctx, linger)
				}
				break
			}
			if ctx.Err() != nil {
				return nil
			}
			p.env.Logger.Error("signal projector failed; retrying the batch", "first_seq", seq(msgs[0]), "signals", len(msgs), "err", err)
			for _, m := range msgs {
				_ = m.InProgress()
			}
			sleep(ctx, wait)
		}
	}
	return nil
}

// ackBatch acks m and every signal before it, retrying while the
// consumer's leader fails over, for up to ackRetry.
func ackBatch(ctx context.Context, m jetstream.Msg) error {
	deadline := time.Now().Add(ackRetry)
	for {
		actx, cancel := context.WithTimeout(ctx, time.Second)
		err := m.DoubleAck(actx)
		cancel()
		if err == nil || errors.Is(err, jetstream.ErrMsgAlreadyAckd) || ctx.Err() != nil || time.Now().After(deadline) {
			return err
		}
		sleep(ctx, 100*time.Millisecond)
	}
}

// ackRetry bounds ackBatch: long enough for a cluster to elect a leader.
const ackRetry = 15 * time.Second

// stranded reports signals the consumer sent and this process, having
// acked all it got, never received.
func stranded(ctx context.Context, c jetstream.Consumer) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	info, err := c.Info(ctx)
	if err != nil {
		return fmt.Errorf("consumer info: %w", err)
	}
	if info.NumAckPending > 0 {
		return fmt.Errorf("%d signals sent and never received", info.NumAckPending)
	}
	return nil
}

// next returns the signals waiting, up to a batch (busy), or waits for
// one.
func next(ctx context.Context, c jetstream.Consumer) (msgs []jetstream.Msg, busy bool, err error) {
	collect := func(b jetstream.MessageBatch, err error) ([]jetstream.Msg, error) {
		if err != nil {
			return nil, err
		}
		var out []jetstream.Msg
		for m := range b.Messages() {
			out = append(out, m)
		}
		if err := b.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, jetstream.ErrNoMessages) &&
			!errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
			return out, err
		}
		return out, nil
	}
	msgs, err = collect(c.FetchNoWait(maxBatch))
	if len(msgs) > 0 || err != nil {
		return msgs, true, err
	}
	wait, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	msgs, err = collect(c.Fetch(1, jetstream.FetchContext(wait)))
	return msgs, false, err
}

// batch handles msgs in order and writes the states they changed. On an
// error nothing is written that the batch's next attempt would not write.
func (p *Runner) batch(ctx context.Context, msgs []jetstream.Msg) error {
	p.cur.reset()
	cp := p.st.checkpoint()
	last := cp
	for _, m := range msgs {
		s := seq(m)
		if s <= cp {
			continue // committed before the ack was lost
		}
		last = s
		// Ingest answers producers while this runs on one of few cores: a
		// batch yields between signals rather than holding a core for
		// milliseconds ahead of their requests.
		runtime.Gosched()
		e, sig, err := ingest.DecodeSignal(m.Subject(), s, m.Data())
		if err == nil {
			err = p.handle(ctx, e, sig)
		}
		if errors.Is(err, events.ErrMalformed) || errors.Is(err, projection.ErrPermanent) {
			p.env.Logger.Error("signal dead-lettered", "seq", s, "err", err)
			err = projection.DeadLetter(ctx, p.env.JS, Durable, m.Subject(), m.Data(), s, err)
		}
		if err != nil {
			p.st.discard()
			return err
		}
	}
	if last == cp {
		return nil
	}
	// The occurrences records go before the commit: after a crash between
	// the two, the batch is handled again and appends them under the same
	// keys, which stores nothing twice.
	if err := p.records(ctx); err != nil {
		p.st.discard()
		return err
	}
	return p.st.flush(ctx, last)
}

func seq(m jetstream.Msg) uint64 {
	md, err := m.Metadata()
	if err != nil {
		return 0
	}
	return md.Sequence.Stream
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
