package signals

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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

// states is a KV bucket with a read-through cache. Writes compare the
// revision they read, so another hub replica's write is never lost: the
// conflict fails the delivery, which is retried from fresh state.
type states struct {
	kv jetstream.KeyValue
	mu sync.Mutex
	c  map[string]cached
}

const maxCached = 10_000

// cached holds the decoded state (fpState or groupState by value), so a
// hit costs no decoding, or the stored bytes of any other value.
type cached struct {
	val any
	rev uint64
}

func newStates(ctx context.Context, js jetstream.JetStream) (*states, error) {
	kv, err := js.KeyValue(ctx, natsjs.SignalsBucket)
	if err != nil {
		return nil, fmt.Errorf("signals bucket: %w", err)
	}
	return &states{kv: kv, c: map[string]cached{}}, nil
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

func (s *states) put(ctx context.Context, key string, rev uint64, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var next uint64
	if rev == 0 {
		next, err = s.kv.Create(ctx, key, b)
	} else {
		next, err = s.kv.Update(ctx, key, b, rev)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		delete(s.c, key) // another writer: read afresh on the retry
		return fmt.Errorf("%w: state %s: %v", natsjs.ErrUnavailable, key, err)
	}
	// Bounded: a storm of distinct fingerprints must not grow the heap
	// per alert; an evicted state is read again from the bucket.
	if len(s.c) >= maxCached {
		clear(s.c)
	}
	var val any = b
	switch v := v.(type) {
	case *fpState:
		val = *v
	case *groupState:
		val = *v
	}
	s.c[key] = cached{val: val, rev: next}
	return nil
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
