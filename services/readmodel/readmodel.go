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
	// Begin starts one transaction of projector's changes, added in parts,
	// with the checkpoint written at its commit.
	Begin(ctx context.Context, projector string) (*Batch, error)
	// PutIncidents writes incident rows outside any checkpoint (a rebuild).
	PutIncidents(ctx context.Context, rows []Row) error
	// Changed is closed at the next commit, by any process, that adds
	// events to incident id.
	Changed(id string) <-chan struct{}
	// OnChanged runs fn once, at the same moment, without a goroutine
	// waiting meanwhile; cancel forgets fn. fn must not block.
	OnChanged(id string, fn func()) (cancel func())

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

// State is a projector's own state (the signal projector's): values by
// key and a decisions log, committed with the projector's checkpoint.
type State interface {
	Get(ctx context.Context, key string) (val []byte, ok bool, err error)
	Keys(ctx context.Context, fn func(key string)) error
	// Checkpoint is the last stream sequence committed, 0 if none.
	Checkpoint(ctx context.Context) (uint64, error)
	Commit(ctx context.Context, vals map[string][]byte, seq uint64) error
	// CommitLog writes vals, appends log and prunes it, and writes the
	// checkpoint seq, in one transaction.
	CommitLog(ctx context.Context, vals map[string][]byte, log *Log, seq uint64) error
	Decisions(ctx context.Context, f DecisionFilter) ([]Decision, error)
	Close() error
}

var (
	_ Store   = (*sqlite.Store)(nil)
	_ Store   = (*postgres.Store)(nil)
	_ Rebuild = (*sqlite.Rebuild)(nil)
	_ Rebuild = (*postgres.Rebuild)(nil)
	_ State   = (*sqlite.State)(nil)
	_ State   = (*postgres.State)(nil)
)

// The store's types, whichever the database.
type (
	Row        = sqlstore.Row
	Change     = sqlstore.Change
	Batch      = sqlstore.Batch
	Entry      = sqlstore.Entry
	Order      = sqlstore.Order
	ListFilter = sqlstore.ListFilter
	Search     = sqlstore.Search
	Milestones = sqlstore.Milestones
	Contents   = sqlstore.Contents

	Decision       = sqlstore.Decision
	Log            = sqlstore.Log
	DecisionFilter = sqlstore.DecisionFilter
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

// OpenState opens a projector's state: in PostgreSQL when url is a
// postgres:// URL, else (url empty) in the SQLite file at path.
func OpenState(ctx context.Context, url, path string) (State, error) {
	if err := checkURL(url); err != nil {
		return nil, err
	}
	if url != "" {
		return stateOpened(postgres.OpenState(ctx, url))
	}
	return stateOpened(sqlite.OpenState(path))
}

// DescribeState names the state OpenState(url, path) opens, for messages.
func DescribeState(url, path string) string {
	if url != "" {
		return postgres.Redacted(url) + " (schema " + postgres.StateSchema + ")"
	}
	return path
}

// SetAsideState moves the state in PostgreSQL at url out of the way of a
// rebuild; the returned restore puts it back, dropping what was built.
// It names where the old state went ("": there was none).
func SetAsideState(ctx context.Context, url string) (kept string, restore func(context.Context) error, err error) {
	if kept, err = postgres.SetAsideState(ctx, url); err != nil {
		return "", nil, err
	}
	restore = func(ctx context.Context) error { return postgres.RestoreState(ctx, url, kept) }
	if kept != "" {
		kept = "schema " + kept + " of " + postgres.Redacted(url)
	}
	return kept, restore, nil
}

func stateOpened[S State](st S, err error) (State, error) {
	if err != nil {
		return nil, err
	}
	return st, nil
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
