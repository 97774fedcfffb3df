// Package sqlstore is the timeline store, a read model of the incident
// stream, over database/sql: the queries the SQLite and PostgreSQL
// adapters share, with their differences (placeholders, JSON, case
// folding, cross-process wakeups) in a Dialect. Each projector's
// checkpoint, the last stream sequence it applied, is written in the same
// transaction as its rows, so a redelivered event is skipped and a crash
// loses nothing.
package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hikeshi/hikeshi/events"
)

// ErrNotFound: no such incident in the store.
var ErrNotFound = errors.New("not found")

// Store is the timeline database.
type Store struct {
	db *sql.DB
	d  Dialect

	// writer, when set (UseWriter), is the one connection that writes
	// events and incident rows, so that settings made on it (a larger page
	// cache while catching up) apply to every write.
	writer *sql.Conn
	wmu    sync.Mutex

	mu sync.Mutex
	// waiters holds, per incident, a channel closed at the next commit that
	// touches it, and callbacks functions run once then; only incidents
	// someone waits for have them.
	waiters   map[string]chan struct{}
	callbacks map[string]map[*func()]struct{}
	// Without notifications (SQLite) one watcher per store stands in for
	// them while anyone waits (see watch); committed is each projector's
	// checkpoint as this store last wrote it.
	watching  bool
	committed map[string]uint64
	closing   chan struct{}

	// Statements prepared once: database/sql keeps them prepared on each
	// connection, so the hot paths do not parse SQL again.
	stmts struct {
		checkpoint, insEvent, insEvent1, upInc, saveCheckpoint, snapshot, timeline, timelineOccurred *sql.Stmt
	}
}

const (
	qCheckpoint = `SELECT seq FROM checkpoints WHERE projector = ?`
	qInsEvent   = `INSERT INTO events (seq, id, incident_id, type, time, actor, data, actorname, via, occurred_at) VALUES `
	eventCols   = 10
	qUpIncident = `INSERT INTO incidents (id, case_number, status, open, declared_at, version, snapshot, declared_seq)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET status = excluded.status, open = excluded.open, version = excluded.version, snapshot = excluded.snapshot`
	qSaveCheckpoint = `INSERT INTO checkpoints (projector, seq) VALUES (?, ?)
		ON CONFLICT (projector) DO UPDATE SET seq = excluded.seq`
	qSnapshot = `SELECT snapshot FROM incidents WHERE id = ?`
	qTimeline = `SELECT ` + entryCols + ` FROM events
		WHERE incident_id = ? AND seq > ? ORDER BY seq LIMIT ?`
	qTimelineOccurred = `SELECT ` + entryCols + ` FROM events
		WHERE incident_id = ? AND seq > ? ORDER BY occurred_at, seq LIMIT ?`
)

// occurredLayout writes occurred_at: fixed width, so that the text sorts as
// the time does (SQLite's strftime('%Y-%m-%dT%H:%M:%fZ') gives the same).
const occurredLayout = "2006-01-02T15:04:05.000Z"

// EventsIndex serves timelines. A rebuild creates it once its events are
// in (Finish): one sort instead of a random insert per event.
const EventsIndex = `CREATE INDEX IF NOT EXISTS events_incident ON events (incident_id, seq);`

// New returns the store over db, which holds the schema, speaking d. The
// store owns db: Close closes it.
func New(db *sql.DB, d Dialect) (*Store, error) {
	s := &Store{db: db, d: d, waiters: map[string]chan struct{}{}, callbacks: map[string]map[*func()]struct{}{},
		committed: map[string]uint64{}, closing: make(chan struct{})}
	for _, p := range []struct {
		stmt **sql.Stmt
		q    string
	}{
		{&s.stmts.checkpoint, qCheckpoint},
		{&s.stmts.insEvent, insertEvents(eventChunk)},
		{&s.stmts.insEvent1, insertEvents(1)},
		{&s.stmts.upInc, qUpIncident},
		{&s.stmts.saveCheckpoint, qSaveCheckpoint},
		{&s.stmts.snapshot, qSnapshot},
		{&s.stmts.timeline, qTimeline},
		{&s.stmts.timelineOccurred, qTimelineOccurred},
	} {
		var err error
		if *p.stmt, err = db.Prepare(d.rebind(p.q)); err != nil {
			s.Close()
			return nil, fmt.Errorf("prepare: %w", err)
		}
	}
	return s, nil
}

// UseWriter makes conn, one of db's connections, the one that writes
// events and incident rows; Close closes it.
func (s *Store) UseWriter(conn *sql.Conn) { s.writer = conn }

// OnWriter runs fn on the writer connection between write transactions;
// without one it does nothing.
func (s *Store) OnWriter(ctx context.Context, fn func(context.Context, *sql.Conn) error) error {
	if s.writer == nil {
		return nil
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return fn(ctx, s.writer)
}

// beginWrite starts a write transaction, on the writer connection when
// there is one; end must be called once the transaction is over.
func (s *Store) beginWrite(ctx context.Context) (tx *sql.Tx, end func(), err error) {
	if s.writer == nil {
		tx, err = s.db.BeginTx(ctx, nil)
		return tx, func() {}, err
	}
	s.wmu.Lock()
	if tx, err = s.writer.BeginTx(ctx, nil); err != nil {
		s.wmu.Unlock()
		return nil, nil, err
	}
	return tx, s.wmu.Unlock, nil
}

// DB is the database, for what an adapter adds to the store.
func (s *Store) DB() *sql.DB { return s.db }

// Finish creates the indexes a store opened with OpenScratch was filled
// without.
func (s *Store) Finish(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, EventsIndex); err != nil {
		return fmt.Errorf("timeline: index events: %w", err)
	}
	return nil
}

// Close closes the database.
func (s *Store) Close() error {
	s.mu.Lock()
	select {
	case <-s.closing:
	default:
		close(s.closing)
	}
	s.mu.Unlock()
	for _, st := range []*sql.Stmt{s.stmts.checkpoint, s.stmts.insEvent, s.stmts.insEvent1, s.stmts.upInc, s.stmts.saveCheckpoint, s.stmts.snapshot, s.stmts.timeline, s.stmts.timelineOccurred} {
		if st != nil {
			_ = st.Close()
		}
	}
	if s.writer != nil {
		_ = s.writer.Close()
	}
	return s.db.Close()
}

// Ping checks the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// Row is the summary of an incident after an event: the projector computes
// it with the domain's own fold and hands it over as a snapshot.
type Row struct {
	ID         string
	CaseNumber string
	Status     string
	Open       bool
	DeclaredAt time.Time
	Version    uint64
	Snapshot   json.RawMessage
	// DeclaredSeq is the sequence of the incident's declaration; only the
	// row's first write needs it.
	DeclaredSeq uint64
}

// args are the row's values in qUpIncident's order.
func (r *Row) args() []any {
	return []any{r.ID, r.CaseNumber, r.Status, b2i(r.Open),
		r.DeclaredAt.UTC().Format(time.RFC3339Nano), r.Version, string(r.Snapshot), r.DeclaredSeq}
}

// b2i stores a boolean as 0 or 1, which both dialects compare as a number.
func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Change is one event, its data at the current version, and, when set, the
// incident row as it stands after the event. A batch sets the row on the
// last change of each incident only.
type Change struct {
	Event    events.Stored
	Data     json.RawMessage
	Incident *Row
	// OccurredAt is when the fact happened, when the event says so apart
	// from its time (events.OccurredAt); zero: the event's time.
	OccurredAt time.Time
}

// occurred is the change's occurred_at column.
func (c Change) occurred() string {
	t := c.OccurredAt
	if t.IsZero() {
		t = c.Event.Time
	}
	return t.UTC().Format(occurredLayout)
}

// eventChunk is how many event rows one INSERT carries: one statement per
// row costs more in the driver than the row costs in SQLite.
const eventChunk = 64

func insertEvents(rows int) string {
	var b strings.Builder
	b.WriteString(qInsEvent)
	for i := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
	}
	return b.String()
}

// eventInserter buffers event rows and writes them eventChunk at a time.
type eventInserter struct {
	tx        *sql.Tx
	full, one *sql.Stmt // prepared for eventChunk rows and for one row
	args      []any
	d         Dialect
}

func (in *eventInserter) add(ctx context.Context, row ...any) error {
	in.args = append(in.args, row...)
	if len(in.args) == eventChunk*eventCols && in.d.InsertEvents == nil {
		return in.exec(ctx, in.full)
	}
	return nil
}

func (in *eventInserter) flush(ctx context.Context) error {
	switch len(in.args) {
	case 0:
		return nil
	case eventCols: // the live projector's usual batch of one
		return in.exec(ctx, in.one)
	}
	if in.d.InsertEvents != nil {
		if err := in.d.InsertEvents(ctx, in.tx, in.args); err != nil {
			return fmt.Errorf("timeline: insert events up to seq %v: %w", in.args[len(in.args)-eventCols], err)
		}
		in.args = in.args[:0]
		return nil
	}
	st, err := in.tx.PrepareContext(ctx, in.d.rebind(insertEvents(len(in.args)/eventCols)))
	if err != nil {
		return fmt.Errorf("timeline: insert events: %w", err)
	}
	defer st.Close()
	return in.exec(ctx, st)
}

func (in *eventInserter) exec(ctx context.Context, st *sql.Stmt) error {
	if _, err := st.ExecContext(ctx, in.args...); err != nil {
		return fmt.Errorf("timeline: insert events up to seq %v: %w", in.args[len(in.args)-eventCols], err)
	}
	in.args = in.args[:0]
	return nil
}

// Checkpoint is the last stream sequence projector applied, 0 if none.
func (s *Store) Checkpoint(ctx context.Context, projector string) (uint64, error) {
	var seq uint64
	err := s.stmts.checkpoint.QueryRowContext(ctx, projector).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return seq, err
}

// Apply writes changes and the new checkpoint in one transaction, skipping
// every change at or below the current checkpoint. It returns how many it
// applied.
func (s *Store) Apply(ctx context.Context, projector string, changes []Change) (int, error) {
	if len(changes) == 0 {
		return 0, nil
	}
	b, err := s.Begin(ctx, projector)
	if err != nil {
		return 0, err
	}
	defer b.Rollback()
	if err := b.Add(ctx, changes); err != nil {
		return 0, err
	}
	return b.Commit(ctx)
}

// Batch is one write transaction of a projector's changes that takes them
// in parts (Add) and writes the checkpoint at Commit: a catch-up writes a
// long run of events in one transaction without holding them all, since
// each commit rewrites every index page it touched.
type Batch struct {
	s         *Store
	projector string
	tx        *sql.Tx
	end       func()
	ins       *eventInserter
	upInc     *sql.Stmt
	cp        uint64 // the checkpoint, moved by each change added
	applied   int
	touched   map[string]struct{}
	done      bool
}

// Begin starts a batch of projector's changes.
func (s *Store) Begin(ctx context.Context, projector string) (*Batch, error) {
	tx, end, err := s.beginWrite(ctx)
	if err != nil {
		return nil, fmt.Errorf("timeline: begin: %w", err)
	}
	b := &Batch{s: s, projector: projector, tx: tx, end: end, touched: map[string]struct{}{}}
	if err := b.start(ctx); err != nil {
		b.Rollback()
		return nil, err
	}
	return b, nil
}

func (b *Batch) start(ctx context.Context) error {
	s, tx := b.s, b.tx
	if s.d.LockApply != "" {
		if _, err := tx.ExecContext(ctx, s.d.rebind(s.d.LockApply), b.projector); err != nil {
			return fmt.Errorf("timeline: lock: %w", err)
		}
	}
	if err := tx.StmtContext(ctx, s.stmts.checkpoint).QueryRowContext(ctx, b.projector).Scan(&b.cp); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("timeline: checkpoint: %w", err)
	}
	b.upInc = tx.StmtContext(ctx, s.stmts.upInc)
	b.ins = &eventInserter{tx: tx, d: s.d, full: tx.StmtContext(ctx, s.stmts.insEvent), one: tx.StmtContext(ctx, s.stmts.insEvent1)}
	return nil
}

// Add writes changes, skipping every one at or below the checkpoint.
// The rows are written when it returns.
func (b *Batch) Add(ctx context.Context, changes []Change) error {
	for _, c := range changes {
		if c.Event.Seq <= b.cp {
			continue
		}
		id, _ := events.IncidentID(c.Event.Subject)
		if err := b.ins.add(ctx, c.Event.Seq, c.Event.ID, id, c.Event.Type,
			c.Event.Time.UTC().Format(time.RFC3339Nano), c.Event.Actor, string(c.Data), c.Event.ActorName, c.Event.Via, c.occurred()); err != nil {
			return err
		}
		if r := c.Incident; r != nil {
			if err := b.put(ctx, r); err != nil {
				return err
			}
		}
		b.touched[id] = struct{}{}
		b.cp = c.Event.Seq
		b.applied++
	}
	// Written now, so that a long batch holds no more than one part.
	return b.ins.flush(ctx)
}

// PutIncidents writes the rows of incidents the batch applied changes to,
// as they stand after them: written once at the end of a long batch
// instead of with each change. The row of an incident whose changes were
// all skipped (at or below the checkpoint) is skipped too.
func (b *Batch) PutIncidents(ctx context.Context, rows []Row) error {
	for i := range rows {
		if _, ok := b.touched[rows[i].ID]; !ok {
			continue
		}
		if err := b.put(ctx, &rows[i]); err != nil {
			return err
		}
	}
	return nil
}

func (b *Batch) put(ctx context.Context, r *Row) error {
	if _, err := b.upInc.ExecContext(ctx, r.args()...); err != nil {
		return fmt.Errorf("timeline: incident %s: %w", r.ID, err)
	}
	return nil
}

// Commit writes the checkpoint and commits; it returns how many changes
// were applied. A batch that applied none commits nothing.
func (b *Batch) Commit(ctx context.Context) (int, error) {
	s, tx := b.s, b.tx
	if err := b.ins.flush(ctx); err != nil {
		return 0, err
	}
	if b.applied == 0 {
		b.Rollback()
		return 0, nil
	}
	if _, err := tx.StmtContext(ctx, s.stmts.saveCheckpoint).ExecContext(ctx, b.projector, b.cp); err != nil {
		return 0, fmt.Errorf("timeline: save checkpoint: %w", err)
	}
	if s.d.Notify != nil {
		if err := s.d.Notify(ctx, tx, slices.Sorted(maps.Keys(b.touched))); err != nil {
			return 0, fmt.Errorf("timeline: notify: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("timeline: commit: %w", err)
	}
	b.close()
	s.mu.Lock()
	s.committed[b.projector] = b.cp
	s.mu.Unlock()
	s.Wake(slices.Collect(maps.Keys(b.touched))...)
	return b.applied, nil
}

// Rollback ends the batch without writing it; after Commit it does
// nothing.
func (b *Batch) Rollback() {
	if b.done {
		return
	}
	_ = b.tx.Rollback()
	b.close()
}

func (b *Batch) close() {
	if b.done {
		return
	}
	b.done = true
	stmts := []*sql.Stmt{b.upInc}
	if b.ins != nil {
		stmts = append(stmts, b.ins.full, b.ins.one)
	}
	for _, st := range stmts {
		if st != nil {
			_ = st.Close()
		}
	}
	b.end()
}

// PutIncidents writes incident rows in one transaction, outside any
// projector's checkpoint: for a rebuild, which writes each incident's row
// once at the end instead of after every batch.
func (s *Store) PutIncidents(ctx context.Context, rows []Row) error {
	tx, end, err := s.beginWrite(ctx)
	if err != nil {
		return fmt.Errorf("timeline: begin: %w", err)
	}
	defer end()
	defer tx.Rollback()
	upInc := tx.StmtContext(ctx, s.stmts.upInc)
	defer upInc.Close()
	for _, r := range rows {
		if _, err := upInc.ExecContext(ctx, r.args()...); err != nil {
			return fmt.Errorf("timeline: incident %s: %w", r.ID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("timeline: commit: %w", err)
	}
	return nil
}

// Wake closes the Changed channels of incidents ids, and runs their
// OnChanged functions: after a commit here, or, told by the dialect's
// notifications, by another process.
func (s *Store) Wake(ids ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		if ch, ok := s.waiters[id]; ok {
			close(ch)
			delete(s.waiters, id)
		}
		for fn := range s.callbacks[id] {
			(*fn)()
		}
		delete(s.callbacks, id)
	}
}

// WakeAll wakes every waiter: when notifications may have been missed (a
// lost connection), another process committed, or the whole store was
// replaced.
func (s *Store) WakeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, ch := range s.waiters {
		close(ch)
		delete(s.waiters, id)
	}
	for id, fns := range s.callbacks {
		for fn := range fns {
			(*fn)()
		}
		delete(s.callbacks, id)
	}
}

// Changed returns a channel closed at the next commit that adds events to
// incident id, in this process or another. Waking only the waiters of
// that incident keeps a busy projector from making every long poll query
// again.
func (s *Store) Changed(id string) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, ok := s.waiters[id]
	if !ok {
		ch = make(chan struct{})
		s.waiters[id] = ch
	}
	s.watchLocked()
	return ch
}

// OnChanged runs fn once, at the next commit that adds events to incident
// id (as Changed's channel closes), without a goroutine waiting meanwhile;
// cancel forgets fn if it has not run. fn must not block: it runs with the
// store's waiters locked.
func (s *Store) OnChanged(id string, fn func()) (cancel func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	set := s.callbacks[id]
	if set == nil {
		set = map[*func()]struct{}{}
		s.callbacks[id] = set
	}
	set[&fn] = struct{}{}
	s.watchLocked()
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if set := s.callbacks[id]; set != nil {
			delete(set, &fn)
			if len(set) == 0 {
				delete(s.callbacks, id)
			}
		}
	}
}

// WatchEvery is how often the watcher reads the checkpoints.
const WatchEvery = 100 * time.Millisecond

// watchLocked starts the watcher if the dialect does not notify and none
// runs; s.mu is held.
func (s *Store) watchLocked() {
	if s.d.Notify != nil || s.watching {
		return
	}
	s.watching = true
	go s.watch()
}

// watch stands in for notifications where the dialect has none: another
// process sharing the database (a projector that moved there with its
// lease) commits without telling this one. While anyone waits it reads
// the checkpoints every WatchEvery, one query for all the waiters of the
// process, and wakes them all when a checkpoint changed that this store
// did not write.
func (s *Store) watch() {
	seen, _ := s.checkpoints()
	t := time.NewTicker(WatchEvery)
	defer t.Stop()
	for {
		select {
		case <-s.closing:
			return
		case <-t.C:
		}
		s.mu.Lock()
		if len(s.waiters) == 0 && len(s.callbacks) == 0 {
			s.watching = false
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		now, err := s.checkpoints()
		if err != nil {
			continue
		}
		s.mu.Lock()
		other := false
		for p, seq := range now {
			if seq != seen[p] && seq != s.committed[p] {
				other = true
			}
		}
		s.mu.Unlock()
		seen = now
		if other {
			s.WakeAll()
		}
	}
}

// checkpoints reads every projector's checkpoint.
func (s *Store) checkpoints() (map[string]uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rows, err := s.db.QueryContext(ctx, `SELECT projector, seq FROM checkpoints`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cps := map[string]uint64{}
	for rows.Next() {
		var p string
		var seq uint64
		if err := rows.Scan(&p, &seq); err != nil {
			return nil, err
		}
		cps[p] = seq
	}
	return cps, rows.Err()
}

// Snapshot returns the stored summary of an incident.
func (s *Store) Snapshot(ctx context.Context, id string) (json.RawMessage, error) {
	var snap string
	err := s.stmts.snapshot.QueryRowContext(ctx, id).Scan(&snap)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return json.RawMessage(snap), err
}

// FindByCase resolves a case number such as INC-42 to an incident id.
func (s *Store) FindByCase(ctx context.Context, caseNumber string) (string, error) {
	var id string
	err := s.findIncident(ctx, "id", "", caseNumber, &id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	return id, err
}

// findIncident scans col of the incident whose id is id or whose case
// number is caseNumber into dest. The exact lookups use the indexes; the
// case number is compared ignoring case (as typed in chat, "inc-42") only
// when nothing matches exactly, since that comparison reads every row.
func (s *Store) findIncident(ctx context.Context, col, id, caseNumber string, dest any) error {
	err := s.db.QueryRowContext(ctx, s.d.rebind(FindQuery(col)), id, caseNumber).Scan(dest)
	if !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	return s.db.QueryRowContext(ctx, s.d.rebind(`SELECT `+col+` FROM incidents WHERE `+s.d.FoldEq("case_number")), caseNumber).Scan(dest)
}

// FindQuery selects col of the incident with an id or a case number.
func FindQuery(col string) string {
	return `SELECT ` + col + ` FROM incidents WHERE id = ? OR case_number = ?`
}

// ListFilter selects incidents: open, closed or all (""), at most Limit
// (0: all), declared before the incident Before (an id or case number).
type ListFilter struct {
	Status string
	Limit  int
	Before string
}

// ListQuery is the list's SQL: an index walk from the newest, stopping at
// the limit, whatever the number of incidents.
func ListQuery(f ListFilter) string {
	var where []string
	switch f.Status {
	case "open":
		where = append(where, `open = 1`)
	case "closed":
		where = append(where, `open = 0`)
	}
	if f.Before != "" {
		where = append(where, `declared_seq < ?`)
	}
	q := `SELECT snapshot FROM incidents`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, ` AND `)
	}
	q += ` ORDER BY declared_seq DESC`
	if f.Limit > 0 {
		q += ` LIMIT ?`
	}
	return q
}

// List returns incident snapshots, newest first. An unknown Before is
// ErrNotFound.
func (s *Store) List(ctx context.Context, f ListFilter) ([]json.RawMessage, error) {
	var args []any
	if f.Before != "" {
		var seq uint64
		err := s.findIncident(ctx, "declared_seq", f.Before, f.Before, &seq)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("incident %q: %w", f.Before, ErrNotFound)
		}
		if err != nil {
			return nil, err
		}
		args = append(args, seq)
	}
	if f.Limit > 0 {
		args = append(args, f.Limit)
	}
	return s.snapshots(ctx, ListQuery(f), args...)
}

// snapshots runs a query of incident snapshots and returns them in order.
func (s *Store) snapshots(ctx context.Context, q string, args ...any) ([]json.RawMessage, error) {
	rows, err := s.db.QueryContext(ctx, s.d.rebind(q), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []json.RawMessage{}
	for rows.Next() {
		var snap string
		if err := rows.Scan(&snap); err != nil {
			return nil, err
		}
		out = append(out, json.RawMessage(snap))
	}
	return out, rows.Err()
}

// Entry is one event on an incident's timeline. ActorName and Via are the
// events' extensions of the same names: the actor's display name, and who
// acted for it (the Slack user, the integration's token).
type Entry struct {
	Seq       uint64    `json:"seq"`
	ID        string    `json:"id"`
	Type      string    `json:"type"`
	Time      time.Time `json:"time"`
	Actor     string    `json:"actor,omitempty"`
	ActorName string    `json:"actorname,omitempty"`
	Via       string    `json:"via,omitempty"`
	// OccurredAt is when the fact happened, for an event that says so
	// apart from its time (a backdated note, a milestone); absent otherwise.
	OccurredAt *time.Time      `json:"occurred_at,omitempty"`
	Data       json.RawMessage `json:"data"`
}

// entryCols are the columns scanEntries reads.
const entryCols = `seq, id, type, time, actor, actorname, via, data, occurred_at`

// Order is the order of a timeline.
type Order int

const (
	// Recorded: as the events were recorded (stream order).
	Recorded Order = iota
	// Occurred: as the facts happened, a backdated note where it belongs;
	// events recorded in the same millisecond keep the stream order.
	Occurred
)

// Timeline returns the incident's events after sequence after, in order.
func (s *Store) Timeline(ctx context.Context, id string, after uint64, limit int) ([]Entry, error) {
	return s.TimelineIn(ctx, Recorded, id, after, limit)
}

// TimelineIn is Timeline in the given order.
func (s *Store) TimelineIn(ctx context.Context, order Order, id string, after uint64, limit int) ([]Entry, error) {
	if limit <= 0 {
		limit = 10_000
	}
	st := s.stmts.timeline
	if order == Occurred {
		st = s.stmts.timelineOccurred
	}
	rows, err := st.QueryContext(ctx, id, after, limit)
	if err != nil {
		return nil, err
	}
	return scanEntries(rows)
}

// scanEntries reads timeline rows (entryCols).
func scanEntries(rows *sql.Rows) ([]Entry, error) {
	defer rows.Close()
	out := []Entry{}
	for rows.Next() {
		var e Entry
		var t, data, occurred string
		if err := rows.Scan(&e.Seq, &e.ID, &e.Type, &t, &e.Actor, &e.ActorName, &e.Via, &data, &occurred); err != nil {
			return nil, err
		}
		var err error
		if e.Time, err = time.Parse(time.RFC3339Nano, t); err != nil {
			return nil, fmt.Errorf("timeline seq %d: time: %w", e.Seq, err)
		}
		if at, err := time.Parse(occurredLayout, occurred); err == nil && !at.Equal(e.Time.Truncate(time.Millisecond)) {
			e.OccurredAt = &at
		}
		e.Data = json.RawMessage(data)
		out = append(out, e)
	}
	return out, rows.Err()
}

// Counts reports how many events and incidents the store holds.
func (s *Store) Counts(ctx context.Context) (eventsN, incidentsN int, err error) {
	if err = s.db.QueryRowContext(ctx, `SELECT count(*) FROM events`).Scan(&eventsN); err != nil {
		return
	}
	err = s.db.QueryRowContext(ctx, `SELECT count(*) FROM incidents`).Scan(&incidentsN)
	return
}

// EventRow is one row of the events table, as stored.
type EventRow struct {
	Seq        uint64
	ID         string
	IncidentID string
	Type       string
	Time       string
	Actor      string
	Data       string
	ActorName  string
	Via        string
}

// IncidentRow is one row of the incidents table, as stored.
type IncidentRow struct {
	ID         string
	CaseNumber string
	Status     string
	Open       bool
	DeclaredAt string
	Version    uint64
	Snapshot   string
	// DeclaredSeq orders the list.
	DeclaredSeq uint64
}

// Contents is everything the store holds, in a stable order, so that two
// stores (a live projection and a rebuild) can be compared.
type Contents struct {
	Checkpoints map[string]uint64
	Events      []EventRow    // by seq
	Incidents   []IncidentRow // by id
}

// Dump reads the whole store in a stable order.
func (s *Store) Dump(ctx context.Context) (Contents, error) {
	c := Contents{Checkpoints: map[string]uint64{}}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return c, fmt.Errorf("timeline: dump: %w", err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT projector, seq FROM checkpoints`)
	if err != nil {
		return c, err
	}
	for rows.Next() {
		var p string
		var seq uint64
		if err := rows.Scan(&p, &seq); err != nil {
			rows.Close()
			return c, err
		}
		c.Checkpoints[p] = seq
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return c, err
	}
	rows, err = tx.QueryContext(ctx, `SELECT seq, id, incident_id, type, time, actor, data, actorname, via FROM events ORDER BY seq`)
	if err != nil {
		return c, err
	}
	for rows.Next() {
		var e EventRow
		if err := rows.Scan(&e.Seq, &e.ID, &e.IncidentID, &e.Type, &e.Time, &e.Actor, &e.Data, &e.ActorName, &e.Via); err != nil {
			rows.Close()
			return c, err
		}
		c.Events = append(c.Events, e)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return c, err
	}
	rows, err = tx.QueryContext(ctx, `SELECT id, case_number, status, open <> 0, declared_at, version, snapshot, declared_seq FROM incidents ORDER BY id`)
	if err != nil {
		return c, err
	}
	defer rows.Close()
	for rows.Next() {
		var r IncidentRow
		if err := rows.Scan(&r.ID, &r.CaseNumber, &r.Status, &r.Open, &r.DeclaredAt, &r.Version, &r.Snapshot, &r.DeclaredSeq); err != nil {
			return c, err
		}
		c.Incidents = append(c.Incidents, r)
	}
	return c, rows.Err()
}
