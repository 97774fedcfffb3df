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

func (p *Projector) apply(ctx context.Context, batch []decodedEvent) error {
	if len(batch) == 0 {
		return nil
	}
	if p.deferRows && len(p.states) > maxRebuildStates {
		if err := p.flushRows(ctx); err != nil {
			return err
		}
	}
	for id := range p.states { // random order spreads the evictions
		if p.deferRows || len(p.states) <= maxCachedStates {
			break
		}
		delete(p.states, id)
	}
	touched := map[string]*incident.State{}
	changes := make([]readmodel.Change, 0, len(batch))
	last := map[string]int{} // incident id → index of its last change
	declared := p.declared
	if !p.deferRows {
		declared = map[string]uint64{}
	}
	for _, de := range batch {
		ev, data := de.Stored, de.data
		id, ok := events.IncidentID(ev.Subject)
		if !ok {
			return fmt.Errorf("timeline: seq %d: subject %q is not an incident subject", ev.Seq, ev.Subject)
		}
		st, err := p.state(ctx, id, touched)
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
			declared[id] = ev.Seq
		}
		raw, err := currentData(ev, data)
		if err != nil {
			return err
		}
		last[id] = len(changes)
		changes = append(changes, readmodel.Change{Event: ev, Data: raw, OccurredAt: events.OccurredAt(data)})
	}
	// One row write per incident per batch, with its state after the batch.
	for id, i := range last {
		if p.deferRows {
			break
		}
		r, err := row(id, touched[id], declared[id])
		if err != nil {
			return err
		}
		changes[i].Incident = &r
	}
	if _, err := p.store.Apply(ctx, Name, changes); err != nil {
		clear(p.states)
		clear(p.declared) // a rebuild that fails is thrown away
		return err
	}
	for id, st := range touched {
		p.states[id] = st
	}
	return nil
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
// every page it changed to the WAL, so larger transactions change each
// index page fewer times per event.
const (
	rebuildBatch = 2000
	catchUpBatch = 16384
)

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
		if bulk, ok := p.store.(bulkWriter); ok {
			restore, err := bulk.BulkWrite(ctx)
			if err != nil {
				return false, err
			}
			defer restore()
		}
		start := time.Now()
		n, _, err := fill(ctx, es, p, after, catchUpBatch, nil)
		if err == nil {
			slog.Info("timeline caught up from the stream", "events", n, "after", after, "took", time.Since(start).Round(time.Millisecond))
		}
		return n > 0, err
	}
	return row
}

// bulkWriter is a store that writes faster while it catches up (SQLite
// enlarges its page cache and copies its WAL back less often).
type bulkWriter interface {
	BulkWrite(context.Context) (restore func(), err error)
}

// fill applies the stream after the sequence after: one goroutine reads and
// decodes, the other writes.
func fill(ctx context.Context, es *natsjs.Store, p *Projector, after uint64, batchSize int, progress Progress) (int, uint64, error) {
	g, gctx := errgroup.WithContext(ctx)
	batches := make(chan []decodedEvent, 2)
	g.Go(func() error {
		defer close(batches)
		// Data is decoded here, beside the writer, which has the most to do.
		batch := make([]events.Stored, 0, batchSize)
		send := func() error {
			decoded, err := decodeAll(batch)
			if err != nil {
				return err
			}
			select {
			case batches <- decoded:
				batch = make([]events.Stored, 0, batchSize)
				return nil
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		err := es.Read(gctx, natsjs.ReadOptions{After: after, OnProgress: progress}, func(ev events.Stored) error {
			batch = append(batch, ev)
			if len(batch) == batchSize {
				return send()
			}
			return nil
		})
		if err == nil && len(batch) > 0 {
			err = send()
		}
		return err
	})
	n := 0
	var last uint64
	g.Go(func() error {
		for batch := range batches {
			if err := p.apply(gctx, batch); err != nil {
				return err
			}
			n += len(batch)
			last = batch[len(batch)-1].Seq
		}
		if gctx.Err() != nil {
			return gctx.Err()
		}
		if !p.deferRows {
			return nil
		}
		return p.flushRows(gctx)
	})
	err := g.Wait()
	return n, last, err
}
