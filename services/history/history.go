// Package history answers what an incident looked like at a past moment:
// the fold of the prefix of its events recorded up to a time or a stream
// sequence. Folding a long incident from its first event on every read
// would cost in proportion to its length, so each incident read keeps its
// events and a folded state every K events in a bounded cache; a read
// folds forward from the nearest such mark, at most K events.
package history

import (
	"container/list"
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/incident"
)

// Point is a moment of an incident's life: a time (every event recorded
// at or before it); or, when Seq is set, a stream sequence (every event
// stored at or before it); or, when Events is set, the first Events
// events.
type Point struct {
	Time   time.Time
	Seq    uint64
	Events int
}

func (p Point) String() string {
	switch {
	case p.Seq != 0:
		return fmt.Sprintf("stream sequence %d", p.Seq)
	case p.Events != 0:
		return fmt.Sprintf("event %d", p.Events)
	}
	return p.Time.UTC().Format(time.RFC3339Nano)
}

// BeforeDeclared is the answer for a point before the incident existed.
type BeforeDeclared struct {
	At         Point
	DeclaredAt time.Time
	Seq        uint64 // of the declaration
}

func (e *BeforeDeclared) Error() string {
	return fmt.Sprintf("the incident did not exist at %s: it was declared at %s (stream sequence %d)",
		e.At, e.DeclaredAt.UTC().Format(time.RFC3339), e.Seq)
}

// Defaults of a Cache.
const (
	DefaultEvery     = 64
	DefaultMaxEvents = 50_000
)

// Cache folds incidents' past states. Safe for concurrent use.
type Cache struct {
	store     *natsjs.Store
	every     int
	maxEvents int

	mu   sync.Mutex
	m    map[string]*list.Element // of *folded
	lru  *list.List               // front: most recently used
	held int                      // events held by every entry
}

// New returns a cache over the event store that keeps a folded state
// every `every` events and at most maxEvents events in all (the least
// recently read incidents leave first); zero values take the defaults.
func New(store *natsjs.Store, every, maxEvents int) *Cache {
	if every <= 0 {
		every = DefaultEvery
	}
	if maxEvents <= 0 {
		maxEvents = DefaultMaxEvents
	}
	return &Cache{store: store, every: every, maxEvents: maxEvents, m: map[string]*list.Element{}, lru: list.New()}
}

// folded is one incident's events, in stream order, and its marks.
type folded struct {
	id  string
	mu  sync.Mutex
	evs []events.Stored
	// reach[i] is the latest time among evs[:i+1], so that "recorded at or
	// before T" is a prefix even if a clock stepped back.
	reach []time.Time
	// marks[i] is the state after the first (i+1)*every events.
	marks []incident.State
	// head folds every event so far; the next mark is taken from it.
	head incident.State
	// counted is how many of evs the cache's total holds (under Cache.mu).
	counted int
}

// At returns the incident as it stood at p. An incident with no event up
// to p answers *BeforeDeclared; one that does not exist, incident.ErrNotFound.
func (c *Cache) At(ctx context.Context, id string, p Point) (incident.State, error) {
	f := c.entry(id)
	f.mu.Lock()
	defer f.mu.Unlock()
	added, err := c.update(ctx, f)
	c.account(f, added)
	if err != nil {
		return incident.State{}, err
	}
	if len(f.evs) == 0 {
		c.forget(f)
		return incident.State{}, incident.ErrNotFound
	}
	n := f.prefix(p)
	if n == 0 {
		return incident.State{}, &BeforeDeclared{At: p, DeclaredAt: f.evs[0].Time, Seq: f.evs[0].Seq}
	}
	return f.fold(c.every, n)
}

// prefix is how many of the events are at or before p.
func (f *folded) prefix(p Point) int {
	if p.Events != 0 {
		return max(min(p.Events, len(f.evs)), 0)
	}
	if p.Seq != 0 {
		return sort.Search(len(f.evs), func(i int) bool { return f.evs[i].Seq > p.Seq })
	}
	return sort.Search(len(f.reach), func(i int) bool { return f.reach[i].After(p.Time) })
}

// fold returns the state after the first n events, from the nearest mark.
func (f *folded) fold(every, n int) (incident.State, error) {
	var st incident.State
	start := 0
	if k := n / every; k > 0 {
		st = f.marks[k-1].View()
		start = k * every
	}
	st.ForgetEventIDs()
	for _, e := range f.evs[start:n] {
		if err := st.Apply(e.Envelope, e.Seq); err != nil {
			return incident.State{}, fmt.Errorf("incident %s seq %d: %w", f.id, e.Seq, err)
		}
	}
	return st.View(), nil
}

// update reads the events stored since the last read and folds them into
// the head, taking a mark every K events. It reports how many it added.
func (c *Cache) update(ctx context.Context, f *folded) (int, error) {
	last, err := c.store.LastSeq(ctx, f.id)
	if err != nil {
		return 0, err
	}
	var after uint64
	if n := len(f.evs); n > 0 {
		after = f.evs[n-1].Seq
	}
	if last <= after {
		return 0, nil
	}
	if len(f.evs) == 0 {
		f.head.ForgetEventIDs()
	}
	added := 0
	add := func(e events.Stored) error {
		if err := f.head.Apply(e.Envelope, e.Seq); err != nil {
			return fmt.Errorf("incident %s seq %d: %w", f.id, e.Seq, err)
		}
		reach := e.Time
		if n := len(f.reach); n > 0 && f.reach[n-1].After(reach) {
			reach = f.reach[n-1]
		}
		f.evs, f.reach = append(f.evs, e), append(f.reach, reach)
		if len(f.evs)%c.every == 0 {
			f.marks = append(f.marks, f.head.View())
		}
		added++
		return nil
	}
	// A few new events are cheapest one direct get each; many, through
	// one consumer.
	if last-after <= uint64(c.every) {
		return added, c.store.Tail(ctx, f.id, after, last, add)
	}
	evs, err := c.store.Load(ctx, f.id, after)
	if err != nil {
		return 0, err
	}
	for _, e := range evs {
		if err := add(e); err != nil {
			return added, err
		}
	}
	return added, nil
}

func (c *Cache) entry(id string) *folded {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.m[id]; ok {
		c.lru.MoveToFront(el)
		return el.Value.(*folded)
	}
	f := &folded{id: id}
	c.m[id] = c.lru.PushFront(f)
	return f
}

// account adds an entry's new events to the total and evicts the least
// recently read incidents beyond the bound (never the one just read).
func (c *Cache) account(f *folded, added int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.held += added
	f.counted += added
	for c.held > c.maxEvents && c.lru.Len() > 1 {
		back := c.lru.Back()
		old := back.Value.(*folded)
		if old == f {
			break
		}
		c.lru.Remove(back)
		delete(c.m, old.id)
		// Its events leave with it; a read holding it finishes on it.
		c.held -= old.counted
	}
}

func (c *Cache) forget(f *folded) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.m[f.id]; ok && el.Value == f {
		c.lru.Remove(el)
		delete(c.m, f.id)
		c.held -= f.counted
	}
}

// Size reports how many incidents and events the cache holds.
func (c *Cache) Size() (incidents, events int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len(), c.held
}
