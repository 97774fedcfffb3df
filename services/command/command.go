// Package command executes incident commands: it loads an incident (its
// last snapshot and the events after it), lets the domain core decide, and
// appends the result with optimistic concurrency, retrying when another
// writer got there first.
package command

import (
	"container/list"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/incident"
)

// ErrVersionConflict: the incident is not at the version the caller
// expected (If-Match).
var ErrVersionConflict = errors.New("incident version does not match If-Match")

// maxSnapshotRetries bounds how often a snapshot the bus did not take is
// tried again before it waits for the incident's next change (a stopped
// process's bus never takes it).
const maxSnapshotRetries = 10

// maxAttempts bounds the reload-and-retry loop under contention. Each
// attempt reloads only the events it missed.
const maxAttempts = 64

// Meta says who asks and how to make the request repeatable. It is
// incident.Meta, so that modules can name the handler's methods without
// importing this package.
type Meta = incident.Meta

// Handler runs commands. Incidents are cached, the least recently used
// leaving first; a miss loads the incident's last snapshot and the few
// events stored after it, never its whole history, so a command costs the
// same whatever the size of the stream. A cached incident is brought up to
// date only when an append says it is stale: the common path is one publish.
type Handler struct {
	store     *natsjs.Store
	snaps     *natsjs.Snapshots
	cases     *natsjs.Cases
	source    string
	onAppend  func(typ string)
	findCase  func(ctx context.Context, number string) (string, error)
	maxCached int
	unchained bool
	// snapshotDelay is how long a changed incident waits for its snapshot.
	snapshotDelay time.Duration

	mu    sync.Mutex
	cache map[string]*list.Element // of *entry
	lru   *list.List               // front: most recently used
	// unsaved holds the entries changed since their last snapshot, evicted
	// ones included, for Flush.
	unsaved map[*entry]struct{}
}

type entry struct {
	id     string
	mu     sync.Mutex
	loaded bool
	st     incident.State
	// recorded: every keyed event id at or below this sequence is in the
	// event id bucket (a loaded snapshot's sequence, or the last recording).
	recorded uint64
	// keyed holds the ids of the keyed events applied after recorded.
	keyed []string
	// snapped is the version of the last snapshot sent.
	snapped uint64
	// head is the chain hash of the last event applied ("" before the
	// first), the prevhash of the next event appended.
	head string
	// unsaved: a snapshot write is scheduled; failed counts the writes
	// that failed since the last one stored.
	unsaved bool
	failed  int
}

// snapshot is what the snapshot bucket keeps of an incident: its state and
// the hash of its last event, so that the next append needs no extra read.
type snapshot struct {
	incident.State
	Head string `json:"head,omitempty"`
}

// prevHash is what the next event of the incident chains to.
func (e *entry) prevHash() string {
	if e.st.Version == 0 {
		return events.Genesis(e.id)
	}
	return e.head
}

// CaseFallback sets how to find a case number the index does not know (an
// index write that failed after its incident was stored): the timeline.
func CaseFallback(find func(ctx context.Context, number string) (string, error)) Option {
	return func(h *Handler) { h.findCase = find }
}

// Option configures a Handler.
type Option func(*Handler)

// OnAppend is called after every stored event (metrics).
func OnAppend(f func(typ string)) Option { return func(h *Handler) { h.onAppend = f } }

// Source sets the CloudEvents source of appended events.
func Source(s string) Option { return func(h *Handler) { h.source = s } }

// WithoutHashChain appends events without prevhash, as before the chain
// existed: only for measuring what the chain costs (hikeshi-bench). A hub
// never uses it.
func WithoutHashChain() Option { return func(h *Handler) { h.unchained = true } }

// SnapshotDelay sets how long after a change an incident's snapshot is
// written (default one second); 0 writes it with the command.
func SnapshotDelay(d time.Duration) Option { return func(h *Handler) { h.snapshotDelay = max(d, 0) } }

// CacheSize sets how many incidents are kept between commands (default
// 10,000). Each costs a state without its history: about a kilobyte.
func CacheSize(n int) Option {
	return func(h *Handler) {
		if n > 0 {
			h.maxCached = n
		}
	}
}

// New returns a handler over the event store and case allocator.
func New(store *natsjs.Store, cases *natsjs.Cases, opts ...Option) *Handler {
	h := &Handler{store: store, snaps: store.Snapshots(), cases: cases, source: events.DefaultSource,
		maxCached: 10_000, snapshotDelay: time.Second,
		cache: map[string]*list.Element{}, lru: list.New(), unsaved: map[*entry]struct{}{}}
	for _, o := range opts {
		o(h)
	}
	return h
}

func (h *Handler) entry(id string) *entry {
	h.mu.Lock()
	defer h.mu.Unlock()
	if el, ok := h.cache[id]; ok {
		h.lru.MoveToFront(el)
		return el.Value.(*entry)
	}
	if h.lru.Len() >= h.maxCached {
		// A command holding the evicted entry finishes on it; a later
		// command loads the incident again from its snapshot.
		delete(h.cache, h.lru.Remove(h.lru.Back()).(*entry).id)
	}
	e := &entry{id: id}
	e.st.ForgetEventIDs()
	h.cache[id] = h.lru.PushFront(e)
	return e
}

func (h *Handler) forget(id string) {
	h.mu.Lock()
	if el, ok := h.cache[id]; ok {
		h.lru.Remove(el)
		delete(h.cache, id)
	}
	h.mu.Unlock()
}

// refresh applies the events appended since the cached version; a first
// refresh starts from the incident's snapshot.
func (h *Handler) refresh(ctx context.Context, e *entry, id string) error {
	var last uint64
	var err error
	if e.loaded {
		last, err = h.store.LastSeq(ctx, id)
	} else {
		last, err = h.loadWithLast(ctx, e, id)
	}
	if err != nil {
		return err
	}
	err = h.store.Tail(ctx, id, e.st.Version, last, func(s events.Stored) error {
		if err := e.st.Apply(s.Envelope, s.Seq); err != nil {
			return fmt.Errorf("incident %s seq %d: %w", id, s.Seq, err)
		}
		var err error
		if e.head, err = s.Envelope.Hash(); err != nil {
			return fmt.Errorf("incident %s seq %d: %w", id, s.Seq, err)
		}
		e.applied(s.ID)
		return nil
	})
	if err != nil {
		return err
	}
	e.loaded = true
	h.changed(ctx, e)
	return nil
}

// loadWithLast loads the incident's snapshot and asks for the sequence of
// its last event at the same time: two round trips to the bus that a cold
// read would otherwise wait for one after the other.
func (h *Handler) loadWithLast(ctx context.Context, e *entry, id string) (uint64, error) {
	type lastSeq struct {
		seq uint64
		err error
	}
	got := make(chan lastSeq, 1)
	go func() {
		seq, err := h.store.LastSeq(ctx, id)
		got <- lastSeq{seq, err}
	}()
	err := h.loadSnapshot(ctx, e, id)
	last := <-got
	if err != nil {
		return 0, err
	}
	return last.seq, last.err
}

// warm loads an incident a command is about to change: from its snapshot
// alone when there is one, without asking the bus for the events after it.
// The snapshot is written after every command, so it is nearly always
// current; when it is not, the append conflicts and run reloads. Without a
// snapshot the incident is read from its events.
func (h *Handler) warm(ctx context.Context, e *entry, id string) error {
	if err := h.loadSnapshot(ctx, e, id); err != nil {
		return err
	}
	e.loaded = true
	if e.st.Exists() {
		return nil
	}
	if err := h.refresh(ctx, e, id); err != nil {
		// Not loaded: the next command must not take the empty state for
		// an incident that does not exist.
		e.loaded = false
		return err
	}
	return nil
}

// loadSnapshot starts the entry from the incident's last snapshot, or from
// nothing when it has none (or an unreadable one).
func (h *Handler) loadSnapshot(ctx context.Context, e *entry, id string) error {
	raw, err := h.snaps.Get(ctx, id)
	if err != nil {
		return err
	}
	var snap snapshot
	if raw != nil {
		if err := json.Unmarshal(raw, &snap); err != nil {
			slog.Warn("incident snapshot unreadable; loading the incident from its events", "incident", id, "err", err)
			snap = snapshot{}
		}
	}
	e.st, e.head, e.keyed = snap.State, snap.Head, nil
	e.recorded, e.snapped = e.st.Version, e.st.Version
	e.st.ForgetEventIDs()
	if e.st.Version != 0 && e.head == "" {
		// A snapshot from before the chain: hash its last event once.
		last, err := h.store.EventAt(ctx, e.st.Version)
		if err != nil {
			return err
		}
		if e.head, err = last.Envelope.Hash(); err != nil {
			return err
		}
	}
	return nil
}

// applied notes an event applied to the entry's state.
func (e *entry) applied(eventID string) {
	if events.Derived(eventID) {
		e.keyed = append(e.keyed, eventID)
	}
}

// changed schedules a snapshot of an entry whose state moved, e.mu held.
// Snapshots are written behind the commands, at most one per incident per
// snapshotDelay: on a cluster every snapshot is a replicated write as dear
// as the event's, so one per command would halve the append rate of a busy
// incident. A snapshot that lags (or is lost with the process) costs the
// next cold load a few direct gets, and a command decided on it a
// conflicting append and a retry (see run); keyed event ids not yet
// recorded are read back from those events (see stored).
func (h *Handler) changed(ctx context.Context, e *entry) {
	if h.snapshotDelay == 0 {
		h.saveSnapshot(ctx, e)
		return
	}
	if e.unsaved || !e.st.Exists() || e.st.Version == e.snapped {
		return
	}
	e.unsaved = true
	h.mu.Lock()
	h.unsaved[e] = struct{}{}
	h.mu.Unlock()
	time.AfterFunc(h.snapshotDelay, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		h.flush(ctx, e)
	})
}

// flush writes the entry's scheduled snapshot, if it still is.
func (h *Handler) flush(ctx context.Context, e *entry) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.unsaved {
		return
	}
	e.unsaved = false
	h.mu.Lock()
	delete(h.unsaved, e)
	h.mu.Unlock()
	h.saveSnapshot(ctx, e)
	switch {
	case e.st.Version == e.snapped:
		e.failed = 0
	case e.failed < maxSnapshotRetries && !h.snaps.Closed(): // the bus failed: again after the delay
		e.failed++
		h.changed(ctx, e)
	}
}

// snapshotFailed says once, not at each retry, that an incident's
// snapshot was not written.
func (h *Handler) snapshotFailed(msg string, e *entry, err error) {
	if e.failed == 0 {
		slog.Warn(msg, "incident", e.id, "err", err)
	}
}

// Flush writes every scheduled snapshot now and waits for the bus to
// store them: a process stopping calls it, so that the next one loads
// every incident it changed with no event to read after the snapshot.
func (h *Handler) Flush(ctx context.Context) error {
	h.mu.Lock()
	pending := make([]*entry, 0, len(h.unsaved))
	for e := range h.unsaved {
		pending = append(pending, e)
	}
	h.mu.Unlock()
	for _, e := range pending {
		h.flush(ctx, e)
	}
	return h.snaps.Wait(ctx)
}

// saveSnapshot stores the state after a change, so that the next load of
// the incident reads no event: first the keyed ids it covers (waiting for
// the bus), then the state (not waiting). A failure costs only a longer
// load later.
func (h *Handler) saveSnapshot(ctx context.Context, e *entry) {
	id := e.id
	if !e.st.Exists() || e.st.Version == e.snapped {
		return
	}
	if len(e.keyed) > 0 {
		if err := h.snaps.RecordIDs(ctx, id, e.keyed); err != nil {
			h.snapshotFailed("keyed event ids not recorded; the incident's snapshot waits", e, err)
			return
		}
		e.keyed = nil
	}
	e.recorded = e.st.Version
	raw, err := json.Marshal(snapshot{State: e.st.View(), Head: e.head})
	if err == nil {
		err = h.snaps.Put(id, raw)
	}
	if err != nil {
		h.snapshotFailed("incident snapshot not stored; the next load reads more events", e, err)
		return
	}
	e.snapped = e.st.Version
}

// stored reports whether the keyed event eventID is already on the
// incident: among the ids applied since the snapshot, or in the bucket for
// those the snapshot covers.
func (h *Handler) stored(ctx context.Context, e *entry, eventID string) (bool, error) {
	if eventID == "" || !e.st.Exists() {
		return false, nil
	}
	if slices.Contains(e.keyed, eventID) {
		return true, nil
	}
	if e.recorded == 0 { // the entry applied every event itself
		return false, nil
	}
	return h.snaps.Recorded(ctx, eventID)
}

// Get returns the current state of an incident, read through to the stream
// so that a write by any replica is visible.
func (h *Handler) Get(ctx context.Context, id string) (incident.State, error) {
	if !events.ValidID(id) {
		return incident.State{}, incident.ErrNotFound
	}
	e := h.entry(id)
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := h.refresh(ctx, e, id); err != nil {
		return incident.State{}, err
	}
	if !e.st.Exists() {
		h.forget(id)
		return incident.State{}, incident.ErrNotFound
	}
	return e.st.View(), nil
}

// Known is the incident as this process knows it: from its cache when it
// holds it, without asking the bus whether a newer event came (as Get
// does), from its snapshot on a miss (as a command's first load). For
// checks that the command path repeats on the state it decides on
// (Meta.Allow).
func (h *Handler) Known(ctx context.Context, id string) (incident.State, error) {
	if !events.ValidID(id) {
		return incident.State{}, incident.ErrNotFound
	}
	e := h.entry(id)
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.loaded {
		if err := h.warm(ctx, e, id); err != nil {
			return incident.State{}, err
		}
	}
	if !e.st.Exists() {
		h.forget(id)
		return incident.State{}, incident.ErrNotFound
	}
	return e.st.View(), nil
}

var caseNumber = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]*-[0-9]+$`)

// Resolve turns what a person types — an incident id or a case number such
// as INC-42 — into the incident id.
func (h *Handler) Resolve(ctx context.Context, ref string) (string, error) {
	if !caseNumber.MatchString(ref) {
		if !events.ValidID(ref) {
			return "", incident.ErrNotFound
		}
		return ref, nil
	}
	id, ok, err := h.cases.Lookup(ctx, ref)
	if err != nil || ok {
		return id, err
	}
	if h.findCase != nil {
		if id, err := h.findCase(ctx, ref); err == nil && id != "" {
			return id, nil
		}
	}
	return "", incident.ErrNotFound
}

// Declare opens a new incident, allocating its case number and, when
// confidential, its codename.
func (h *Handler) Declare(ctx context.Context, c incident.Declare, m Meta) (incident.State, error) {
	if err := c.Validate(); err != nil {
		return incident.State{}, err
	}
	id := events.NewID()
	if m.Key != "" {
		id = events.DeriveID("incident", m.Key)
	}
	e := h.entry(id)
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := h.refresh(ctx, e, id); err != nil {
		return incident.State{}, err
	}
	eventID := h.eventID(id, m)
	if e.st.Exists() {
		if done, err := h.stored(ctx, e, eventID); err != nil {
			return incident.State{}, err
		} else if done {
			return e.st.View(), nil
		}
		return incident.State{}, fmt.Errorf("incident %s exists: %w", id, errors.New("idempotency key reused"))
	}
	var err error
	if c.CaseNumber, err = h.cases.Next(ctx); err != nil {
		return incident.State{}, err
	}
	if c.Confidential {
		c.Codename = incident.Codename(id)
	}
	st, err := h.run(ctx, e, id, c, m, eventID)
	if err != nil {
		if !e.st.Exists() {
			h.forget(id)
		}
		return st, err
	}
	// The event is stored: whatever happens to the index, the answer is a
	// success (Resolve falls back to the timeline).
	if berr := h.cases.Bind(ctx, st.CaseNumber, id); berr != nil {
		slog.Warn("case number index not written; lookups by case number use the timeline", "case", st.CaseNumber, "err", berr)
	}
	return st, nil
}

// Execute runs a command against an existing incident.
func (h *Handler) Execute(ctx context.Context, id string, c incident.Command, m Meta) (incident.State, error) {
	if !events.ValidID(id) {
		return incident.State{}, incident.ErrNotFound
	}
	e := h.entry(id)
	e.mu.Lock()
	defer e.mu.Unlock()
	// An If-Match must be compared with the latest version, not a cached one.
	switch {
	case m.ExpectVersion != 0:
		if err := h.refresh(ctx, e, id); err != nil {
			return incident.State{}, err
		}
	case !e.loaded:
		if err := h.warm(ctx, e, id); err != nil {
			return incident.State{}, err
		}
	}
	if !e.st.Exists() {
		h.forget(id)
		return incident.State{}, incident.ErrNotFound
	}
	return h.run(ctx, e, id, c, m, h.eventID(id, m))
}

func (h *Handler) eventID(id string, m Meta) string {
	if m.Key == "" {
		return ""
	}
	return events.DeriveID("event", id, m.Key)
}

// run decides and appends, reloading on conflict. The cache may be stale
// when another replica wrote: a conflicting append or a refusal triggers
// one reload before the answer is final.
func (h *Handler) run(ctx context.Context, e *entry, id string, c incident.Command, m Meta, eventID string) (incident.State, error) {
	fresh := false
	reload := func() error {
		fresh = true
		return h.refresh(ctx, e, id)
	}
	for attempt := 0; attempt < maxAttempts; attempt++ {
		if done, err := h.stored(ctx, e, eventID); err != nil {
			return incident.State{}, err
		} else if done {
			// Answer with the incident as it is now, as a first attempt
			// would have, not as this cache last saw it.
			if !fresh {
				if err := reload(); err != nil {
					return incident.State{}, err
				}
			}
			return e.st.View(), nil
		}
		if m.ExpectVersion != 0 && e.st.Version != m.ExpectVersion {
			if !fresh {
				if err := reload(); err != nil {
					return incident.State{}, err
				}
				continue
			}
			return incident.State{}, fmt.Errorf("%w: expected %d, current %d", ErrVersionConflict, m.ExpectVersion, e.st.Version)
		}
		if m.Allow != nil {
			if err := m.Allow(e.st); err != nil {
				if !fresh { // refused on what this cache last saw: look again
					if rerr := reload(); rerr != nil {
						return incident.State{}, rerr
					}
					continue
				}
				return incident.State{}, err
			}
		}
		data, err := c.Decide(&e.st)
		if err != nil {
			// Refused on a state not just read (the cache, or a snapshot
			// that may lag another replica's writes): a refusal may come of
			// what that state lacks, so decide once more on the latest.
			if !fresh && !errors.Is(err, incident.ErrNotFound) {
				if rerr := reload(); rerr != nil {
					return incident.State{}, rerr
				}
				continue
			}
			return incident.State{}, err
		}
		env, err := events.New(id, data, events.Meta{ID: eventID, Source: h.source, Actor: m.Actor, ActorName: m.ActorName, Via: m.Via, CorrelationID: m.CorrelationID})
		if err != nil {
			return incident.State{}, err
		}
		body, hash, err := h.chain(e, &env)
		if err != nil {
			return incident.State{}, err
		}
		seq, dup, err := h.store.AppendMarshaled(ctx, env, body, e.st.Version)
		switch {
		case errors.Is(err, natsjs.ErrConflict):
			if err := reload(); err != nil {
				return incident.State{}, err
			}
			continue
		case err != nil:
			return incident.State{}, err
		case dup:
			// Stored before, by a retry of ours or a twin request: read it back.
			if err := reload(); err != nil {
				return incident.State{}, err
			}
			continue
		}
		if err := e.st.ApplyData(env, data, seq); err != nil {
			return incident.State{}, err
		}
		e.head = hash
		e.applied(env.ID)
		h.changed(ctx, e)
		if h.onAppend != nil {
			h.onAppend(env.Type)
		}
		return e.st.View(), nil
	}
	return incident.State{}, fmt.Errorf("%w: incident %s: still conflicting after %d attempts", natsjs.ErrUnavailable, id, maxAttempts)
}

// chain sets the event's prevhash and returns its hash, the incident's
// next head.
// chain links env to the incident's last event and returns its bytes,
// which are both what is stored and what its hash is of (the canonical
// form), and that hash.
func (h *Handler) chain(e *entry, env *events.Envelope) (body []byte, hash string, err error) {
	if !h.unchained {
		env.PrevHash = e.prevHash()
	}
	if body, err = env.Canonical(); err != nil || h.unchained {
		return body, "", err
	}
	return body, events.HashBytes(body), nil
}
