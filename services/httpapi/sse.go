package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/access"
	"github.com/hikeshi/hikeshi/services/sse"
)

// Live fan-out of GET /api/v1/events: the process follows the incident
// stream with one subscription (Live) and keeps the last liveRing events,
// each encoded once, in a ring that every client reads at its own pace. A
// new event costs the same with one client or thousands: it is put in the
// ring and the clients parked waiting for it are woken. A client that falls
// a whole ring behind is dropped with an end-of-stream event saying where to
// resume; the others never wait for it. Streams are served off net/http's
// connection handling (package sse): a parked client holds no goroutine.

// liveRing is how many events a client may be behind before it is
// dropped.
const liveRing = 4096

// liveLinger is the pause after each write to a client: what arrives
// meanwhile goes out in the next write, so that a busy stream costs the hub
// twenty writes a second per client rather than one per event.
const liveLinger = 50 * time.Millisecond

// frame is one event as an SSE message.
type frame struct {
	seq      uint64
	incident string
	data     []byte
	// acc is who may read a confidential incident's events; nil: the
	// incident is not confidential.
	acc *access.Incident
}

// subscriber is one client's place in the ring.
type subscriber struct {
	next uint64 // ring position of the next frame to write
	// incident, when set, is the only incident the client follows (a live
	// timeline); unread counts its events since the client's last read.
	incident string
	unread   int
	// kick unblocks a write stuck on a client that stopped reading.
	kick    func()
	dropped string
	// wake has the client read again; parked: it waits to be woken at the
	// next event it follows (or its drop).
	wake   func()
	parked bool
	// who is the client; nil: unrestricted (tests of the ring only).
	who *access.Identity
}

// sees reports whether the client may read f (need-to-know).
func (s *subscriber) sees(f *frame) bool {
	return s.who == nil || f.acc == nil || access.Can(*s.who, access.Read, f.acc)
}

// broadcaster hands the events of its one stream subscription to every
// subscriber.
type broadcaster struct {
	store *natsjs.Store
	ready chan struct{} // closed once pos is set

	mu   sync.Mutex
	pos  uint64 // last sequence handed out
	ring [liveRing]*frame
	head uint64 // ring positions written so far
	subs map[*subscriber]struct{}
	// Clients of one incident: a quiet incident's clients are not woken by
	// the others' events.
	byIncident map[string]map[*subscriber]struct{}
	firehose   int           // clients of every incident
	parked     []*subscriber // clients of every incident waiting for the next event
	done       bool
	streams    sync.WaitGroup // clients whose stream has not ended

	// lookup finds who may read an incident the broadcaster has not seen
	// declared; nil: none is confidential (tests of the ring only).
	lookup func(ctx context.Context, incident string) (*access.Incident, error)
	accMu  sync.Mutex
	acc    map[string]*access.Incident // incident → its need-to-know
}

func newBroadcaster(store *natsjs.Store) *broadcaster {
	return &broadcaster{store: store, ready: make(chan struct{}), subs: map[*subscriber]struct{}{},
		byIncident: map[string]map[*subscriber]struct{}{}, acc: map[string]*access.Incident{}}
}

// maxAccessCache bounds the need-to-know remembered per incident; past it
// the cache starts again (and looks incidents up anew).
const maxAccessCache = 10_000

// access returns who may read e's incident now, from the live events
// seen (declarations, commander changes) or else looked up once. Events
// read to catch a client up (live false) are history: they change nothing.
func (b *broadcaster) access(ctx context.Context, e events.Stored, live bool) (*access.Incident, error) {
	id, ok := events.IncidentID(e.Subject)
	if !ok {
		return nil, nil
	}
	b.accMu.Lock()
	defer b.accMu.Unlock()
	if live {
		if acc, ok, err := b.track(id, e); err != nil || ok {
			return visibleAcc(acc), err
		}
	}
	if acc, ok := b.acc[id]; ok {
		return visibleAcc(acc), nil
	}
	if b.lookup == nil {
		return nil, nil
	}
	acc, err := b.lookup(ctx, id)
	if err != nil {
		return nil, err
	}
	b.acc[id] = acc
	return visibleAcc(acc), nil
}

// track keeps the need-to-know of the incidents seen up to date with a
// live event that changes it (declared, commander assigned, channel
// members); ok reports such an event. b.accMu is held.
func (b *broadcaster) track(id string, e events.Stored) (acc *access.Incident, ok bool, err error) {
	if len(b.acc) >= maxAccessCache {
		clear(b.acc)
	}
	switch e.Type {
	case events.TypeDeclared:
		var d events.Declared
		if err := json.Unmarshal(e.Data, &d); err != nil {
			return nil, true, err
		}
		acc := &access.Incident{Confidential: d.Confidential, DeclaredBy: d.DeclaredBy, DeclaredByIdentity: d.DeclaredByIdentity}
		b.acc[id] = acc
		return acc, true, nil
	case events.TypeCommanderAssigned:
		if acc, ok := b.acc[id]; ok {
			var d events.CommanderAssigned
			if err := json.Unmarshal(e.Data, &d); err != nil {
				return nil, true, err
			}
			next := *acc // frames already out keep the old one
			next.Commander, next.CommanderIdentity = d.User, d.UserIdentity
			b.acc[id] = &next
			return &next, true, nil
		}
	case events.TypeSlackMembersChanged:
		if acc, ok := b.acc[id]; ok {
			var d events.MembersChanged
			if err := json.Unmarshal(e.Data, &d); err != nil {
				return nil, true, err
			}
			next := acc.WithMembersChanged(&d)
			b.acc[id] = &next
			return &next, true, nil
		}
	}
	return nil, false, nil
}

// visibleAcc is nil for an incident any viewer may read.
func visibleAcc(acc *access.Incident) *access.Incident {
	if acc == nil || !acc.Confidential {
		return nil
	}
	return acc
}

// run follows the stream from its end until ctx ends, resuming after a
// bus failure where it stopped; then it ends every client's stream.
func (b *broadcaster) run(ctx context.Context) error {
	defer b.closeAll("the hub is stopping; reconnect with ?after= to resume", 5*time.Second)
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

// publish puts one event in the ring and wakes the clients waiting for it.
// An event no client follows is neither encoded nor checked for
// need-to-know (which may read the incident): it takes its place in the
// ring as a blank no client reads.
func (b *broadcaster) publish(e events.Stored) error {
	id, _ := events.IncidentID(e.Subject)
	f := &frame{seq: e.Seq, incident: id}
	tracked := false // the need-to-know has taken e in already
	for want := b.wanted(id); ; {
		if want {
			var err error
			if f, err = b.frame(context.Background(), e, !tracked); err != nil {
				return err
			}
		} else {
			if err := b.trackOnly(id, e); err != nil {
				return err
			}
			tracked = true
		}
		b.mu.Lock()
		if f.data == nil && b.wantedLocked(id) { // a client came meanwhile
			b.mu.Unlock()
			want = true
			continue
		}
		break
	}
	defer b.mu.Unlock()
	if e.Seq <= b.pos {
		return nil
	}
	b.pos = e.Seq
	b.ring[b.head%liveRing] = f
	b.head++
	for _, s := range b.parked {
		s.parked = false
		s.wake()
	}
	clear(b.parked)
	b.parked = b.parked[:0]
	for s := range b.byIncident[f.incident] {
		s.unread++
		if s.parked {
			s.parked = false
			s.wake()
		}
	}
	// A client far behind is dropped; checking once per quarter ring keeps
	// the cost per event independent of the clients. A client of a quiet
	// incident is behind only on events it does not want.
	if b.head%(liveRing/4) == 0 {
		for s := range b.subs {
			switch {
			case b.head-s.next <= liveRing-liveRing/4:
			case s.incident != "" && s.unread == 0:
				s.next = b.head
			default:
				b.drop(s, "too slow: "+strconv.Itoa(int(b.head-s.next))+" events behind")
			}
		}
	}
	return nil
}

// wanted reports whether a client follows every incident or this one.
func (b *broadcaster) wanted(incident string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.wantedLocked(incident)
}

// wantedLocked is wanted with b.mu held.
func (b *broadcaster) wantedLocked(incident string) bool {
	return b.firehose > 0 || len(b.byIncident[incident]) > 0
}

// trackOnly keeps the need-to-know current with an event no client reads.
func (b *broadcaster) trackOnly(incident string, e events.Stored) error {
	if incident == "" {
		return nil
	}
	b.accMu.Lock()
	defer b.accMu.Unlock()
	_, _, err := b.track(incident, e)
	return err
}

// read returns the frames s has not had yet (appended to buf) that the
// ring still holds; reason is set once s is dropped, and is its last read.
func (b *broadcaster) read(s *subscriber, buf []*frame) (frames []*frame, reason string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.head-s.next > liveRing {
		if s.dropped == "" {
			b.drop(s, "too slow: more than "+strconv.Itoa(liveRing)+" events behind")
		}
		return buf, s.dropped
	}
	for ; s.next < b.head; s.next++ {
		if f := b.ring[s.next%liveRing]; f.data != nil && (s.incident == "" || f.incident == s.incident) && s.sees(f) {
			buf = append(buf, f)
		}
	}
	s.unread = 0
	return buf, s.dropped
}

// park has s woken (s.wake) at the next event it follows, or at its drop,
// if it has read everything; otherwise it reports false and s reads again.
func (b *broadcaster) park(s *subscriber) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if s.next != b.head || s.dropped != "" {
		return false
	}
	if _, ok := b.subs[s]; ok && !s.parked {
		s.parked = true
		if s.incident == "" {
			b.parked = append(b.parked, s)
		}
	}
	return true
}

// drop ends a subscriber's stream; b.mu is held.
func (b *broadcaster) drop(s *subscriber, reason string) {
	b.remove(s)
	s.dropped = reason
	if s.kick != nil {
		s.kick()
	}
	if s.wake != nil {
		s.wake()
	}
}

// closeAll drops every client with reason and waits, at most wait, for
// their streams to end.
func (b *broadcaster) closeAll(reason string, wait time.Duration) {
	b.mu.Lock()
	b.done = true
	for s := range b.subs {
		b.drop(s, reason)
	}
	b.mu.Unlock()
	ended := make(chan struct{})
	go func() { b.streams.Wait(); close(ended) }()
	select {
	case <-ended:
	case <-time.After(wait):
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
	s.next = b.head
	b.subs[s] = struct{}{}
	if s.incident == "" {
		b.firehose++
	} else {
		set := b.byIncident[s.incident]
		if set == nil {
			set = map[*subscriber]struct{}{}
			b.byIncident[s.incident] = set
		}
		set[s] = struct{}{}
	}
	return 0, true
}

func (b *broadcaster) unsubscribe(s *subscriber) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.remove(s)
}

// remove forgets s; b.mu is held.
func (b *broadcaster) remove(s *subscriber) {
	if _, ok := b.subs[s]; !ok {
		return
	}
	delete(b.subs, s)
	if s.incident == "" {
		b.firehose--
		if s.parked {
			b.parked = slices.DeleteFunc(b.parked, func(p *subscriber) bool { return p == s })
		}
	}
	s.parked = false
	if set := b.byIncident[s.incident]; set != nil {
		delete(set, s)
		if len(set) == 0 {
			delete(b.byIncident, s.incident)
		}
	}
}

func (b *broadcaster) subscribers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}

// frame encodes e with its incident's need-to-know; live: e is new on the
// stream (not read to catch a client up).
func (b *broadcaster) frame(ctx context.Context, e events.Stored, live bool) (*frame, error) {
	f, err := encodeFrame(e)
	if err != nil {
		return nil, err
	}
	if f.acc, err = b.access(ctx, e, live); err != nil {
		return nil, fmt.Errorf("need-to-know of incident %s: %w", f.incident, err)
	}
	return f, nil
}

func encodeFrame(e events.Stored) (*frame, error) {
	body, err := json.Marshal(e.Envelope)
	if err != nil {
		return nil, err
	}
	data := fmt.Appendf(nil, "id: %d\nevent: %s\ndata: %s\n\n", e.Seq, e.Type, body)
	id, _ := events.IncidentID(e.Subject)
	return &frame{seq: e.Seq, incident: id, data: data}, nil
}

// Live runs the fan-out of GET /api/v1/events until ctx ends, then ends
// every client's stream. The hub runs it beside the HTTP server; until it
// runs, streams wait.
func (s *Server) Live(ctx context.Context) error { return s.live.run(ctx) }

// tail streams every new event as Server-Sent Events (?after=SEQ resumes,
// ?incident=ID follows one incident).
func (s *Server) tail(w http.ResponseWriter, r *http.Request) error {
	after, err := intParam(r, "after", 0)
	if err != nil {
		return err
	}
	filter := events.IncidentSubjectPrefix + ".>"
	var incident string
	if ref := r.URL.Query().Get("incident"); ref != "" {
		if incident, err = s.d.Commands.Resolve(r.Context(), ref); err != nil {
			return err
		}
		if _, err := s.visible(r, incident, access.Read); err != nil {
			return err
		}
		filter = events.IncidentFilter(incident)
	}
	who, _ := access.From(r.Context())
	ctx := r.Context()
	select {
	case <-s.live.ready:
	case <-ctx.Done():
		return nil
	}
	c := &client{live: s.live, sent: uint64(after)}
	if after == 0 {
		// Start after the last event stored now, before the client sees
		// the stream open: an event appended once it is open is never
		// missed.
		if c.sent, err = s.d.Events.LastStreamSeq(ctx); err != nil {
			return err
		}
	}
	w.Header().Set("Cache-Control", "no-cache")
	// Each write must complete within the write timeout: a client that
	// stops reading is cut off.
	if c.out, err = sse.Open(w, r, s.timeouts.Write); err != nil {
		return nil // the client is gone
	}
	if c.out.Write([]byte(": following incident events\n\n")) != nil {
		return nil
	}
	c.worker = sse.NewWorker(c.step)
	c.sub = &subscriber{incident: incident, kick: c.out.Kick, who: &who, wake: c.worker.Wake}
	// The caller is checked again while the stream lasts: a token revoked
	// or expired, or a session signed out, ends it. The request outlives
	// its handler here, but not its cancellation.
	later := r.WithContext(context.WithoutCancel(ctx))
	c.still = func() error {
		_, err := s.d.Auth.Authenticate(later)
		return err
	}
	// Both timers start once the client follows the live feed: until then
	// only this handler writes.
	c.linger = time.AfterFunc(time.Hour, c.worker.Wake)
	c.linger.Stop()
	c.recheck = time.AfterFunc(time.Hour, func() {
		c.due.Store(true)
		c.worker.Wake()
	})
	c.recheck.Stop()
	s.live.streams.Add(1)
	// Catch up from the stream until the live feed has nothing this
	// client lacks, then follow the live feed.
	for {
		until, ok := s.live.subscribe(c.sub, c.sent)
		if ok {
			break
		}
		if until == 0 { // the hub is stopping
			c.end("")
			return nil
		}
		var pending []byte
		err := s.d.Events.Read(ctx, natsjs.ReadOptions{Filter: filter, After: c.sent, Until: until}, func(e events.Stored) error {
			f, err := s.live.frame(ctx, e, false)
			if err != nil {
				return err
			}
			if c.sub.sees(f) {
				if pending = append(pending, f.data...); len(pending) >= 32<<10 {
					err, pending = c.out.Write(pending), pending[:0]
				}
			}
			c.sent = e.Seq
			return err
		})
		if err == nil && len(pending) > 0 {
			err = c.out.Write(pending)
		}
		if err != nil {
			c.end(err.Error())
			return nil
		}
		c.sent = max(c.sent, until)
	}
	c.recheck.Reset(time.Duration(reauthEvery.Load()))
	c.worker.Wake()
	if !c.out.Wait(ctx) {
		c.worker.Wake() // the stream ended with its handler: its client ends
	}
	return nil
}

// reauthEvery is how often a live stream checks its caller again and, on
// a quiet stream, writes a comment (which is how a client that hung up is
// noticed); nanoseconds, tests shorten it.
var reauthEvery atomic.Int64

func init() { reauthEvery.Store(int64(30 * time.Second)) }

// client is one stream of the live feed. Its worker runs step when the
// client has something to do: events to write, its linger over, its
// caller to check again, its drop; in between it holds no goroutine.
type client struct {
	live    *broadcaster
	sub     *subscriber
	out     *sse.Stream
	worker  *sse.Worker
	sent    uint64 // the last sequence written
	buf     []*frame
	linger  *time.Timer // wakes the worker liveLinger after a write
	recheck *time.Timer
	due     atomic.Bool // the caller is to be checked again
	still   func() error
	ended   bool
}

// step writes what the client has not had yet, then parks it.
func (c *client) step() {
	if c.ended {
		return
	}
	if c.out.Closed() {
		c.end("")
		return
	}
	if c.due.Swap(false) {
		// Only a refusal ends the stream; a token store that did not
		// answer is asked again at the next check.
		if err := c.still(); errors.Is(err, access.ErrUnauthenticated) {
			c.end("the token or session that opened this stream is no longer valid; sign in or use a valid token, and resume with ?after=")
			return
		}
		if c.out.Write([]byte(": still here\n\n")) != nil {
			c.end("")
			return
		}
		c.recheck.Reset(time.Duration(reauthEvery.Load()))
	}
	for {
		frames, reason := c.live.read(c.sub, c.buf[:0])
		c.buf = frames
		if fresh := unsent(frames, c.sent); len(fresh) > 0 {
			if writeFrames(c.out, fresh...) != nil {
				c.end("")
				return
			}
			c.sent = fresh[len(fresh)-1].seq
			clear(c.buf) // let the ring's old frames go
			if reason == "" {
				// What arrives meanwhile goes out in the next write.
				c.linger.Reset(liveLinger)
				return
			}
		}
		if reason != "" {
			c.end(reason)
			return
		}
		if c.live.park(c.sub) {
			return
		}
	}
}

// end ends the client's stream, telling it why unless it is gone.
func (c *client) end(reason string) {
	c.ended = true
	c.live.unsubscribe(c.sub)
	c.linger.Stop()
	c.recheck.Stop()
	if reason != "" {
		sseEnd(c.out, c.sent, reason)
	}
	c.out.Close()
	c.live.streams.Done()
}

// unsent leaves out the frames the client already has.
func unsent(frames []*frame, sent uint64) []*frame {
	for i, f := range frames {
		if f.seq > sent {
			return frames[i:]
		}
	}
	return nil
}

// writeFrames writes fs in one write.
func writeFrames(out *sse.Stream, fs ...*frame) error {
	if len(fs) == 1 {
		return out.Write(fs[0].data)
	}
	var n int
	for _, f := range fs {
		n += len(f.data)
	}
	buf := make([]byte, 0, n)
	for _, f := range fs {
		buf = append(buf, f.data...)
	}
	return out.Write(buf)
}

// sseEnd tells the client its stream ends, why, and where to resume.
func sseEnd(out *sse.Stream, sent uint64, reason string) {
	b, _ := json.Marshal(map[string]any{"reason": reason, "resume_after": sent})
	_ = out.Write(fmt.Appendf(nil, "event: end\ndata: %s\n\n", b))
}
