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
	"fmt"
	"net/url"

	"github.com/hikeshi/hikeshi/adapters/sqlstore"
	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Store is the timeline database in one SQLite file.
type Store struct {
	*sqlstore.Store
	path string
}

// Dialect is SQLite's: json_extract, COLLATE NOCASE, LIKE (which ignores
// ASCII case), and wakeups within the process only.
var Dialect = sqlstore.Dialect{
	JSON: func(col, path string) string { return `json_extract(` + col + `, '$.` + path + `')` },
	True: func(col, field string) string {
		return `coalesce(json_extract(` + col + `, '$.` + field + `'), 0) = 1`
	},
	FoldEq: func(col string) string { return col + ` = ? COLLATE NOCASE` },
	Like:   "LIKE",
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
	data        TEXT NOT NULL,
	-- the actor's display name and who acted for it (events' actorname, via)
	actorname   TEXT NOT NULL DEFAULT '',
	via         TEXT NOT NULL DEFAULT '',
	-- when the fact happened (sqlstore occurredLayout): a backdated note's or a
	-- milestone's own time, else the event's time
	occurred_at TEXT NOT NULL DEFAULT ''
);
` + sqlstore.EventsIndex + `
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
	st, err := sqlstore.New(db, Dialect)
	if err != nil {
		return nil, fmt.Errorf("timeline store %s: %w", path, err)
	}
	if !scratch {
		// One connection writes, so that its page cache, which a bulk
		// write may enlarge (BulkWrite), is one and bounded.
		w, err := db.Conn(context.Background())
		if err == nil {
			_, err = w.ExecContext(context.Background(), fmt.Sprintf(pragmaWALCheckpoint, writerWALPages))
			if err == nil {
				// A catch-up's transactions grow the WAL to hundreds of
				// megabytes; once copied back it is cut to this size.
				_, err = w.ExecContext(context.Background(), fmt.Sprintf("PRAGMA journal_size_limit = %d", walSizeLimit))
			}
			st.UseWriter(w)
		}
		if err != nil {
			st.Close()
			return nil, fmt.Errorf("timeline store %s: %w", path, err)
		}
	}
	return &Store{Store: st, path: path}, nil
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
	walSizeLimit        = 64 << 20
	pragmaCacheSize     = "PRAGMA cache_size = -%d"
	pragmaWALCheckpoint = "PRAGMA wal_autocheckpoint = %d"
)

// BulkWrite sets the writing connection up for a long run of large
// transactions (a projector catching up coming events onto a store that
// holds held): the indexes being written stay in memory instead of going
// to and from the file. When fewer events are held than are coming, it
// also drops the index of events by incident, which every transaction
// would change on nearly every page, and builds it again in one sort at
// restore; timelines read meanwhile scan the events, and a store left
// without it by a crash gets it back when next opened (the schema). restore
// builds the index and puts SQLite's defaults back.
func (s *Store) BulkWrite(ctx context.Context, held, coming uint64) (restore func(context.Context) error, err error) {
	set := []string{fmt.Sprintf(pragmaCacheSize, bulkCacheKiB), fmt.Sprintf(pragmaWALCheckpoint, bulkWALPages)}
	if held < coming {
		set = append(set, `DROP INDEX IF EXISTS events_incident`)
	}
	if err := s.onWriter(ctx, set...); err != nil {
		return nil, fmt.Errorf("timeline: bulk write: %w", err)
	}
	return func(ctx context.Context) error {
		err := s.onWriter(ctx, sqlstore.EventsIndex)
		if err != nil {
			err = fmt.Errorf("timeline: index events: %w", err)
		}
		_ = s.onWriter(context.WithoutCancel(ctx), fmt.Sprintf(pragmaCacheSize, defaultCacheKiB), fmt.Sprintf(pragmaWALCheckpoint, writerWALPages), "PRAGMA shrink_memory")
		return err
	}, nil
}

// onWriter runs statements on the writing connection, in turn.
func (s *Store) onWriter(ctx context.Context, stmts ...string) error {
	return s.OnWriter(ctx, func(ctx context.Context, w *sql.Conn) error {
		for _, q := range stmts {
			if _, err := w.ExecContext(ctx, q); err != nil {
				return err
			}
		}
		return nil
	})
}

// Path is where the database lives.
func (s *Store) Path() string { return s.path }

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
	// A statement that writes many rows keeps its undo journal (for a
	// constraint failure midway) in memory instead of a temporary file.
	q.Add("_pragma", "temp_store(memory)")
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
