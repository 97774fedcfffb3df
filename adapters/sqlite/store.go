// Package sqlite is the timeline store: a read model of the incident stream
// in SQLite (modernc.org/sqlite, no cgo). Each projector's checkpoint, the
// last stream sequence it applied, is written in the same transaction as
// its rows, so a redelivered event is skipped and a crash loses nothing.
package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
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

	mu      sync.Mutex
	changed chan struct{} // closed and replaced after every commit
}

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
	data        TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_incident ON events (incident_id, seq);
CREATE TABLE IF NOT EXISTS incidents (
	id          TEXT PRIMARY KEY,
	case_number TEXT NOT NULL UNIQUE,
	status      TEXT NOT NULL,
	open        INTEGER NOT NULL,
	declared_at TEXT NOT NULL,
	version     INTEGER NOT NULL,
	snapshot    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS incidents_open ON incidents (open, declared_at);
`

// Open opens (creating when needed) the database at path.
func Open(path string) (*Store, error) {
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "busy_timeout(10000)")
	// NORMAL in WAL mode: a power loss may drop the last commits, but never
	// splits rows from their checkpoint, and the stream replays the rest.
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open timeline store %s: %w", path, err)
	}
	if _, err := db.Exec(schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("timeline store %s: schema: %w", path, err)
	}
	return &Store{db: db, path: path, changed: make(chan struct{})}, nil
}

// Path is where the database lives.
func (s *Store) Path() string { return s.path }

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

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
}

// Change is one event and the incident row it results in.
type Change struct {
	Event    events.Stored
	Data     events.Data // the event's data at its current version
	Incident Row
}

// Checkpoint is the last stream sequence projector applied, 0 if none.
func (s *Store) Checkpoint(ctx context.Context, projector string) (uint64, error) {
	var seq uint64
	err := s.db.QueryRowContext(ctx, `SELECT seq FROM checkpoints WHERE projector = ?`, projector).Scan(&seq)
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
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("timeline: begin: %w", err)
	}
	defer tx.Rollback()
	var cp uint64
	if err := tx.QueryRowContext(ctx, `SELECT seq FROM checkpoints WHERE projector = ?`, projector).Scan(&cp); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("timeline: checkpoint: %w", err)
	}
	insEvent, err := tx.PrepareContext(ctx, `INSERT INTO events (seq, id, incident_id, type, time, actor, data) VALUES (?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return 0, err
	}
	defer insEvent.Close()
	upInc, err := tx.PrepareContext(ctx, `INSERT INTO incidents (id, case_number, status, open, declared_at, version, snapshot)
		VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET status = excluded.status, open = excluded.open, version = excluded.version, snapshot = excluded.snapshot`)
	if err != nil {
		return 0, err
	}
	defer upInc.Close()
	applied := 0
	for _, c := range changes {
		if c.Event.Seq <= cp {
			continue
		}
		data, err := json.Marshal(c.Data)
		if err != nil {
			return 0, fmt.Errorf("timeline: encode seq %d: %w", c.Event.Seq, err)
		}
		id, _ := events.IncidentID(c.Event.Subject)
		if _, err := insEvent.ExecContext(ctx, c.Event.Seq, c.Event.ID, id, c.Event.Type,
			c.Event.Time.UTC().Format(time.RFC3339Nano), c.Event.Actor, string(data)); err != nil {
			return 0, fmt.Errorf("timeline: insert seq %d: %w", c.Event.Seq, err)
		}
		r := c.Incident
		if _, err := upInc.ExecContext(ctx, r.ID, r.CaseNumber, r.Status, r.Open,
			r.DeclaredAt.UTC().Format(time.RFC3339Nano), r.Version, string(r.Snapshot)); err != nil {
			return 0, fmt.Errorf("timeline: incident %s: %w", r.ID, err)
		}
		cp = c.Event.Seq
		applied++
	}
	if applied == 0 {
		return 0, nil
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO checkpoints (projector, seq) VALUES (?, ?)
		ON CONFLICT (projector) DO UPDATE SET seq = excluded.seq`, projector, cp); err != nil {
		return 0, fmt.Errorf("timeline: save checkpoint: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("timeline: commit: %w", err)
	}
	s.broadcast()
	return applied, nil
}

func (s *Store) broadcast() {
	s.mu.Lock()
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

// Changed returns a channel closed at the next commit in this process.
func (s *Store) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// Snapshot returns the stored summary of an incident.
func (s *Store) Snapshot(ctx context.Context, id string) (json.RawMessage, error) {
	var snap string
	err := s.db.QueryRowContext(ctx, `SELECT snapshot FROM incidents WHERE id = ?`, id).Scan(&snap)
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

// ListFilter selects incidents: open, closed or all ("").
type ListFilter struct {
	Status string
	Limit  int
}

// List returns incident snapshots, newest first.
func (s *Store) List(ctx context.Context, f ListFilter) ([]json.RawMessage, error) {
	q := `SELECT snapshot FROM incidents`
	var args []any
	switch f.Status {
	case "open":
		q += ` WHERE open = 1`
	case "closed":
		q += ` WHERE open = 0`
	}
	q += ` ORDER BY declared_at DESC, id DESC`
	if f.Limit > 0 {
		q += ` LIMIT ?`
		args = append(args, f.Limit)
	}
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

// Entry is one event on an incident's timeline.
type Entry struct {
	Seq   uint64          `json:"seq"`
	ID    string          `json:"id"`
	Type  string          `json:"type"`
	Time  time.Time       `json:"time"`
	Actor string          `json:"actor,omitempty"`
	Data  json.RawMessage `json:"data"`
}

// Timeline returns the incident's events after sequence after, in order.
func (s *Store) Timeline(ctx context.Context, id string, after uint64, limit int) ([]Entry, error) {
	if limit <= 0 {
		limit = 10_000
	}
	rows, err := s.db.QueryContext(ctx, `SELECT seq, id, type, time, actor, data FROM events
		WHERE incident_id = ? AND seq > ? ORDER BY seq LIMIT ?`, id, after, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Entry{}
	for rows.Next() {
		var e Entry
		var t, data string
		if err := rows.Scan(&e.Seq, &e.ID, &e.Type, &t, &e.Actor, &data); err != nil {
			return nil, err
		}
		if e.Time, err = time.Parse(time.RFC3339Nano, t); err != nil {
			return nil, fmt.Errorf("timeline seq %d: time: %w", e.Seq, err)
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
