package natsjs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hikeshi/hikeshi/events"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// SignalPublisher stores normalised signals on the SIGNALS stream, once
// each: the signals module's ingest and the Slack escalation shortcut.
type SignalPublisher struct {
	JS      jetstream.JetStream
	Timeout time.Duration // default 5s
	// inboxes are idle reply subscriptions (see publish).
	inboxes chan *inbox
}

// idleInboxes bounds the reply subscriptions kept between requests.
const idleInboxes = 64

// NewSignalPublisher stores signals through js.
func NewSignalPublisher(js jetstream.JetStream) *SignalPublisher {
	return &SignalPublisher{JS: js, inboxes: make(chan *inbox, idleInboxes)}
}

// inbox is a reply subscription delivering into a channel of one: a
// request waits for one answer, and a subscription's default buffer would
// hold half a megabyte each.
type inbox struct {
	sub *nats.Subscription
	ch  chan *nats.Msg
}

// Put stores every signal and reports how many were new. It returns only
// after JetStream acknowledged each one (or said it already has it); any
// other failure is ErrUnavailable and nothing may be reported as
// accepted.
func (p *SignalPublisher) Put(ctx context.Context, sigs []events.Signal) (stored int, err error) {
	now := time.Now()
	if len(sigs) == 1 {
		dup, err := p.putOne(ctx, &sigs[0], now)
		if err != nil || dup {
			return 0, err
		}
		return 1, nil
	}
	// One buffer holds every envelope of the delivery: JetStream keeps a
	// message until its ack (to resend it), and Put waits for every ack.
	arena := make([]byte, 0, len(sigs)*768)
	ends := make([]int, len(sigs))
	keys := make([]string, len(sigs))
	for i := range sigs {
		s := &sigs[i]
		keys[i] = s.Key()
		if arena, err = events.AppendSignal(arena, s, keys[i], now); err != nil {
			return 0, err
		}
		ends[i] = len(arena)
	}
	msgs := make([]nats.Msg, len(sigs))
	for i := range msgs {
		from := 0
		if i > 0 {
			from = ends[i-1]
		}
		msgs[i] = nats.Msg{Subject: events.SignalSubject(sigs[i].Source, sigs[i].Kind), Data: arena[from:ends[i]:ends[i]],
			Header: nats.Header{nats.MsgIdHdr: {keys[i]}, "Content-Type": signalContentType}}
	}
	// A batch is published without waiting between signals, then every
	// ack is awaited: the answer still comes only after all are stored.
	ctx, cancel := context.WithTimeout(ctx, p.timeout())
	defer cancel()
	futures := make([]jetstream.PubAckFuture, len(msgs))
	for i := range msgs {
		if futures[i], err = p.JS.PublishMsgAsync(&msgs[i]); err != nil {
			return 0, fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
	}
	for _, f := range futures {
		select {
		case ack := <-f.Ok():
			if !ack.Duplicate {
				stored++
			}
		case err := <-f.Err():
			return 0, fmt.Errorf("%w: %v", ErrUnavailable, err)
		case <-ctx.Done():
			return 0, fmt.Errorf("%w: %v", ErrUnavailable, ctx.Err())
		}
	}
	return stored, nil
}

// putOne stores one signal as a plain request: one round trip and no
// future. Its envelope is built in a pooled buffer, free again once sent
// (the connection copies what it sends), and it waits with a timer of its
// own: a deadline derived from the request's context would cost every
// delivery a child context registered with its parent.
func (p *SignalPublisher) putOne(ctx context.Context, s *events.Signal, now time.Time) (dup bool, err error) {
	buf := envelopes.Get().(*[]byte)
	defer func() {
		if cap(*buf) <= maxPooledEnvelope {
			envelopes.Put(buf)
		}
	}()
	key := s.Key()
	if *buf, err = events.AppendSignal((*buf)[:0], s, key, now); err != nil {
		return false, err
	}
	m := nats.Msg{Subject: events.SignalSubject(s.Source, s.Kind), Data: *buf,
		Header: nats.Header{nats.MsgIdHdr: {key}, "Content-Type": signalContentType}}
	return p.publish(ctx, &m)
}

// envelopes are buffers for putOne; one larger than maxPooledEnvelope
// (a signal near its size limits) is left to the collector.
var envelopes = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

const maxPooledEnvelope = 16 << 10

// timeout bounds the wait for JetStream's answers.
func (p *SignalPublisher) timeout() time.Duration {
	if p.Timeout <= 0 {
		return 5 * time.Second
	}
	return p.Timeout
}

// errNoAnswer: JetStream did not answer within the publisher's Timeout.
var errNoAnswer = errors.New("no answer from JetStream in time")

// signalContentType is shared by every signal's header; nothing writes to it.
var signalContentType = []string{"application/cloudevents+json"}

// publish stores one signal as a request to the stream and reads
// JetStream's answer, {"stream":…,"seq":…[,"duplicate": true]} or an
// error, by hand: every single-alert delivery waits on it, and decoding it
// with encoding/json cost more than the rest of the answer. The answer
// comes to a reply subscription of its own, taken from a few kept between
// requests: the connection's shared reply handler would be one more
// goroutine between the answer and the waiting request. No answer within
// the publisher's Timeout is ErrUnavailable.
func (p *SignalPublisher) publish(ctx context.Context, m *nats.Msg) (dup bool, err error) {
	nc := p.JS.Conn()
	var in *inbox
	select {
	case in = <-p.inboxes:
	default:
		in = &inbox{ch: make(chan *nats.Msg, 1)}
		if in.sub, err = nc.ChanSubscribe(nc.NewRespInbox(), in.ch); err != nil {
			return false, fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
	}
	m.Reply = in.sub.Subject
	resp, err := func() (*nats.Msg, error) {
		if err := nc.PublishMsg(m); err != nil {
			return nil, err
		}
		// A request given up on while it was sent is answered as given up
		// whether or not its answer is already in: the same outcome every
		// time, not the pick of a select between two ready cases.
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		timer := time.NewTimer(p.timeout())
		defer timer.Stop()
		select {
		case msg := <-in.ch:
			return msg, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-timer.C:
			return nil, errNoAnswer
		}
	}()
	if err != nil {
		// A late answer must not reach the next request: drop the inbox.
		_ = in.sub.Unsubscribe()
		return false, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	select {
	case p.inboxes <- in:
	default:
		_ = in.sub.Unsubscribe()
	}
	b := resp.Data
	if bytes.HasPrefix(b, []byte(`{"stream":`)) && !bytes.Contains(b, []byte(`"error"`)) {
		_, rest, found := bytes.Cut(b, []byte(`"duplicate":`))
		return found && bytes.HasPrefix(bytes.TrimLeft(rest, " "), []byte("true")), nil
	}
	var ack struct {
		Error *struct {
			Code        int    `json:"code"`
			Description string `json:"description"`
		} `json:"error"`
		Stream    string `json:"stream"`
		Duplicate bool   `json:"duplicate"`
	}
	switch err := json.Unmarshal(b, &ack); {
	case err != nil:
		return false, fmt.Errorf("%w: unreadable answer from JetStream: %q", ErrUnavailable, b)
	case ack.Error != nil:
		return false, fmt.Errorf("%w: JetStream: %s (%d)", ErrUnavailable, ack.Error.Description, ack.Error.Code)
	case ack.Stream == "":
		return false, fmt.Errorf("%w: no stream stored the signal: %q", ErrUnavailable, b)
	}
	return ack.Duplicate, nil
}
