package signals

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"sync"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/events"
	"github.com/nats-io/nats.go/jetstream"
)

// groupState is kept per group key: the incident open for it, how many
// signals it counted, and how many of its fingerprints fire.
type groupState struct {
	Incident string `json:"incident,omitempty"`
	Gen      int    `json:"gen"` // incidents declared for the group so far
	Count    int    `json:"count"`
	Firing   int    `json:"firing"`
	// Seq is the last signal (stream sequence) counted: a redelivery of
	// it, after the state was written but before the ack, counts nothing.
	Seq uint64 `json:"seq"`
}

// fpState is kept per fingerprint, where something reads it (see
// projector.handle). Occurrences counts what was written: every
// occurrence under a ticket route or a rate limit, only status changes
// under the incident route, where the group counts occurrences.
type fpState struct {
	Status      string `json:"status,omitempty"`
	Occurrences int    `json:"occurrences"`
	FirstSeen   string `json:"first_seen,omitempty"`
	// Rate window.
	WindowStart int64 `json:"window_start,omitempty"`
	WindowCount int   `json:"window_count,omitempty"`
	Suppressed  int   `json:"suppressed,omitempty"`
	// Alert ticket.
	Ticket     int    `json:"ticket,omitempty"`     // GitHub issue number
	TicketRef  string `json:"ticket_ref,omitempty"` // JIRA issue key
	TicketOpen bool   `json:"ticket_open,omitempty"`
	// Triage is set once the escalation's triage item exists.
	Triage string `json:"triage,omitempty"`
	Seq    uint64 `json:"seq"`
}

// states is a KV bucket with a cache owned by the projector. put records
// a state in the cache; flush writes every state changed since the last
// flush, comparing the revision it was read at, so another writer's change
// is never overwritten: the conflict fails the batch, which is handled
// again from fresh state.
type states struct {
	js jetstream.JetStream
	kv jetstream.KeyValue
	mu sync.Mutex
	c  map[string]cached
	// dirty are the keys put since the last flush; they are never evicted.
	dirty map[string]bool
	// known, once loaded, holds every group and fingerprint key the bucket
	// may have: a key it lacks is new, and is not looked up. A storm of new
	// fingerprints costs no read each. Fixed size whatever the key count.
	known *bloom
}

const maxCached = 10_000

// cached holds the decoded state (fpState or groupState by value), so a
// hit costs no decoding, or the stored bytes of any other value. rev is
// the revision in the bucket, which a dirty value has not reached yet.
type cached struct {
	val any
	rev uint64
}

func newStates(ctx context.Context, js jetstream.JetStream) (*states, error) {
	kv, err := js.KeyValue(ctx, natsjs.SignalsBucket)
	if err != nil {
		return nil, fmt.Errorf("signals bucket: %w", err)
	}
	return &states{js: js, kv: kv, c: map[string]cached{}, dirty: map[string]bool{}}, nil
}

// own reports whether key is a group or fingerprint state, which only
// flush writes.
func own(key string) bool { return strings.HasPrefix(key, "group.") || strings.HasPrefix(key, "fp.") }

func (s *states) new(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.known != nil && own(key) && !s.known.has(key)
}

// load lists the bucket's group and fingerprint keys into known.
func (s *states) load(ctx context.Context) error {
	keys, err := s.kv.ListKeysFiltered(ctx, "group.>", "fp.>")
	if err != nil {
		return fmt.Errorf("%w: list states: %v", natsjs.ErrUnavailable, err)
	}
	defer keys.Stop()
	b := newBloom()
	for k := range keys.Keys() {
		b.add(k)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.dirty { // put before the listing
		b.add(k)
	}
	s.known = b
	return nil
}

func (s *states) get(ctx context.Context, key string, v any) (uint64, error) {
	s.mu.Lock()
	c, ok := s.c[key]
	s.mu.Unlock()
	if !ok {
		if s.new(key) {
			return 0, nil
		}
		e, err := s.kv.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			return 0, nil
		case err != nil:
			return 0, fmt.Errorf("%w: state %s: %v", natsjs.ErrUnavailable, key, err)
		}
		c = cached{val: e.Value(), rev: e.Revision()}
	}
	switch val := c.val.(type) {
	case fpState:
		if p, ok := v.(*fpState); ok {
			*p = val
			return c.rev, nil
		}
	case groupState:
		if p, ok := v.(*groupState); ok {
			*p = val
			return c.rev, nil
		}
	case []byte:
		return c.rev, json.Unmarshal(val, v)
	}
	return 0, fmt.Errorf("state %s holds %T, not %T", key, c.val, v)
}

// put records v as the state of key, read at revision rev, until flush.
func (s *states) put(_ context.Context, key string, rev uint64, v any) error {
	var val any
	switch v := v.(type) {
	case *fpState:
		val = *v
	case *groupState:
		val = *v
	default:
		return fmt.Errorf("state %s: %T is not a state", key, v)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// Bounded: a storm of distinct fingerprints must not grow the heap
	// per alert; an evicted state is read again from the bucket.
	if len(s.c) >= maxCached {
		for k := range s.c {
			if !s.dirty[k] {
				delete(s.c, k)
			}
		}
	}
	s.c[key] = cached{val: val, rev: rev}
	s.dirty[key] = true
	return nil
}

// flush writes the changed states: groups first, then fingerprints. A
// group's count is idempotent only while its fingerprints' states lag
// it: a crash between the two writes redelivers signals whose groups skip
// them and whose fingerprints catch up. Each set of writes is pipelined:
// a KV update is a publish to the bucket's stream expecting the key's
// last revision, so they go out together and their acks are awaited once.
func (s *states) flush(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, prefix := range []string{"group.", "fp."} {
		if err := s.write(ctx, prefix); err != nil {
			s.discardLocked()
			return err
		}
	}
	return nil
}

func (s *states) write(ctx context.Context, prefix string) error {
	type pending struct {
		key string
		ack jetstream.PubAckFuture
	}
	var sent []pending
	for key := range s.dirty {
		if !strings.HasPrefix(key, prefix) {
			continue
		}
		c := s.c[key]
		b, err := json.Marshal(c.val)
		if err != nil {
			return err
		}
		if s.known != nil {
			// Before the write: should it conflict, the retry reads the key.
			s.known.add(key)
		}
		f, err := s.js.PublishAsync("$KV."+natsjs.SignalsBucket+"."+key, b, jetstream.WithExpectLastSequencePerSubject(c.rev))
		if err != nil {
			return fmt.Errorf("%w: state %s: %v", natsjs.ErrUnavailable, key, err)
		}
		sent = append(sent, pending{key, f})
	}
	var failed error
	for _, p := range sent {
		var next uint64
		select {
		case a := <-p.ack.Ok():
			next = a.Sequence
		case err := <-p.ack.Err():
			c := s.c[p.key]
			if c.rev != 0 {
				failed = fmt.Errorf("%w: state %s: %v", natsjs.ErrUnavailable, p.key, err)
				continue
			}
			// A key deleted by hand keeps a marker that a create expecting
			// no message refuses; Create writes over the marker.
			b, _ := json.Marshal(c.val)
			if next, err = s.kv.Create(ctx, p.key, b); err != nil {
				failed = fmt.Errorf("%w: state %s: %v", natsjs.ErrUnavailable, p.key, err)
				continue
			}
		case <-ctx.Done():
			return ctx.Err()
		}
		s.c[p.key] = cached{val: s.c[p.key].val, rev: next}
		delete(s.dirty, p.key)
	}
	return failed
}

// discard forgets the changes not written, so that they are read afresh.
func (s *states) discard() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.discardLocked()
}

func (s *states) discardLocked() {
	for key := range s.dirty {
		delete(s.c, key)
	}
	clear(s.dirty)
}

// triageItem is an escalation waiting for the security team to accept
// (declare) or dismiss it, under triage.<key> in the signals bucket.
type triageItem struct {
	Status         string              `json:"status"` // open
	Title          string              `json:"title"`
	ReportedBy     string              `json:"reported_by"`
	ReportedAt     string              `json:"reported_at"`
	CustomerImpact string              `json:"customer_impact,omitempty"`
	Service        string              `json:"service,omitempty"`
	Severity       string              `json:"severity"`
	Source         string              `json:"source"`
	Fingerprint    string              `json:"fingerprint"`
	Links          []events.SignalLink `json:"links,omitempty"`
	Priority       string              `json:"priority,omitempty"`
	Annotations    map[string]string   `json:"annotations,omitempty"`
	Flagged        string              `json:"flagged,omitempty"`
}

// openTriage records the item unless it exists (a redelivery).
func (s *states) openTriage(ctx context.Context, key string, it triageItem) error {
	b, err := json.Marshal(it)
	if err != nil {
		return err
	}
	if _, err := s.kv.Create(ctx, key, b); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
		return fmt.Errorf("%w: triage %s: %v", natsjs.ErrUnavailable, key, err)
	}
	return nil
}

// bloom is a Bloom filter of 2^23 bits (1 MiB): about 2% false positives
// (a needless read) at a million keys, never a false negative.
type bloom struct{ bits []uint64 }

const bloomBits = 1 << 23

func newBloom() *bloom { return &bloom{bits: make([]uint64, bloomBits/64)} }

// probes are 4 positions by double hashing of FNV-1a.
func probes(key string) (h1, h2 uint32) {
	h := fnv.New64a()
	h.Write([]byte(key))
	v := h.Sum64()
	return uint32(v), uint32(v>>32) | 1
}

func (b *bloom) add(key string) {
	h1, h2 := probes(key)
	for i := range uint32(4) {
		p := (h1 + i*h2) % bloomBits
		b.bits[p/64] |= 1 << (p % 64)
	}
}

func (b *bloom) has(key string) bool {
	h1, h2 := probes(key)
	for i := range uint32(4) {
		p := (h1 + i*h2) % bloomBits
		if b.bits[p/64]&(1<<(p%64)) == 0 {
			return false
		}
	}
	return true
}
