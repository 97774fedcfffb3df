// Package timeline projects the incident stream into the timeline store:
// every event in order, and a summary row per incident computed with the
// domain core's own fold.
package timeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"time"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/incident"
	"github.com/hikeshi/hikeshi/services/projection"
	"github.com/hikeshi/hikeshi/services/readmodel"
	"golang.org/x/sync/errgroup"
)

// Name is the projector's durable consumer and checkpoint name. Fixed:
// renaming it would make the consumer start over.
const Name = "timeline"

// Projector applies stored events to the store.
type Projector struct {
	store readmodel.Store
	// states caches folded incidents between batches; it is dropped when
	// a batch fails, since the store did not take that batch, and when the
	// consumer restarts (forget).
	states map[string]*incident.State
	// deferRows, during a rebuild, leaves the incident rows out of the
	// batches: they are written once, by flushRows, with the declaration
	// sequences kept in declared.
	deferRows bool
	declared  map[string]uint64
}

// New returns a projector writing to store.
func New(store readmodel.Store) *Projector {
	return &Projector{store: store, states: map[string]*incident.State{}}
}

// Store is where the projector writes.
func (p *Projector) Store() readmodel.Store { return p.store }

// Projection is the projector's row for the projection runner: batches of
// the events that have arrived, each written with the checkpoint in one
// transaction.
func (p *Projector) Projection() projection.Projector {
	return projection.Projector{Durable: Name, Checkpoint: p.Checkpoint, HandleBatch: p.Apply, Restarted: p.forget}
}

// forget drops the cached states: after a restart at the checkpoint of a
// store other replicas write too, the events they applied are not
// delivered here, so a cached state may lack them.
func (p *Projector) forget() { clear(p.states) }

// Checkpoint is the last stream sequence in the store.
func (p *Projector) Checkpoint(ctx context.Context) (uint64, error) {
	return p.store.Checkpoint(ctx, Name)
}

// maxCachedStates bounds the states kept between batches (a state without
// its event ids is about half a kilobyte): enough for the incidents in use,
// so a batch rarely reads and decodes a stored snapshot.
const maxCachedStates = 32768

// maxRebuildStates bounds them during a rebuild, which writes their rows
// only when it reaches the bound or ends.
const maxRebuildStates = 65536

// Apply projects a batch of events in one transaction. Events at or below
// the checkpoint are skipped by the store, so redelivery is harmless.
func (p *Projector) Apply(ctx context.Context, batch []events.Stored) error {
	decoded, err := decodeAll(batch)
	if err != nil {
		return err
	}
	return p.apply(ctx, decoded)
}

// decodedEvent is a stored event with its data decoded.
type decodedEvent struct {
	events.Stored
	data events.Data
}

func decodeAll(batch []events.Stored) ([]decodedEvent, error) {
	out := make([]decodedEvent, len(batch))
	for i, ev := range batch {
		d, err := ev.Decode()
		if err != nil {
			return nil, fmt.Errorf("timeline: seq %d: %w", ev.Seq, err)
		}
		out[i] = decodedEvent{ev, d}
	}
	return out, nil
}

// decodeRaw decodes the envelopes and data of events read raw.
func decodeRaw(raw []natsjs.Raw) ([]decodedEvent, error) {
	out := make([]decodedEvent, len(raw))
	for i, m := range raw {
		ev, err := m.Decode()
		if err != nil {
			return nil, err
		}
		d, err := ev.Decode()
		if err != nil {
			return nil, fmt.Errorf("timeline: seq %d: %w", ev.Seq, err)
		}
		out[i] = decodedEvent{ev, d}
	}
	return out, nil
}

func (p *Projector) apply(ctx context.Context, batch []decodedEvent) error {
	if len(batch) == 0 {
		return nil
	}
	if err := p.makeRoom(ctx); err != nil {
		return err
	}
	tx, err := p.begin(ctx)
	if err != nil {
		return err
	}
	defer tx.rollback()
	if err := tx.add(ctx, batch); err != nil {
		return err
	}
	return tx.commit(ctx)
}

// makeRoom bounds the cached states before a transaction: a rebuild writes
// the rows it deferred, the projector forgets states at random.
func (p *Projector) makeRoom(ctx context.Context) error {
	if p.deferRows {
		if len(p.states) > maxRebuildStates {
			return p.flushRows(ctx)
		}
		return nil
	}
	for id := range p.states { // random order spreads the evictions
		if len(p.states) <= maxCachedStates {
			break
		}
		delete(p.states, id)
	}
	return nil
}

// projectorTx is one transaction of the projector: the events added to
// it, folded into working copies of their incidents' states, and at commit
// the rows of those incidents (unless a rebuild defers them) and the
// checkpoint.
type projectorTx struct {
	p        *Projector
	batch    *readmodel.Batch
	touched  map[string]*incident.State
	declared map[string]uint64
	events   int
}

func (p *Projector) begin(ctx context.Context) (*projectorTx, error) {
	b, err := p.store.Begin(ctx, Name)
	if err != nil {
		return nil, err
	}
	tx := &projectorTx{p: p, batch: b, touched: map[string]*incident.State{}, declared: p.declared}
	if !p.deferRows {
		tx.declared = map[string]uint64{}
	}
	return tx, nil
}

// add folds events into the states and writes them.
func (tx *projectorTx) add(ctx context.Context, batch []decodedEvent) error {
	changes := make([]readmodel.Change, 0, len(batch))
	for _, de := range batch {
		ev, data := de.Stored, de.data
		id, ok := events.IncidentID(ev.Subject)
		if !ok {
			return fmt.Errorf("timeline: seq %d: subject %q is not an incident subject", ev.Seq, ev.Subject)
		}
		st, err := tx.p.state(ctx, id, tx.touched)
		if err != nil {
			return err
		}
		if ev.Seq <= st.Version {
			continue // already folded into the stored snapshot
		}
		if err := st.ApplyData(ev.Envelope, data, ev.Seq); err != nil {
			return fmt.Errorf("timeline: seq %d: %w", ev.Seq, err)
		}
		if _, ok := data.(*events.Declared); ok {
			tx.declared[id] = ev.Seq
		}
		raw, err := currentData(ev, data)
		if err != nil {
			return err
		}
		changes = append(changes, readmodel.Change{Event: ev, Data: raw, OccurredAt: events.OccurredAt(data)})
	}
	tx.events += len(batch)
	return tx.batch.Add(ctx, changes)
}

// commit writes one row per incident, with its state after the
// transaction, and the checkpoint; the states return to the cache.
func (tx *projectorTx) commit(ctx context.Context) error {
	p := tx.p
	if !p.deferRows {
		rows := make([]readmodel.Row, 0, len(tx.touched))
		for id, st := range tx.touched {
			r, err := row(id, st, tx.declared[id])
			if err != nil {
				return err
			}
			rows = append(rows, r)
		}
		if err := tx.batch.PutIncidents(ctx, rows); err != nil {
			return err
		}
	}
	if _, err := tx.batch.Commit(ctx); err != nil {
		return err
	}
	for id, st := range tx.touched {
		p.states[id] = st
	}
	tx.touched = nil
	return nil
}

// rollback drops a transaction that was not committed, with the states it
// changed: the next one reloads them from the store.
func (tx *projectorTx) rollback() {
	if tx.touched == nil {
		return
	}
	tx.batch.Rollback()
	clear(tx.p.states)
	clear(tx.p.declared) // a rebuild that fails is thrown away
}

// row is the incident's summary row for its state.
func row(id string, st *incident.State, declaredSeq uint64) (readmodel.Row, error) {
	snap, err := json.Marshal(st)
	if err != nil {
		return readmodel.Row{}, err
	}
	return readmodel.Row{
		ID: id, CaseNumber: st.CaseNumber, Status: string(st.Status), Open: st.Open(),
		DeclaredAt: st.DeclaredAt, Version: st.Version, Snapshot: snap, DeclaredSeq: declaredSeq,
	}, nil
}

// flushRows writes the rows of the cached states, which a rebuild left
// out of its batches, and forgets them.
func (p *Projector) flushRows(ctx context.Context) error {
	rows := make([]readmodel.Row, 0, len(p.states))
	for id, st := range p.states {
		r, err := row(id, st, p.declared[id])
		if err != nil {
			return err
		}
		rows = append(rows, r)
	}
	if err := p.store.PutIncidents(ctx, rows); err != nil {
		return err
	}
	clear(p.states)
	clear(p.declared)
	return nil
}

// currentData is the event's data at the current version of its type: the
// stored bytes when no upcaster ran, re-encoded otherwise.
func currentData(ev events.Stored, data events.Data) (json.RawMessage, error) {
	if spec, ok := events.Lookup(ev.Type); ok && spec.Version == ev.DataVersion {
		return ev.Data, nil
	}
	raw, err := json.Marshal(data)
	if err != nil {
		return nil, fmt.Errorf("timeline: encode seq %d: %w", ev.Seq, err)
	}
	return raw, nil
}

// state returns a working copy of the incident's state for this batch.
func (p *Projector) state(ctx context.Context, id string, touched map[string]*incident.State) (*incident.State, error) {
	if st, ok := touched[id]; ok {
		return st, nil
	}
	st := &incident.State{}
	if cached, ok := p.states[id]; ok {
		// Take the cached state instead of copying it (a copy costs as
		// much as the incident has events). It returns to the cache when
		// the batch is stored; if the batch fails, the next one reloads
		// it from the stored snapshot.
		st = cached
		delete(p.states, id)
	} else {
		snap, err := p.store.Snapshot(ctx, id)
		switch {
		case errors.Is(err, readmodel.ErrNotFound):
		case err != nil:
			return nil, fmt.Errorf("timeline: load %s: %w", id, err)
		default:
			if err := json.Unmarshal(snap, st); err != nil {
				return nil, fmt.Errorf("timeline: snapshot %s: %w", id, err)
			}
		}
	}
	st.ForgetEventIDs() // the version tells a redelivery
	touched[id] = st
	return st, nil
}

// Progress reports a rebuild's position.
type Progress func(done, total uint64)

// RebuildStats summarises a rebuild.
type RebuildStats struct {
	Events   int
	LastSeq  uint64
	Duration time.Duration
}

// Rebuild drops the SQLite store at path and builds it again from the
// stream. It writes a new file beside the old one and renames it into place
// only when complete, so an interrupted rebuild leaves the old store intact.
func Rebuild(ctx context.Context, es *natsjs.Store, path string, progress Progress) (RebuildStats, error) {
	st, err := readmodel.OpenRebuild(ctx, "", path)
	if err != nil {
		return RebuildStats{}, err
	}
	return RebuildInto(ctx, es, st, progress)
}

// RebuildInto fills st, a store opened from scratch beside the live one
// (readmodel.OpenRebuild), from the stream and puts it in place only when
// complete; on failure st is discarded and the live store left as it was.
func RebuildInto(ctx context.Context, es *natsjs.Store, st readmodel.Rebuild, progress Progress) (RebuildStats, error) {
	start := time.Now()
	n, last, err := Fill(ctx, es, New(st), progress)
	if err == nil {
		err = st.Finish(ctx)
	}
	if err != nil {
		return RebuildStats{}, errors.Join(err, st.Discard(context.WithoutCancel(ctx)))
	}
	if err := st.Replace(ctx); err != nil {
		return RebuildStats{}, err
	}
	return RebuildStats{Events: n, LastSeq: last, Duration: time.Since(start)}, nil
}

// Fill reads the stream after the store's checkpoint through an ordered
// consumer and applies it in large transactions; the incident rows are
// written once at the end (or when the cached states are many), so a
// store being filled has its events before its incidents. Reading and decoding run
// beside the writes, so a rebuild uses both the bus and the database.
func Fill(ctx context.Context, es *natsjs.Store, p *Projector, progress Progress) (int, uint64, error) {
	after, err := p.Checkpoint(ctx)
	if err != nil {
		return 0, 0, err
	}
	// Incident rows are written once at the end, not after every batch.
	p.deferRows, p.declared = true, map[string]uint64{}
	defer func() { p.deferRows, p.declared = false, nil }()
	return fill(ctx, es, p, after, rebuildBatch, progress)
}

// Events per transaction: a rebuild writes a scratch file without a
// journal; a catch-up writes the live store, where each commit writes
// every page it changed to the WAL (the index of events by incident and
// the incident rows are spread over every incident, so nearly all their
// pages), and larger transactions write each of those pages fewer times.
// A transaction holds its events only until they are added to it.
const rebuildBatch = 65536

var catchUpBatch = 131072

// CatchUpAfter is how far behind the stream the store must stand for the
// projector to catch up by reading the stream itself (CatchUp) instead of
// through its consumer.
var CatchUpAfter uint64 = 50_000

// CatchUp is the projector's row for the projection runner with a
// catch-up: a store CatchUpAfter or more events behind the stream (lost,
// restored from an old copy, or a hub that was down for long) reads the
// stream after its checkpoint through an ordered consumer, decoding beside
// the writes, in large transactions, before its consumer delivers the
// rest. Each transaction holds the incident rows with the events and the
// checkpoint, as the consumer's batches do, so a crash meanwhile loses
// nothing.
func (p *Projector) CatchUp(es *natsjs.Store) projection.Projector {
	row := p.Projection()
	row.CatchUp = func(ctx context.Context) (bool, error) {
		after, err := p.Checkpoint(ctx)
		if err != nil {
			return false, err
		}
		last, err := es.LastStreamSeq(ctx)
		if err != nil || last < after+CatchUpAfter {
			return false, err
		}
		start := time.Now()
		restore := func(context.Context) error { return nil }
		if bulk, ok := p.store.(bulkWriter); ok {
			if restore, err = bulk.BulkWrite(ctx, after, last-after); err != nil {
				return false, err
			}
		}
		n, _, err := fill(ctx, es, p, after, catchUpBatch, nil)
		err = errors.Join(err, restore(ctx))
		if err == nil {
			slog.Info("timeline caught up from the stream", "events", n, "after", after, "took", time.Since(start).Round(time.Millisecond))
		}
		return n > 0, err
	}
	return row
}

// bulkWriter is a store that writes faster while it catches up coming
// events onto the held ones (SQLite enlarges its page cache, copies its
// WAL back less often and may build an index after instead of during).
type bulkWriter interface {
	BulkWrite(ctx context.Context, held, coming uint64) (restore func(context.Context) error, err error)
}

// decodeChunk is how many events one decoder takes at a time, and the
// writer adds to its transaction at once.
var decodeChunk = 1024

// chunk is a run of events read from the stream: decoded on one of the
// decoders, then written, in the order read.
type chunk struct {
	raw     []natsjs.Raw
	decoded []decodedEvent
	err     error
	done    chan struct{} // closed once decoded (or err)
}

// fill applies the stream after the sequence after in transactions of
// about txEvents events: one goroutine reads, one per core decodes, one
// writes, in stream order.
func fill(ctx context.Context, es *natsjs.Store, p *Projector, after uint64, txEvents int, progress Progress) (int, uint64, error) {
	g, gctx := errgroup.WithContext(ctx)
	decoders := max(runtime.GOMAXPROCS(0), 1)
	work := make(chan *chunk, decoders)
	ordered := make(chan *chunk, 4*decoders)
	g.Go(func() error {
		defer close(ordered)
		defer close(work)
		return readChunks(gctx, es, natsjs.ReadOptions{After: after, OnProgress: progress, Bulk: true}, work, ordered)
	})
	for range decoders {
		g.Go(func() error {
			for c := range work {
				c.decoded, c.err = decodeRaw(c.raw)
				c.raw = nil
				close(c.done)
			}
			return nil
		})
	}
	n := 0
	var last uint64
	g.Go(func() error {
		var tx *projectorTx
		defer func() {
			if tx != nil {
				tx.rollback()
			}
		}()
		for c := range ordered {
			select {
			case <-c.done:
			case <-gctx.Done():
				return gctx.Err()
			}
			if c.err != nil {
				return c.err
			}
			if tx == nil {
				if err := p.makeRoom(gctx); err != nil {
					return err
				}
				var err error
				if tx, err = p.begin(gctx); err != nil {
					return err
				}
			}
			if err := tx.add(gctx, c.decoded); err != nil {
				return err
			}
			n += len(c.decoded)
			last = c.decoded[len(c.decoded)-1].Seq
			if tx.events >= txEvents {
				if err := tx.commit(gctx); err != nil {
					return err
				}
				tx = nil
			}
		}
		if gctx.Err() != nil {
			return gctx.Err()
		}
		if tx != nil {
			if err := tx.commit(gctx); err != nil {
				return err
			}
			tx = nil
		}
		if !p.deferRows {
			return nil
		}
		return p.flushRows(gctx)
	})
	err := g.Wait()
	return n, last, err
}

// readChunks reads the stream into chunks of decodeChunk events, each sent
// to the decoders (work) and, in the same order, to the writer (ordered).
func readChunks(ctx context.Context, es *natsjs.Store, o natsjs.ReadOptions, work, ordered chan<- *chunk) error {
	c := &chunk{done: make(chan struct{})}
	send := func() error {
		for _, ch := range []chan<- *chunk{work, ordered} {
			select {
			case ch <- c:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		c = &chunk{raw: make([]natsjs.Raw, 0, decodeChunk), done: make(chan struct{})}
		return nil
	}
	err := es.ReadRaw(ctx, o, func(m natsjs.Raw) error {
		c.raw = append(c.raw, m)
		if len(c.raw) == decodeChunk {
			return send()
		}
		return nil
	})
	if err == nil && len(c.raw) > 0 {
		err = send()
	}
	return err
}
