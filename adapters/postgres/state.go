package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/hikeshi/hikeshi/adapters/sqlstore"
	"github.com/jackc/pgx/v5"
)

// StateSchema is where the signal projector's state lives.
const StateSchema = "signals"

// State is a projector's own state (sqlstore.State) in PostgreSQL, so that
// the replica that takes the projector over finds it where the last one
// left it.
type State struct{ *sqlstore.State }

var stateMigrations = migrations{
	// 1: the values by key, the checkpoint, the decisions log.
	`CREATE TABLE state (
		key TEXT PRIMARY KEY,
		val BYTEA NOT NULL
	);
	CREATE TABLE checkpoint (
		id  INTEGER PRIMARY KEY CHECK (id = 1),
		seq BIGINT NOT NULL
	);
	CREATE TABLE decisions (
		seq         BIGINT PRIMARY KEY,
		at          BIGINT NOT NULL,
		source      TEXT NOT NULL,
		fingerprint TEXT NOT NULL,
		route       TEXT NOT NULL,
		rule        TEXT NOT NULL,
		flagged     TEXT NOT NULL,
		data        BYTEA NOT NULL
	);`,
}

// OpenState connects to the database at url and brings the state's schema
// up to date.
func OpenState(ctx context.Context, url string) (*State, error) {
	db, _, err := connect(ctx, url, StateSchema, stateMigrations, false)
	if err != nil {
		return nil, fmt.Errorf("state store: %w", err)
	}
	s, err := sqlstore.NewState(db, Dialect)
	if err != nil {
		return nil, fmt.Errorf("state store: %w", err)
	}
	return &State{s}, nil
}

// SetAsideState renames the state's schema to StateSchema+"_before_replay"
// (dropping an earlier one), so that a replay builds the state anew; it
// returns the new name, or "" when there was no state.
func SetAsideState(ctx context.Context, url string) (string, error) {
	kept := StateSchema + "_before_replay"
	err := renameSchema(ctx, url, StateSchema, kept)
	if errors.Is(err, errNoSchema) {
		return "", nil
	}
	return kept, err
}

// RestoreState undoes SetAsideState, dropping the state made since.
func RestoreState(ctx context.Context, url, kept string) error {
	if kept == "" {
		return nil
	}
	return renameSchema(ctx, url, kept, StateSchema)
}

var errNoSchema = errors.New("no such schema")

// renameSchema renames schema from to to, replacing to, in one
// transaction; errNoSchema when from does not exist.
func renameSchema(ctx context.Context, url, from, to string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return fmt.Errorf("state store: %w", err)
	}
	defer conn.Close(context.Background())
	tx, err := conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("state store: %w", err)
	}
	defer tx.Rollback(context.Background())
	var n int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM pg_namespace WHERE nspname = $1`, from).Scan(&n); err != nil {
		return fmt.Errorf("state store: %w", err)
	}
	if n == 0 {
		return errNoSchema
	}
	if _, err := tx.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{to}.Sanitize()+` CASCADE`); err != nil {
		return fmt.Errorf("state store: %w", err)
	}
	if _, err := tx.Exec(ctx, `ALTER SCHEMA `+pgx.Identifier{from}.Sanitize()+` RENAME TO `+pgx.Identifier{to}.Sanitize()); err != nil {
		return fmt.Errorf("state store: %w", err)
	}
	return tx.Commit(ctx)
}
