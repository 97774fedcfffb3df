package natsjs

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hikeshi/hikeshi/events"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrConflict: another writer appended to the incident since the expected
// version. Reload and decide again.
var ErrConflict = errors.New("incident changed concurrently")

// ErrUnavailable: the bus did not confirm that it stored the event. The
// caller must not report success.
var ErrUnavailable = errors.New("event bus unavailable")

// Store appends incident events and reads them back.
type Store struct {
	js     jetstream.JetStream
	stream jetstream.Stream
	snaps  *Snapshots
}

// NewStore binds to the incident stream and the snapshot buckets, which
// EnsureTopology created.
func NewStore(ctx context.Context, js jetstream.JetStream) (*Store, error) {
	st, err := js.Stream(ctx, events.IncidentStream)
	if err != nil {
		return nil, fmt.Errorf("incident stream: %w", err)
	}
	snaps, err := NewSnapshots(ctx, js)
	if err != nil {
		return nil, err
	}
	return &Store{js: js, stream: st, snaps: snaps}, nil
}

// Snapshots is where incident states are kept between commands.
func (s *Store) Snapshots() *Snapshots { return s.snaps }

// JetStream exposes the context for callers that need more than events.
func (s *Store) JetStream() jetstream.JetStream { return s.js }

// Append stores env as the next event of its incident, provided the last
// event of the incident is still at stream sequence expected (0: the
// incident has no events yet). The envelope id is the Msg-Id, so a retried
// publish inside the duplicate window is stored once; duplicate reports it.
func (s *Store) Append(ctx context.Context, env events.Envelope, expected uint64) (seq uint64, duplicate bool, err error) {
	body, err := env.Marshal()
	if err != nil {
		return 0, false, err
	}
	return s.AppendMarshaled(ctx, env, body, expected)
}

// AppendMarshaled is Append of an envelope already marshaled into body
// (the command side hashes those bytes for the chain, and sends them).
func (s *Store) AppendMarshaled(ctx context.Context, env events.Envelope, body []byte, expected uint64) (seq uint64, duplicate bool, err error) {
	if !events.ValidID(env.Subject) {
		return 0, false, fmt.Errorf("append: %q is not a valid incident id", env.Subject)
	}
	subject, err := events.IncidentSubject(env.Subject, env.Type)
	if err != nil {
		return 0, false, err
	}
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	msg := &nats.Msg{Subject: subject, Data: body, Header: nats.Header{}}
	msg.Header.Set("Content-Type", "application/cloudevents+json")
	ack, err := s.js.PublishMsg(ctx, msg,
		jetstream.WithMsgID(env.ID),
		jetstream.WithExpectStream(events.IncidentStream),
		jetstream.WithExpectLastSequenceForSubject(expected, events.IncidentFilter(env.Subject)),
	)
	if err != nil {
		return 0, false, classify(err)
	}
	return ack.Sequence, ack.Duplicate, nil
}

// OpTimeout bounds a single bus operation whose caller set no deadline, so
// a request never hangs on an unreachable bus.
const OpTimeout = 5 * time.Second

func withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, OpTimeout)
}

// classify turns publish errors into the two a caller branches on. Codes,
// never texts: replicated streams report 10164 instead of 10071.
func classify(err error) error {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode {
		case jetstream.JSErrCodeStreamWrongLastSequence, jetstream.JSErrCodeStreamWrongLastSequenceConstant:
			return fmt.Errorf("%w: %v", ErrConflict, err)
		}
	}
	return fmt.Errorf("%w: %v", ErrUnavailable, err)
}

// LastSeq is the stream sequence of the incident's last event, 0 if none.
func (s *Store) LastSeq(ctx context.Context, id string) (uint64, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	m, err := s.stream.GetLastMsgForSubject(ctx, events.IncidentFilter(id))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return m.Sequence, nil
}

// LastStreamSeq is the sequence of the last event on the incident stream.
func (s *Store) LastStreamSeq(ctx context.Context) (uint64, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	info, err := s.stream.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return info.State.LastSeq, nil
}

// Load returns the incident's events after stream sequence after, in order.
func (s *Store) Load(ctx context.Context, id string, after uint64) ([]events.Stored, error) {
	last, err := s.LastSeq(ctx, id)
	if err != nil || last <= after {
		return nil, err
	}
	var out []events.Stored
	err = s.Read(ctx, ReadOptions{Filter: events.IncidentFilter(id), After: after, Until: last}, func(e events.Stored) error {
		out = append(out, e)
		return nil
	})
	return out, err
}

// ReadOptions bounds a read of the stream.
type ReadOptions struct {
	Filter string // default: every incident
	After  uint64 // start after this stream sequence
	Until  uint64 // stop after this sequence; 0: the last sequence when the read starts
	// OnProgress is called every so often with the sequence reached.
	OnProgress func(seq, until uint64)
	// Follow keeps reading new events until ctx ends; Until is ignored.
	Follow bool
	// FromNew, with Follow, starts at the next event appended.
	FromNew bool
	// Bulk fetches bulkPullBytes of messages at a time instead of 1,000:
	// for a read of the whole stream, fewer round trips to the server.
	Bulk bool
}

// bulkPullBytes is what a bulk read keeps in flight.
const bulkPullBytes = 16 << 20

// Read delivers stored events in stream order through an ordered consumer,
// the fastest reader JetStream offers, until the Until sequence.
func (s *Store) Read(ctx context.Context, o ReadOptions, fn func(events.Stored) error) error {
	return s.ReadRaw(ctx, o, func(m Raw) error {
		stored, err := m.Decode()
		if err != nil {
			return err
		}
		return fn(stored)
	})
}

// Raw is a stored event not yet decoded, as ReadRaw delivers it.
type Raw struct {
	Subject string
	Seq     uint64
	Data    []byte
}

// Decode decodes the event's envelope.
func (m Raw) Decode() (events.Stored, error) { return DecodeRaw(m.Subject, m.Seq, m.Data) }

// ReadRaw is Read without decoding the envelopes, for a reader that decodes
// them elsewhere (on other cores, in order). Bulk fetches more messages at a
// time.
func (s *Store) ReadRaw(ctx context.Context, o ReadOptions, fn func(Raw) error) error {
	if o.Filter == "" {
		o.Filter = events.IncidentSubjectPrefix + ".>"
	}
	if o.Until == 0 && !o.Follow {
		info, err := s.stream.Info(ctx)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		o.Until = info.State.LastSeq
	}
	if o.Until <= o.After && !o.Follow {
		return nil
	}
	cc := jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{o.Filter},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    o.After + 1,
	}
	if o.Follow && o.FromNew {
		cc.DeliverPolicy, cc.OptStartSeq = jetstream.DeliverNewPolicy, 0
	}
	cons, err := s.stream.OrderedConsumer(ctx, cc)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	var pull jetstream.PullMessagesOpt = jetstream.PullMaxMessages(1000)
	if o.Bulk {
		pull = jetstream.PullMaxBytes(bulkPullBytes)
	}
	it, err := cons.Messages(pull)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	defer it.Stop()
	// A filtered range may hold no message: nothing would come before the
	// next one appended, past Until.
	if info := cons.CachedInfo(); !o.Follow && info != nil && info.NumPending == 0 {
		return nil
	}
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	for {
		m, err := it.Next()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		md, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("message metadata: %w", err)
		}
		if !o.Follow && md.Sequence.Stream > o.Until {
			return nil
		}
		if err := fn(Raw{Subject: m.Subject(), Seq: md.Sequence.Stream, Data: m.Data()}); err != nil {
			return err
		}
		if o.Follow {
			continue
		}
		if seq := md.Sequence.Stream; o.OnProgress != nil && (seq%1000 == 0 || seq >= o.Until) {
			o.OnProgress(seq, o.Until)
		}
		if md.Sequence.Stream >= o.Until {
			return nil
		}
		// With a filter the last matching message may sit below Until.
		if md.NumPending == 0 {
			return nil
		}
	}
}

// Decode turns a JetStream message into a stored event.
func Decode(m jetstream.Msg) (events.Stored, error) {
	md, err := m.Metadata()
	if err != nil {
		return events.Stored{}, fmt.Errorf("message metadata: %w", err)
	}
	return DecodeRaw(m.Subject(), md.Sequence.Stream, m.Data())
}

// DecodeRaw builds a stored event from its parts.
func DecodeRaw(subject string, seq uint64, data []byte) (events.Stored, error) {
	env, err := events.Unmarshal(data)
	if err != nil {
		return events.Stored{}, fmt.Errorf("stream seq %d (%s): %w", seq, subject, err)
	}
	return events.Stored{Seq: seq, Subject: subject, Envelope: env}, nil
}

// Cases allocates case numbers. Each allocation is a put on one key of a
// KV bucket; the revision JetStream assigns is the number. It is atomic
// across any number of hub replicas and needs no compare-and-swap loop.
// A second bucket maps each number to its incident, so that INC-42 can be
// used the moment the incident is declared, on any replica.
type Cases struct {
	kv     jetstream.KeyValue
	ids    jetstream.KeyValue
	prefix string
}

// NewCases binds the case buckets; prefix is e.g. "INC".
func NewCases(ctx context.Context, js jetstream.JetStream, prefix string) (*Cases, error) {
	kv, err := js.KeyValue(ctx, CasesBucket)
	if err != nil {
		return nil, fmt.Errorf("case bucket: %w", err)
	}
	ids, err := js.KeyValue(ctx, CaseIDsBucket)
	if err != nil {
		return nil, fmt.Errorf("case index bucket: %w", err)
	}
	return &Cases{kv: kv, ids: ids, prefix: prefix}, nil
}

// caseKey is the index key of a case number; lookups ignore case.
func caseKey(number string) string { return strings.ToUpper(number) }

// Bind records which incident a case number belongs to. The first binding
// wins: a number is never reassigned.
func (c *Cases) Bind(ctx context.Context, number, id string) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	if _, err := c.ids.Create(ctx, caseKey(number), []byte(id)); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
		return fmt.Errorf("%w: index case %s: %v", ErrUnavailable, number, err)
	}
	return nil
}

// Lookup finds the incident of a case number.
func (c *Cases) Lookup(ctx context.Context, number string) (string, bool, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	e, err := c.ids.Get(ctx, caseKey(number))
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrInvalidKey) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("%w: case %s: %v", ErrUnavailable, number, err)
	}
	return string(e.Value()), true, nil
}

// Next allocates the next case number, e.g. INC-42.
func (c *Cases) Next(ctx context.Context) (string, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	rev, err := c.kv.Put(ctx, "seq", nil)
	if err != nil {
		return "", fmt.Errorf("%w: allocate case number: %v", ErrUnavailable, err)
	}
	return c.prefix + "-" + strconv.FormatUint(rev, 10), nil
}
