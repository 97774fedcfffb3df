package signals

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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

// fpState is kept per fingerprint.
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
	kv jetstream.KeyValue
	mu sync.Mutex
	c  map[string]cached
	// dirty are the keys put since the last flush; they are never evicted.
	dirty map[string]bool
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
	return &states{kv: kv, c: map[string]cached{}, dirty: map[string]bool{}}, nil
}

func (s *states) get(ctx context.Context, key string, v any) (uint64, error) {
	s.mu.Lock()
	c, ok := s.c[key]
	s.mu.Unlock()
	if !ok {
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
// them and whose fingerprints catch up.
func (s *states) flush(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, prefix := range []string{"group.", "fp."} {
		for key := range s.dirty {
			if !strings.HasPrefix(key, prefix) {
				continue
			}
			c := s.c[key]
			b, err := json.Marshal(c.val)
			if err != nil {
				return err
			}
			var next uint64
			if c.rev == 0 {
				next, err = s.kv.Create(ctx, key, b)
			} else {
				next, err = s.kv.Update(ctx, key, b, c.rev)
			}
			if err != nil {
				s.discardLocked()
				return fmt.Errorf("%w: state %s: %v", natsjs.ErrUnavailable, key, err)
			}
			s.c[key] = cached{val: c.val, rev: next}
			delete(s.dirty, key)
		}
	}
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
