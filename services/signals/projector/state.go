package projector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"runtime"
	"sync"
	"time"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/readmodel"
	"github.com/hikeshi/hikeshi/services/signals/tickets"
	"github.com/nats-io/nats.go/jetstream"
)

// groupState is kept per group key: the incident open for it (or last
// open: a closed one is noticed when the next signal comes), how many
// signals it counted, and how many of its fingerprints fire.
type groupState struct {
	Incident string `json:"incident,omitempty"`
	Gen      int    `json:"gen"` // incidents declared for the group so far
	Count    int    `json:"count"`
	Firing   int    `json:"firing"`
	// Severity is the worst the incident's signals asked for (SEV1…SEV5):
	// a signal asking for worse raises the incident's.
	Severity string `json:"severity,omitempty"`
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
	// Start is the start of the episode Status belongs to: with Status,
	// what tells a repeated signal from a new one.
	Start time.Time `json:"start,omitzero"`
	// Rate window.
	WindowStart int64 `json:"window_start,omitempty"`
	WindowCount int   `json:"window_count,omitempty"`
	Suppressed  int   `json:"suppressed,omitempty"`
	// Alert ticket (its fields are stored inline).
	tickets.State
	// Triage is set once the escalation's triage item exists.
	Triage string `json:"triage,omitempty"`
	Seq    uint64 `json:"seq"`
}

// states keeps the projector's group and fingerprint states in a SQLite
// file in the data dir, read through a bounded cache, and writes what a
// batch changed in one transaction with the batch's last sequence. On disk
// rather than in a KV bucket: there, each of a storm's distinct
// fingerprints would add a key to the bus's subject index (memory) and
// cost a JetStream write. The signals bucket keeps the triage items, which
// other processes read.
type states struct {
	kv jetstream.KeyValue
	db readmodel.State
	mu sync.Mutex
	// c holds decoded states (fpState or groupState by value), bounded.
	c map[string]any
	// dirty are the keys put since the last flush; they are never evicted.
	dirty map[string]bool
	// known holds every key the store may have: a key it lacks is new and
	// is not looked up, so a storm of new fingerprints costs no read each.
	// Fixed size whatever the key count.
	known *bloom
	// cp is the last signal (stream sequence) whose changes are committed.
	cp uint64
	// log holds the decisions since the last flush, committed with it;
	// retain bounds the decisions log (see decisions.go).
	log    []readmodel.Decision
	retain DecisionsConfig
}

const maxCached = 10_000

// StateFile is the projector's state database, in the data dir.
const StateFile = "signals.db"

func newStates(ctx context.Context, js jetstream.JetStream) (*states, error) {
	kv, err := js.KeyValue(ctx, natsjs.SignalsBucket)
	if err != nil {
		return nil, fmt.Errorf("signals bucket: %w", err)
	}
	return &states{kv: kv, c: map[string]any{}, dirty: map[string]bool{}}, nil
}

// open opens the state database (in PostgreSQL at url, else in SQLite at
// path) and lists its keys into known.
func (s *states) open(ctx context.Context, url, path string) error {
	db, err := readmodel.OpenState(ctx, url, path)
	if err != nil {
		return err
	}
	cp, err := db.Checkpoint(ctx)
	if err != nil {
		db.Close()
		return fmt.Errorf("signal states: %w", err)
	}
	b := newBloom()
	if err := db.Keys(ctx, b.add); err != nil {
		db.Close()
		return fmt.Errorf("signal states: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.db, s.cp, s.known = db, cp, b
	return nil
}

func (s *states) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db == nil {
		return nil
	}
	err := s.db.Close()
	s.db = nil
	return err
}

// checkpoint is the last signal whose changes are committed.
func (s *states) checkpoint() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cp
}

// get reads the state of key into v (*fpState or *groupState); a key never
// written leaves v zero.
func (s *states) get(ctx context.Context, key string, v any) error {
	s.mu.Lock()
	c, ok := s.c[key]
	db, fresh := s.db, s.known != nil && !s.known.has(key)
	s.mu.Unlock()
	if !ok {
		if fresh {
			return nil
		}
		if db == nil {
			return fmt.Errorf("signal states are not open")
		}
		b, found, err := db.Get(ctx, key)
		if err != nil || !found {
			return err
		}
		return json.Unmarshal(b, v)
	}
	switch val := c.(type) {
	case fpState:
		if p, ok := v.(*fpState); ok {
			*p = val
			return nil
		}
	case groupState:
		if p, ok := v.(*groupState); ok {
			*p = val
			return nil
		}
	}
	return fmt.Errorf("state %s holds %T, not %T", key, c, v)
}

// put records v as the state of key until flush.
func (s *states) put(key string, v any) error {
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
	// per alert; an evicted state is read again from the store.
	if len(s.c) >= maxCached {
		for k := range s.c {
			if !s.dirty[k] {
				delete(s.c, k)
			}
		}
	}
	s.c[key] = val
	s.dirty[key] = true
	return nil
}

// flush commits the changed states with seq, the batch's last signal; on
// an error nothing is written and the changes are forgotten, so the batch
// is handled again from the committed states.
func (s *states) flush(ctx context.Context, seq uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db == nil {
		return fmt.Errorf("signal states are not open")
	}
	vals := make(map[string][]byte, len(s.dirty))
	for key := range s.dirty {
		b, err := json.Marshal(s.c[key])
		if err != nil {
			s.discardLocked()
			return err
		}
		vals[key] = b
		if len(vals)%64 == 0 {
			runtime.Gosched() // as the projector does between signals
		}
	}
	log := &readmodel.Log{Decisions: s.log, Keep: uint64(s.retain.Keep), MaxAge: s.retain.MaxAge, Now: time.Now()}
	if err := s.db.CommitLog(ctx, vals, log, seq); err != nil {
		s.discardLocked()
		return err
	}
	for key := range s.dirty {
		s.known.add(key)
	}
	clear(s.dirty)
	s.log = s.log[:0]
	s.cp = seq
	return nil
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
	s.log = s.log[:0]
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
