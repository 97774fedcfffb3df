// Package projection runs projectors on durable JetStream consumers through
// Watermill's Router: recoverer, bounded retry, a dead-letter stream for
// events that can never be handled, and NAK with delay for the rest.
package projection

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/events"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Projector is one row of the registration table.
type Projector struct {
	// Durable is the consumer name. It is fixed here, never derived from a
	// handler name, so renaming code never restarts a projection.
	Durable string
	// Stream is the stream consumed; default INCIDENTS.
	Stream string
	Filter string // default: every incident event; required for another stream
	// Checkpoint, when set, is where the projector's own store stands; the
	// consumer is realigned to it at start (a store rebuilt or lost is
	// refilled, a store ahead of the consumer is not fed twice).
	Checkpoint func(context.Context) (uint64, error)
	Handle     func(context.Context, events.Stored) error
	// HandleBatch, instead of Handle, takes the events that have arrived
	// (in stream order, many in flight) and must write them with its
	// checkpoint atomically, skipping those at or below it: see batch.go.
	// It needs Checkpoint.
	HandleBatch func(context.Context, []events.Stored) error
	// InactiveThreshold, when set, lets the server delete the consumer
	// after this long without a subscriber: for a consumer of one hub
	// replica, which no other replica takes over.
	InactiveThreshold time.Duration
	// CatchUp, for a batch projector, runs each time the projector starts,
	// before its consumer delivers: a store far behind the stream may be
	// brought up to date faster than by deliveries (the timeline reads the
	// stream itself); it reports whether it wrote anything, and the
	// consumer is then made again after the checkpoint.
	CatchUp func(context.Context) (bool, error)
	// Restarted, for a batch projector, runs each time its consumer is made
	// again after the store's checkpoint: what it kept from earlier
	// deliveries may not follow on, since events another writer of a shared
	// store applied meanwhile are not delivered again.
	Restarted func()
}

// Metrics receives what the runner observes.
type Metrics interface {
	Handled(projector string)
	Failed(projector string)
}

// Dial opens a new NATS connection; each subscriber and publisher gets its
// own, because Watermill closes the connection it was handed.
type Dial func(name string) (*nats.Conn, error)

// Config configures the runner.
type Config struct {
	Dial    Dial
	JS      jetstream.JetStream
	Logger  *slog.Logger
	Metrics Metrics
	// AckWait is the server's redelivery timeout for every projector;
	// unset, it is short for one-at-a-time projectors, which renew it while
	// they work, and longer for batch projectors (see settle.go).
	AckWait time.Duration
}

// Metadata keys our unmarshaler keeps, which Watermill's default drops.
const (
	metaSubject = "hikeshi_subject"
	metaSeq     = "hikeshi_seq"
	metaReply   = "hikeshi_reply" // the delivery the runner settles (settle.go)
)

// unmarshaler keeps subject, stream sequence and Msg-Id (as the message
// UUID) so that handlers can checkpoint. It refuses what the projector's
// own consumer did not deliver: another consumer pointed at the deliver
// subject must not feed it old or chosen events.
type unmarshaler struct {
	stream, durable string
	held            *held
}

func (u unmarshaler) Unmarshal(m *nats.Msg) (*message.Message, error) {
	md, err := m.Metadata()
	if err != nil {
		return nil, fmt.Errorf("not a JetStream message on %s: %w", m.Subject, err)
	}
	if u.durable != "" && (md.Stream != u.stream || md.Consumer != u.durable) {
		return nil, fmt.Errorf("delivered by %s/%s, not by %s/%s", md.Stream, md.Consumer, u.stream, u.durable)
	}
	msg := message.NewMessage(m.Header.Get(nats.MsgIdHdr), m.Data)
	msg.Metadata.Set(metaSubject, m.Subject)
	msg.Metadata.Set(metaSeq, strconv.FormatUint(md.Sequence.Stream, 10))
	if u.held != nil {
		msg.Metadata.Set(metaReply, u.held.take(m))
	}
	return msg, nil
}

// Marshal is used for dead letters; metadata become headers.
func (unmarshaler) Marshal(topic string, msg *message.Message) (*nats.Msg, error) {
	return (&wmnats.NATSMarshaler{}).Marshal(topic, msg)
}

// Runner owns the router and its subscribers.
type Runner struct {
	cfg      Config
	router   *message.Router
	conns    []*nats.Conn
	subConns []*nats.Conn // the subscribers' connections, drained first on close
	close    sync.Once
	closeErr error
	closing  *atomic.Bool

	batches   []Projector // run by batch.go, not the router
	batchRuns batchRuns
}

// quietOnClose turns the errors Watermill logs about connections we closed
// on purpose, while stopping, into debug lines.
type quietOnClose struct {
	watermill.LoggerAdapter
	closing *atomic.Bool
}

func (q quietOnClose) Error(msg string, err error, fields watermill.LogFields) {
	if q.closing.Load() && errors.Is(err, nats.ErrConnectionClosed) {
		q.Debug(msg+": "+err.Error(), fields)
		return
	}
	q.LoggerAdapter.Error(msg, err, fields)
}

func (q quietOnClose) With(fields watermill.LogFields) watermill.LoggerAdapter {
	return quietOnClose{q.LoggerAdapter.With(fields), q.closing}
}

// New builds a router for the given projectors, creating or realigning
// their durable consumers.
func New(ctx context.Context, cfg Config, projectors []Projector) (*Runner, error) {
	cfg.defaults()
	closing := &atomic.Bool{}
	logger := quietOnClose{watermill.NewSlogLoggerWithLevelMapping(cfg.Logger, map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug}), closing}
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 10 * time.Second}, logger)
	if err != nil {
		return nil, err
	}
	r := &Runner{cfg: cfg, router: router, closing: closing}
	dlConn, err := r.dial("hikeshi-deadletter")
	if err != nil {
		return nil, err
	}
	dlPub, err := wmnats.NewPublisherWithNatsConn(dlConn, wmnats.PublisherPublishConfig{
		Marshaler:         unmarshaler{},
		SubjectCalculator: wmnats.DefaultSubjectCalculator,
		JetStream:         wmnats.JetStreamConfig{TrackMsgId: true},
	}, logger)
	if err != nil {
		return nil, err
	}
	router.AddMiddleware(
		middleware.Recoverer,
		middleware.CorrelationID,
	)
	for _, p := range projectors {
		if err := r.add(ctx, p, dlPub, logger); err != nil {
			r.Close()
			return nil, fmt.Errorf("projector %s: %w", p.Durable, err)
		}
	}
	return r, nil
}

// defaults fills unset fields.
func (c *Config) defaults() {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

func (r *Runner) dial(name string) (*nats.Conn, error) {
	nc, err := r.cfg.Dial(name)
	if err == nil {
		r.conns = append(r.conns, nc)
	}
	return nc, err
}

func deliverSubject(durable string) string { return "_hikeshi.deliver." + durable }

func maxAckPending(p Projector) int {
	if p.HandleBatch != nil {
		return batchInFlight
	}
	return 1
}

// behindCheckpoint is how far a projector's consumer may stand behind its
// store's checkpoint at start and be kept: the checkpoint skips what it
// delivers again.
const behindCheckpoint = 10_000

// consumer is p's durable push consumer. MaxAckPending 1 keeps delivery in
// stream order even across redeliveries, which the checkpoint relies on; a
// batch projector checks the order itself (batch.go).
func (r *Runner) consumer(p Projector) Consumer {
	cfg := jetstream.ConsumerConfig{
		Durable:        p.Durable,
		Description:    "Hikeshi projector " + p.Durable,
		DeliverSubject: deliverSubject(p.Durable),
		DeliverGroup:   p.Durable,
		FilterSubject:  p.Filter,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        r.ackWait(p),
		MaxAckPending:  maxAckPending(p),
		MaxDeliver:     -1,

		InactiveThreshold: p.InactiveThreshold,
	}
	if p.HandleBatch != nil {
		cfg.AckPolicy = jetstream.AckAllPolicy
	}
	return Consumer{JS: r.cfg.JS, Stream: p.Stream, Config: cfg, Checkpoint: p.Checkpoint, Behind: behindCheckpoint, Logger: r.cfg.Logger}
}

// ErrPermanent marks a handler error that no retry can fix (the remote
// refused the request for good): the event goes to the dead-letter stream
// and the projector moves on. Wrap it: fmt.Errorf("%w: ...", ErrPermanent).
var ErrPermanent = errors.New("permanent failure")

// permanent reports errors that no retry can fix: the event itself is bad,
// or the handler said so.
func permanent(err error) bool {
	return errors.Is(err, events.ErrMalformed) || errors.Is(err, ErrPermanent)
}

// withDefaults fills p's stream and filter, and checks its handlers.
func withDefaults(p Projector) (Projector, error) {
	if p.Stream == "" {
		p.Stream = events.IncidentStream
	}
	if p.Filter == "" {
		if p.Stream != events.IncidentStream {
			return p, errors.New("a projector on another stream needs a filter")
		}
		p.Filter = events.IncidentSubjectPrefix + ".>"
	}
	if (p.Handle == nil) == (p.HandleBatch == nil) || (p.HandleBatch != nil && p.Checkpoint == nil) {
		return p, errNoHandler
	}
	return p, nil
}

func (r *Runner) add(ctx context.Context, p Projector, dlPub message.Publisher, logger watermill.LoggerAdapter) error {
	p, err := withDefaults(p)
	if err != nil {
		return err
	}
	if err := r.consumer(p).Align(ctx, false); err != nil {
		return err
	}
	if p.HandleBatch != nil {
		r.batches = append(r.batches, p)
		return nil
	}
	nc, err := r.dial("hikeshi-" + p.Durable)
	if err != nil {
		return err
	}
	r.subConns = append(r.subConns, nc)
	// The handler's retries end before Watermill stops waiting for it; the
	// server's AckWait is renewed meanwhile (settle.go).
	deliveries := &held{}
	sub, err := wmnats.NewSubscriberWithNatsConn(nc, wmnats.SubscriberSubscriptionConfig{
		Unmarshaler:       unmarshaler{stream: p.Stream, durable: p.Durable, held: deliveries},
		SubjectCalculator: wmnats.DefaultSubjectCalculator,
		AckWaitTimeout:    handlerBudget,
		QueueGroupPrefix:  p.Durable,
		JetStream: wmnats.JetStreamConfig{
			SubscribeOptions:  []nats.SubOpt{nats.Bind(p.Stream, p.Durable), nats.ManualAck()},
			DurableCalculator: func(string, string) string { return p.Durable },
		},
	}, logger)
	if err != nil {
		return err
	}
	poison, err := middleware.PoisonQueueWithFilter(dlPub, natsjs.DeadLetterPrefix+"."+p.Durable, permanent)
	if err != nil {
		return err
	}
	retry := middleware.Retry{
		MaxRetries:      5,
		InitialInterval: 100 * time.Millisecond,
		MaxInterval:     2 * time.Second,
		Multiplier:      2,
		MaxElapsedTime:  handlerBudget / 2,
		ShouldRetry:     func(p middleware.RetryParams) bool { return !permanent(p.Err) },
	}
	h := r.router.AddConsumerHandler(p.Durable, p.Filter, sub, func(msg *message.Message) error {
		seq, err := strconv.ParseUint(msg.Metadata.Get(metaSeq), 10, 64)
		if err != nil {
			return fmt.Errorf("%w: no stream sequence", events.ErrMalformed)
		}
		stored, err := natsjs.DecodeRaw(msg.Metadata.Get(metaSubject), seq, msg.Payload)
		if err == nil {
			err = p.Handle(msg.Context(), stored)
		}
		if r.cfg.Metrics != nil {
			if err != nil {
				r.cfg.Metrics.Failed(p.Durable)
			} else {
				r.cfg.Metrics.Handled(p.Durable)
			}
		}
		if err != nil {
			r.cfg.Logger.Error("projector failed", "projector", p.Durable, "seq", seq, "err", err)
		}
		return err
	})
	h.AddMiddleware(r.settle(p, deliveries), poison, retry.Middleware)
	return nil
}

// Run blocks until ctx ends or the router stops. The router does not see
// ctx itself: cancellation goes through Close, which stops deliveries
// before the router.
func (r *Runner) Run(ctx context.Context) error {
	done := make(chan error, 1)
	r.startBatches(context.WithoutCancel(ctx))
	go func() { done <- r.router.Run(context.WithoutCancel(ctx)) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		cerr := r.Close()
		if err := <-done; err != nil {
			return err
		}
		return cerr
	}
}

// Running is closed once every handler is subscribed.
func (r *Runner) Running() <-chan struct{} { return r.router.Running() }

// Close stops deliveries, lets the message in hand finish and be acked,
// then stops the router and closes the connections. Draining first matters:
// the Watermill subscriber closes its output channel without waiting for a
// delivery callback that is still sending on it.
func (r *Runner) Close() error {
	r.close.Do(func() {
		r.closing.Store(true)
		r.stopBatches()
		for _, nc := range r.subConns {
			_ = nc.Drain()
		}
		deadline := time.Now().Add(10 * time.Second)
		for _, nc := range r.subConns {
			for !nc.IsClosed() && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
		}
		r.closeErr = r.router.Close()
		for _, nc := range r.conns {
			nc.Close()
		}
	})
	return r.closeErr
}
