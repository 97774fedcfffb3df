// Package postgres keeps the timeline store, the read model of the
// incident stream, in PostgreSQL (jackc/pgx/v5), so that any number of hub
// replicas read and write one store and need no shared disk. The queries
// are sqlstore's, shared with SQLite; what is PostgreSQL's own is here:
// the connection, the versioned schema migrations, the wakeups of other
// replicas (LISTEN/NOTIFY) and the rebuild beside the live store (a schema
// renamed into place).
package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/hikeshi/hikeshi/adapters/sqlstore"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// Schema is where the timeline store's tables live; a rebuild fills
// Schema+"_rebuild" and renames it into place.
const Schema = "timeline"

// maxConns bounds the connections of one process to the database.
const maxConns = 8

// Store is the timeline store in a PostgreSQL database.
type Store struct {
	*sqlstore.Store
	cfg    *pgx.ConnConfig
	schema string
	stop   func() // stops the listener
}

// IsURL reports whether s names a PostgreSQL database (postgres:// or
// postgresql://).
func IsURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// Open connects to the database at url (postgres://user@host/db?…),
// brings the store's schema up to date and starts listening for the
// commits of other processes.
func Open(ctx context.Context, url string) (*Store, error) {
	return open(ctx, url, Schema, false)
}

func open(ctx context.Context, url, schema string, scratch bool) (*Store, error) {
	db, cfg, err := connect(ctx, url, schema, timelineMigrations, scratch)
	if err != nil {
		return nil, fmt.Errorf("timeline store: %w", err)
	}
	s := &Store{cfg: cfg, schema: schema}
	d := Dialect
	if !scratch { // no one waits on a rebuild: Replace wakes them all
		d.Notify = func(ctx context.Context, tx *sql.Tx, ids []string) error {
			_, err := tx.ExecContext(ctx, `SELECT pg_notify($1, id) FROM unnest($2::text[]) AS id`, channel(schema), ids)
			return err
		}
	}
	if s.Store, err = sqlstore.New(db, d); err != nil {
		return nil, fmt.Errorf("timeline store %s: %w", describe(cfg), err)
	}
	if !scratch {
		s.stop = listen(cfg, channel(schema), s.Store)
	}
	return s, nil
}

// connect opens a pool of connections to the database at url whose
// tables are those of schema, brought up to date by ms. The error names
// the database.
func connect(ctx context.Context, url, schema string, ms migrations, scratch bool) (*sql.DB, *pgx.ConnConfig, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		// The error quotes the URL with its password masked.
		return nil, nil, err
	}
	cfg.RuntimeParams["search_path"] = schema
	if scratch {
		// A rebuild is put in place only when complete: a crash means
		// building it again, so its commits need not wait for the disk.
		cfg.RuntimeParams["synchronous_commit"] = "off"
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("%s: %w (check that the server runs and that --store names it, its user and password: PGPASSWORD or ~/.pgpass)", describe(cfg), err)
	}
	if err := ms.migrate(ctx, db, schema, len(ms)); err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("%s: %w", describe(cfg), err)
	}
	return db, cfg, nil
}

// Redacted is url without its credentials and options, for messages; an
// unparsable url is named only as such.
func Redacted(url string) string {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return "postgres://(unparsable URL)"
	}
	return describe(cfg)
}

func describe(cfg *pgx.ConnConfig) string {
	return fmt.Sprintf("postgres://%s:%d/%s", cfg.Host, cfg.Port, cfg.Database)
}

// Close stops listening and closes the database.
func (s *Store) Close() error {
	if s.stop != nil {
		s.stop()
	}
	return s.Store.Close()
}

// Dialect is PostgreSQL's: numbered placeholders, jsonb operators on the
// JSON text columns, lower() for case folding, ILIKE.
var Dialect = sqlstore.Dialect{
	Numbered: true,
	JSON: func(col, path string) string {
		return `(` + col + `::jsonb #>> '{` + strings.ReplaceAll(path, ".", ",") + `}')`
	},
	True: func(col, field string) string {
		return `coalesce((` + col + `::jsonb -> '` + field + `') = 'true'::jsonb, false)`
	},
	FoldEq:       func(col string) string { return `lower(` + col + `) = lower(?)` },
	Like:         "ILIKE",
	LockApply:    `SELECT pg_advisory_xact_lock(hashtext('hikeshi.apply.' || current_schema() || '.' || ?))`,
	InsertEvents: insertEvents,
}
