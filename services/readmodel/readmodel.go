// Package readmodel is the timeline store as its users see it: the
// interface the SQLite and PostgreSQL stores both satisfy, the types of its
// rows, and Open, which picks the database from the configuration.
package readmodel

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/hikeshi/hikeshi/adapters/postgres"
	"github.com/hikeshi/hikeshi/adapters/sqlite"
	"github.com/hikeshi/hikeshi/adapters/sqlstore"
)

// Store is the timeline store: every event of the incident stream by
// incident, a row per incident, and the checkpoints of the projectors
// that write them.
type Store interface {
	// Checkpoint is the last stream sequence projector applied, 0 if none.
	Checkpoint(ctx context.Context, projector string) (uint64, error)
	// Apply writes changes and the checkpoint in one transaction, skipping
	// those at or below it; it returns how many it applied.
	Apply(ctx context.Context, projector string, changes []Change) (int, error)
	// PutIncidents writes incident rows outside any checkpoint (a rebuild).
	PutIncidents(ctx context.Context, rows []Row) error
	// Changed is closed at the next commit, by any process, that adds
	// events to incident id.
	Changed(id string) <-chan struct{}

	Snapshot(ctx context.Context, id string) (json.RawMessage, error)
	FindByCase(ctx context.Context, caseNumber string) (string, error)
	List(ctx context.Context, f ListFilter) ([]json.RawMessage, error)
	Timeline(ctx context.Context, id string, after uint64, limit int) ([]Entry, error)
	TimelineIn(ctx context.Context, order Order, id string, after uint64, limit int) ([]Entry, error)
	TimelineBefore(ctx context.Context, id string, before uint64, limit int) ([]Entry, error)
	SearchIncidents(ctx context.Context, f Search) ([]json.RawMessage, error)
	CountByStatus(ctx context.Context, f Search) (map[string]int, error)
	Milestones(ctx context.Context, since time.Time) ([]Milestones, error)
	Counts(ctx context.Context) (eventsN, incidentsN int, err error)
	Dump(ctx context.Context) (Contents, error)

	Ping(ctx context.Context) error
	Close() error
}

// Rebuild is a store being filled from scratch beside the live one, which
// it replaces only when complete.
type Rebuild interface {
	Store
	// Finish builds what the store was filled without (indexes).
	Finish(ctx context.Context) error
	// Replace closes the rebuilt store and puts it in place.
	Replace(ctx context.Context) error
	// Discard closes the rebuilt store and removes it.
	Discard(ctx context.Context) error
	// Where names the store being replaced, for messages.
	Where() string
}

var (
	_ Store   = (*sqlite.Store)(nil)
	_ Store   = (*postgres.Store)(nil)
	_ Rebuild = (*sqlite.Rebuild)(nil)
	_ Rebuild = (*postgres.Rebuild)(nil)
)

// The store's types, whichever the database.
type (
	Row        = sqlstore.Row
	Change     = sqlstore.Change
	Entry      = sqlstore.Entry
	Order      = sqlstore.Order
	ListFilter = sqlstore.ListFilter
	Search     = sqlstore.Search
	Milestones = sqlstore.Milestones
	Contents   = sqlstore.Contents
)

// Orders of a timeline.
const (
	Recorded = sqlstore.Recorded
	Occurred = sqlstore.Occurred
)

// ErrNotFound: no such incident in the store.
var ErrNotFound = sqlstore.ErrNotFound

// IsURL reports whether store names a PostgreSQL database rather than
// leaving the store in SQLite.
func IsURL(store string) bool { return postgres.IsURL(store) }

// Describe names the store Open(url, path) opens, for messages (without
// the URL's credentials).
func Describe(url, path string) string {
	if url != "" {
		return postgres.Redacted(url) + " (schema " + postgres.Schema + ")"
	}
	return path
}

// Open opens the store: in PostgreSQL when url is a postgres:// URL, else
// (url empty) in the SQLite file at path.
func Open(ctx context.Context, url, path string) (Store, error) {
	if err := checkURL(url); err != nil {
		return nil, err
	}
	if url != "" {
		return opened(postgres.Open(ctx, url))
	}
	return opened(sqlite.Open(path))
}

// OpenRebuild starts a rebuild of the store Open(url, path) opens.
func OpenRebuild(ctx context.Context, url, path string) (Rebuild, error) {
	if err := checkURL(url); err != nil {
		return nil, err
	}
	if url != "" {
		return rebuilding(postgres.OpenRebuild(ctx, url))
	}
	return rebuilding(sqlite.OpenRebuild(path))
}

// checkURL refuses a store that is neither empty nor a PostgreSQL URL.
func checkURL(url string) error {
	if url != "" && !postgres.IsURL(url) {
		return fmt.Errorf("store %q: give a postgres://user@host/db URL, or none for SQLite in the data dir", url)
	}
	return nil
}

// opened and rebuilding return a failed open as a nil interface, not as a
// nil pointer inside one (which a Close would call).
func opened[S Store](st S, err error) (Store, error) {
	if err != nil {
		return nil, err
	}
	return st, nil
}

func rebuilding[S Rebuild](st S, err error) (Rebuild, error) {
	if err != nil {
		return nil, err
	}
	return st, nil
}
