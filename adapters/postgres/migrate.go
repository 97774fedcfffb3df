package postgres

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// migrations are a schema's versions, in order: version n is
// migrations[n-1]. A release adds to the end and never edits one that
// shipped; each runs in the transaction that records it.
type migrations []string

// timelineMigrations are the timeline store's (Schema).
var timelineMigrations = migrations{
	// 1: the timeline's events, the incident rows, the checkpoints.
	`CREATE TABLE checkpoints (
		projector TEXT PRIMARY KEY,
		seq       BIGINT NOT NULL
	);
	CREATE TABLE events (
		seq         BIGINT PRIMARY KEY,
		id          TEXT NOT NULL UNIQUE,
		incident_id TEXT NOT NULL,
		type        TEXT NOT NULL,
		time        TEXT NOT NULL,
		actor       TEXT NOT NULL,
		data        TEXT NOT NULL,
		actorname   TEXT NOT NULL DEFAULT '',
		via         TEXT NOT NULL DEFAULT '',
		occurred_at TEXT NOT NULL DEFAULT ''
	);
	CREATE INDEX events_incident ON events (incident_id, seq);
	CREATE TABLE incidents (
		id           TEXT PRIMARY KEY,
		case_number  TEXT NOT NULL UNIQUE,
		status       TEXT NOT NULL,
		open         INTEGER NOT NULL,
		declared_at  TEXT NOT NULL,
		version      BIGINT NOT NULL,
		snapshot     TEXT NOT NULL,
		declared_seq BIGINT NOT NULL DEFAULT 0
	);
	CREATE INDEX incidents_declared ON incidents (declared_seq);
	CREATE INDEX incidents_open_declared ON incidents (open, declared_seq);`,
	// 2: a case number is looked up ignoring case (INC-42, inc-42), and
	// the console lists by last activity.
	`CREATE INDEX incidents_case_folded ON incidents (lower(case_number));
	CREATE INDEX incidents_version ON incidents (version);`,
}

// migrate creates schema when needed and applies to it the migrations up
// to version that its schema_migrations table does not list. Replicas
// starting together take turns: the first migrates, the others find it
// done.
func (ms migrations) migrate(ctx context.Context, db *sql.DB, schema string, version int) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtext($1))`, "hikeshi.migrate."+schema); err != nil {
		return fmt.Errorf("migrate: lock: %w", err)
	}
	q := pgx.Identifier{schema}.Sanitize()
	if _, err := tx.ExecContext(ctx, `CREATE SCHEMA IF NOT EXISTS `+q+`;
		CREATE TABLE IF NOT EXISTS `+q+`.schema_migrations (
			version    INTEGER PRIMARY KEY,
			applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
		)`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	var at int
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM `+q+`.schema_migrations`).Scan(&at); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if at > len(ms) {
		return fmt.Errorf("schema %s is at version %d, newer than this hikeshi knows (%d): run the newer release", schema, at, len(ms))
	}
	if _, err := tx.ExecContext(ctx, `SET LOCAL search_path TO `+q); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	for v := at + 1; v <= version; v++ {
		if _, err := tx.ExecContext(ctx, ms[v-1]); err != nil {
			return fmt.Errorf("migrate to version %d: %w", v, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, v); err != nil {
			return fmt.Errorf("migrate to version %d: %w", v, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}
