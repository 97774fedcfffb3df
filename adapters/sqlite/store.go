// Package sqlite keeps read models and projector state in SQLite
// (modernc.org/sqlite, no cgo): the timeline store, a read model of the
// incident stream, and State, a key-value table for a projector's own
// state. Each projector's checkpoint, the last stream sequence it applied,
// is written in the same transaction as its rows, so a redelivered event
// is skipped and a crash loses nothing.
package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/hikeshi/hikeshi/events"
	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// ErrNotFound: no such incident in the store.
var ErrNotFound = errors.New("not found")

// Store is the timeline database.
type Store struct {
	db   *sql.DB
	path string

	// writer is the one connection that writes events and incident rows
	// (nil in a scratch store: the pool's), so that its page cache, which
	// a bulk write may enlarge (BulkWrite), is one and bounded.
	writer *sql.Conn
	wmu    sync.Mutex

	mu sync.Mutex
	// waiters holds, per incident, a channel closed at the next commit that
	// touches it; only incidents someone waits for have one.
	waiters map[string]chan struct{}

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

const schema = `
CREATE TABLE IF NOT EXISTS checkpoints (
	projector TEXT PRIMARY KEY,
	seq       INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
	seq         INTEGER PRIMARY KEY,
	id          TEXT NOT NULL UNIQUE,
	incident_id TEXT NOT NULL,
	type        TEXT NOT NULL,
	time        TEXT NOT NULL,
	actor       TEXT NOT NULL,
	data        TEXT NOT NULL,
	-- the actor's display name and who acted for it (events' actorname, via)
	actorname   TEXT NOT NULL DEFAULT '',
	via         TEXT NOT NULL DEFAULT '',
	-- when the fact happened (occurredLayout): a backdated note's or a
	-- milestone's own time, else the event's time
	occurred_at TEXT NOT NULL DEFAULT ''
);
` + eventsIndex + `
CREATE TABLE IF NOT EXISTS incidents (
	id          TEXT PRIMARY KEY,
	case_number TEXT NOT NULL UNIQUE,
	status      TEXT NOT NULL,
	open        INTEGER NOT NULL,
	declared_at TEXT NOT NULL,
	version     INTEGER NOT NULL,
	snapshot    TEXT NOT NULL,
	-- stream sequence of the declaration: the list's order and cursor
	declared_seq INTEGER NOT NULL DEFAULT 0
);
`

// eventsIndex serves timelines. A rebuild creates it once its events are
// in (Finish): one sort instead of a random insert per event.
const eventsIndex = `CREATE INDEX IF NOT EXISTS events_incident ON events (incident_id, seq);`

// indexes serve the list: newest first, all or by open/closed, a page at a
// time, without sorting the incidents. Created after migrate, which adds
// the column they need to an older store.
const indexes = `
DROP INDEX IF EXISTS incidents_open;
CREATE INDEX IF NOT EXISTS incidents_declared ON incidents (declared_seq);
CREATE INDEX IF NOT EXISTS incidents_open_declared ON incidents (open, declared_seq);
`

// migrate brings a store written by an older version up to the schema:
// declared_seq is filled from the events table; the events' actorname and
// via start empty (`hikeshi replay timeline` fills them from the stream).
func migrate(db *sql.DB) error {
	for _, m := range []struct{ table, column, sql string }{
		{"incidents", "declared_seq", `ALTER TABLE incidents ADD COLUMN declared_seq INTEGER NOT NULL DEFAULT 0;
			UPDATE incidents SET declared_seq = (SELECT min(seq) FROM events WHERE incident_id = incidents.id)`},
		{"events", "actorname", `ALTER TABLE events ADD COLUMN actorname TEXT NOT NULL DEFAULT ''`},
		{"events", "via", `ALTER TABLE events ADD COLUMN via TEXT NOT NULL DEFAULT ''`},
		{"events", "occurred_at", `ALTER TABLE events ADD COLUMN occurred_at TEXT NOT NULL DEFAULT '';
			UPDATE events SET occurred_at = coalesce(strftime('%Y-%m-%dT%H:%M:%fZ',
				coalesce(CASE WHEN json_valid(data) THEN json_extract(data, '$.occurred_at') END, time)), time)`},
	} {
		var has int
		if err := db.QueryRow(`SELECT count(*) FROM pragma_table_info(?) WHERE name = ?`, m.table, m.column).Scan(&has); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		if has > 0 {
			continue
		}
		if _, err := db.Exec(m.sql); err != nil {
			return fmt.Errorf("migrate: add %s.%s: %w", m.table, m.column, err)
		}
	}
	if _, err := db.Exec(indexes); err != nil {
		return fmt.Errorf("migrate: indexes: %w", err)
	}
	return nil
}

// maxConns bounds the connections to the database.
const maxConns = 8

// Open opens (creating when needed) the database at path.
func Open(path string) (*Store, error) { return open(path, false) }

// OpenScratch opens a database that is being built from scratch and will be
// renamed into place only when complete (a rebuild): it skips fsync, since
// a crash just means building it again.
func OpenScratch(path string) (*Store, error) { return open(path, true) }

func open(path string, scratch bool) (*Store, error) {
	db, err := openDB(path, scratch, schema)
	if err != nil {
		return nil, fmt.Errorf("timeline store %s: %w", path, err)
	}
	if err := migrate(db); err != nil {
		db.Close()
		return nil, fmt.Errorf("timeline store %s: %w", path, err)
	}
	if scratch {
		if _, err := db.Exec(`DROP INDEX IF EXISTS events_incident`); err != nil {
			db.Close()
			return nil, fmt.Errorf("timeline store %s: %w", path, err)
		}
	}
	s := &Store{db: db, path: path, waiters: map[string]chan struct{}{}}
	if !scratch {
		if s.writer, err = db.Conn(context.Background()); err == nil {
			_, err = s.writer.ExecContext(context.Background(), fmt.Sprintf(pragmaWALCheckpoint, writerWALPages))
		}
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("timeline store %s: %w", path, err)
		}
	}
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
		if *p.stmt, err = db.Prepare(p.q); err != nil {
			s.Close()
			return nil, fmt.Errorf("timeline store %s: prepare: %w", path, err)
		}
	}
	return s, nil
}

// openDB opens the database at path with the pragmas every store here
// uses and creates its schema.
func openDB(path string, scratch bool, schema string) (*sql.DB, error) {
	q := url.Values{}
	// NORMAL in WAL mode: a power loss may drop the last commits, but never
	// splits rows from their checkpoint, and the stream replays the rest.
	journal, sync := "WAL", "NORMAL"
	if scratch {
		journal, sync = "OFF", "OFF"
		// A rebuild writes every page once: a large cache (given back at
		// close) keeps its indexes in memory meanwhile.
		q.Add("_pragma", "cache_size(-65536)")
	}
	q.Add("_pragma", "journal_mode("+journal+")")
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "synchronous("+sync+")")
	q.Add("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, err
	}
	// Keep the connections: each new one re-runs the pragmas and reads the
	// schema, which costs more than most queries. The bound queues readers
	// (long polls woken by the same commit) instead of opening one
	// connection each.
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	if _, err := db.Exec(schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("schema: %w", err)
	}
	return db, nil
}

// Finish creates the indexes a store opened with OpenScratch was filled
// without.
func (s *Store) Finish(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, eventsIndex); err != nil {
		return fmt.Errorf("timeline: index events: %w", err)
	}
	return nil
}

// Path is where the database lives.
func (s *Store) Path() string { return s.path }

// Close closes the database.
func (s *Store) Close() error {
	for _, st := range []*sql.Stmt{s.stmts.checkpoint, s.stmts.insEvent, s.stmts.insEvent1, s.stmts.upInc, s.stmts.saveCheckpoint, s.stmts.snapshot, s.stmts.timeline} {
		if st != nil {
			_ = st.Close()
		}
	}
	if s.writer != nil {
		_ = s.writer.Close()
	}
	return s.db.Close()
}

// beginWrite starts a write transaction on the writer connection; end
// must be called once the transaction is over.
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

// Bulk settings of the writing connection: a page cache that holds the
// indexes being written, and a WAL that is copied back into the database
// less often, so a page written many times goes to the file once.
const (
	bulkCacheKiB    = 64 << 10
	bulkWALPages    = 16384
	defaultCacheKiB = 2000 // SQLite's default
	// writerWALPages: the projector commits often and touches the same
	// pages (the events' last page, the incident index) again and again;
	// copying the WAL back every 4,096 pages instead of SQLite's 1,000
	// copies each of them once per many commits.
	writerWALPages      = 4096
	pragmaCacheSize     = "PRAGMA cache_size = -%d"
	pragmaWALCheckpoint = "PRAGMA wal_autocheckpoint = %d"
)

// BulkWrite sets the writing connection up for a long run of large
// transactions (a projector catching up a long way): the indexes being
// written stay in memory instead of going to and from the file. restore
// puts SQLite's defaults back and frees the cache.
func (s *Store) BulkWrite(ctx context.Context) (restore func(), err error) {
	if s.writer == nil {
		return func() {}, nil
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	for _, q := range []string{fmt.Sprintf(pragmaCacheSize, bulkCacheKiB), fmt.Sprintf(pragmaWALCheckpoint, bulkWALPages)} {
		if _, err := s.writer.ExecContext(ctx, q); err != nil {
			return nil, fmt.Errorf("timeline: bulk write: %w", err)
		}
	}
	return func() {
		s.wmu.Lock()
		defer s.wmu.Unlock()
		for _, q := range []string{fmt.Sprintf(pragmaCacheSize, defaultCacheKiB), fmt.Sprintf(pragmaWALCheckpoint, writerWALPages), "PRAGMA shrink_memory"} {
			_, _ = s.writer.ExecContext(context.Background(), q)
		}
	}, nil
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
}

func (in *eventInserter) add(ctx context.Context, row ...any) error {
	in.args = append(in.args, row...)
	if len(in.args) == eventChunk*eventCols {
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
	st, err := in.tx.PrepareContext(ctx, insertEvents(len(in.args)/eventCols))
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
	tx, end, err := s.beginWrite(ctx)
	if err != nil {
		return 0, fmt.Errorf("timeline: begin: %w", err)
	}
	defer end()
	defer tx.Rollback()
	var cp uint64
	if err := tx.StmtContext(ctx, s.stmts.checkpoint).QueryRowContext(ctx, projector).Scan(&cp); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("timeline: checkpoint: %w", err)
	}
	upInc := tx.StmtContext(ctx, s.stmts.upInc)
	defer upInc.Close()
	ins := &eventInserter{tx: tx, full: tx.StmtContext(ctx, s.stmts.insEvent), one: tx.StmtContext(ctx, s.stmts.insEvent1)}
	defer ins.full.Close()
	defer ins.one.Close()
	applied := 0
	touched := map[string]struct{}{}
	for _, c := range changes {
		if c.Event.Seq <= cp {
			continue
		}
		id, _ := events.IncidentID(c.Event.Subject)
		if err := ins.add(ctx, c.Event.Seq, c.Event.ID, id, c.Event.Type,
			c.Event.Time.UTC().Format(time.RFC3339Nano), c.Event.Actor, string(c.Data), c.Event.ActorName, c.Event.Via, c.occurred()); err != nil {
			return 0, err
		}
		if r := c.Incident; r != nil {
			if _, err := upInc.ExecContext(ctx, r.ID, r.CaseNumber, r.Status, r.Open,
				r.DeclaredAt.UTC().Format(time.RFC3339Nano), r.Version, string(r.Snapshot), r.DeclaredSeq); err != nil {
				return 0, fmt.Errorf("timeline: incident %s: %w", r.ID, err)
			}
		}
		touched[id] = struct{}{}
		cp = c.Event.Seq
		applied++
	}
	if err := ins.flush(ctx); err != nil {
		return 0, err
	}
	if applied == 0 {
		return 0, nil
	}
	if _, err := tx.StmtContext(ctx, s.stmts.saveCheckpoint).ExecContext(ctx, projector, cp); err != nil {
		return 0, fmt.Errorf("timeline: save checkpoint: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("timeline: commit: %w", err)
	}
	s.wake(touched)
	return applied, nil
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
		if _, err := upInc.ExecContext(ctx, r.ID, r.CaseNumber, r.Status, r.Open,
			r.DeclaredAt.UTC().Format(time.RFC3339Nano), r.Version, string(r.Snapshot), r.DeclaredSeq); err != nil {
			return fmt.Errorf("timeline: incident %s: %w", r.ID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("timeline: commit: %w", err)
	}
	return nil
}

func (s *Store) wake(ids map[string]struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id := range ids {
		if ch, ok := s.waiters[id]; ok {
			close(ch)
			delete(s.waiters, id)
		}
	}
}

// Changed returns a channel closed at the next commit in this process that
// adds events to incident id. Waking only the waiters of that incident
// keeps a busy projector from making every long poll query again.
func (s *Store) Changed(id string) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, ok := s.waiters[id]
	if !ok {
		ch = make(chan struct{})
		s.waiters[id] = ch
	}
	return ch
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
	err := s.db.QueryRowContext(ctx, `SELECT id FROM incidents WHERE case_number = ? COLLATE NOCASE`, caseNumber).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	return id, err
}

// ListFilter selects incidents: open, closed or all (""), at most Limit
// (0: all), declared before the incident Before (an id or case number).
type ListFilter struct {
	Status string
	Limit  int
	Before string
}

// listQuery is the list's SQL: an index walk from the newest, stopping at
// the limit, whatever the number of incidents.
func listQuery(f ListFilter) string {
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
		err := s.db.QueryRowContext(ctx, `SELECT declared_seq FROM incidents WHERE id = ? OR case_number = ? COLLATE NOCASE`, f.Before, f.Before).Scan(&seq)
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
	return s.snapshots(ctx, listQuery(f), args...)
}

// snapshots runs a query of incident snapshots and returns them in order.
func (s *Store) snapshots(ctx context.Context, q string, args ...any) ([]json.RawMessage, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
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
	rows, err = tx.QueryContext(ctx, `SELECT id, case_number, status, open, declared_at, version, snapshot, declared_seq FROM incidents ORDER BY id`)
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
