package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/events"
)

// Live fan-out of GET /api/v1/events: the process follows the incident
// stream with one subscription (Live) and hands every event, encoded once,
// to each client's small buffer. A client whose buffer is full has fallen
// behind: it is dropped with an end-of-stream event saying where to resume,
// and the others never wait for it.

// liveBuffer is how many events a client may be behind before it is
// dropped. A pointer each: the events themselves are shared.
const liveBuffer = 256

// liveLinger is the pause after each write to a client: what arrives
// meanwhile goes out in the next write, so that a busy stream costs the hub
// tens of writes a second per client rather than one per event.
const liveLinger = 20 * time.Millisecond

// frame is one event as an SSE message.
type frame struct {
	seq  uint64
	data []byte
}

// subscriber is one client's queue.
type subscriber struct {
	ch chan *frame
	// kick unblocks a write stuck on a client that stopped reading.
	kick func()
	// dropped is set (under the broadcaster's lock) before ch is closed.
	dropped string
}

// broadcaster hands the events of its one stream subscription to every
// subscriber.
type broadcaster struct {
	store *natsjs.Store
	ready chan struct{} // closed once pos is set

	mu   sync.Mutex
	pos  uint64 // last sequence handed out
	subs map[*subscriber]struct{}
	done bool
}

func newBroadcaster(store *natsjs.Store) *broadcaster {
	return &broadcaster{store: store, ready: make(chan struct{}), subs: map[*subscriber]struct{}{}}
}

// run follows the stream from its end until ctx ends, resuming after a
// bus failure where it stopped; then it ends every client's stream.
func (b *broadcaster) run(ctx context.Context) error {
	defer b.closeAll("the hub is stopping; reconnect with ?after= to resume")
	for ctx.Err() == nil {
		if err := b.follow(ctx); err != nil && ctx.Err() == nil {
			slog.Warn("live events: following the incident stream failed; retrying", "after", b.position(), "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
	return nil
}

func (b *broadcaster) follow(ctx context.Context) error {
	select {
	case <-b.ready:
	default:
		last, err := b.store.LastStreamSeq(ctx)
		if err != nil {
			return err
		}
		b.mu.Lock()
		b.pos = last
		b.mu.Unlock()
		close(b.ready)
	}
	return b.store.Read(ctx, natsjs.ReadOptions{Follow: true, After: b.position()}, b.publish)
}

func (b *broadcaster) position() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.pos
}

// publish hands one event to every subscriber without waiting for any.
func (b *broadcaster) publish(e events.Stored) error {
	f, err := encodeFrame(e)
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if e.Seq <= b.pos {
		return nil
	}
	b.pos = e.Seq
	for s := range b.subs {
		select {
		case s.ch <- f:
		default:
			b.drop(s, "too slow: "+strconv.Itoa(liveBuffer)+" events behind")
		}
	}
	return nil
}

// drop ends a subscriber's stream; b.mu is held.
func (b *broadcaster) drop(s *subscriber, reason string) {
	delete(b.subs, s)
	s.dropped = reason
	close(s.ch)
	if s.kick != nil {
		s.kick()
	}
}

func (b *broadcaster) closeAll(reason string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.done = true
	for s := range b.subs {
		b.drop(s, reason)
	}
}

// subscribe registers s if the broadcaster has handed out nothing after
// seq; otherwise it returns the position the caller must first read up to.
func (b *broadcaster) subscribe(s *subscriber, seq uint64) (gapUntil uint64, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done {
		return 0, false
	}
	if b.pos > seq {
		return b.pos, false
	}
	b.subs[s] = struct{}{}
	return 0, true
}

func (b *broadcaster) unsubscribe(s *subscriber) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.subs, s)
}

func (b *broadcaster) subscribers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}

func encodeFrame(e events.Stored) (*frame, error) {
	body, err := json.Marshal(e.Envelope)
	if err != nil {
		return nil, err
	}
	data := fmt.Appendf(nil, "id: %d\nevent: %s\ndata: %s\n\n", e.Seq, e.Type, body)
	return &frame{seq: e.Seq, data: data}, nil
}

// Live runs the fan-out of GET /api/v1/events until ctx ends, then ends
// every client's stream. The hub runs it beside the HTTP server.
func (s *Server) Live(ctx context.Context) error { return s.live.run(ctx) }

// tail streams every new event as Server-Sent Events (?after=SEQ resumes).
func (s *Server) tail(w http.ResponseWriter, r *http.Request) error {
	after, err := intParam(r, "after", 0)
	if err != nil {
		return err
	}
	fl, ok := w.(http.Flusher)
	if !ok {
		return fmt.Errorf("streaming unsupported")
	}
	ctx := r.Context()
	select {
	case <-s.live.ready:
	case <-ctx.Done():
		return nil
	}
	sent := uint64(after)
	if after == 0 {
		// Start after the last event stored now, before the client sees
		// the stream open: an event appended once it is open is never
		// missed.
		if sent, err = s.d.Events.LastStreamSeq(ctx); err != nil {
			return err
		}
	}
	sub := &subscriber{ch: make(chan *frame, liveBuffer), kick: kicker(w)}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, ": following incident events\n\n")
	fl.Flush()
	// Catch up from the stream until the live feed has nothing this
	// client lacks, then follow the live feed.
	for {
		until, ok := s.live.subscribe(sub, sent)
		if ok {
			break
		}
		if until == 0 {
			return nil // the hub is stopping
		}
		err := s.d.Events.Read(ctx, natsjs.ReadOptions{After: sent, Until: until}, func(e events.Stored) error {
			f, err := encodeFrame(e)
			if err == nil {
				err = writeFrames(w, fl, f)
				sent = e.Seq
			}
			return err
		})
		if err != nil {
			return sseEnd(w, fl, sent, err.Error())
		}
		sent = max(sent, until)
	}
	defer s.live.unsubscribe(sub)
	linger := time.NewTimer(0)
	<-linger.C
	for {
		select {
		case <-ctx.Done():
			return nil
		case f, open := <-sub.ch:
			if !open {
				return sseEnd(w, fl, sent, sub.dropped)
			}
			batch := []*frame{f}
			batch, sent = drain(sub.ch, batch, sent)
			if err := writeFrames(w, fl, batch...); err != nil {
				return nil // the client is gone
			}
			linger.Reset(liveLinger)
			select {
			case <-ctx.Done():
				return nil
			case <-linger.C:
			}
		}
	}
}

// drain takes what else is queued, so that a burst costs one flush, and
// leaves out the events the client already has.
func drain(ch chan *frame, batch []*frame, sent uint64) ([]*frame, uint64) {
more:
	for len(batch) < liveBuffer {
		select {
		case f, open := <-ch:
			if !open {
				break more // the next receive reports the drop
			}
			batch = append(batch, f)
		default:
			break more
		}
	}
	kept := batch[:0]
	for _, f := range batch {
		if f.seq > sent {
			kept = append(kept, f)
			sent = f.seq
		}
	}
	return kept, sent
}

func writeFrames(w http.ResponseWriter, fl http.Flusher, fs ...*frame) error {
	for _, f := range fs {
		if _, err := w.Write(f.data); err != nil {
			return err
		}
	}
	fl.Flush()
	return nil
}

// sseEnd tells the client its stream ends, why, and where to resume.
func sseEnd(w http.ResponseWriter, fl http.Flusher, sent uint64, reason string) error {
	b, _ := json.Marshal(map[string]any{"reason": reason, "resume_after": sent})
	fmt.Fprintf(w, "event: end\ndata: %s\n\n", b)
	fl.Flush()
	return nil
}

// kicker sets a close write deadline on the client's connection, so that a
// write blocked on a client that stopped reading fails and its handler
// ends.
func kicker(w http.ResponseWriter) func() {
	if rec, ok := w.(*statusRecorder); ok {
		w = rec.ResponseWriter
	}
	rc := http.NewResponseController(w)
	return func() { _ = rc.SetWriteDeadline(time.Now().Add(2 * time.Second)) }
}
