package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// Rebuild is a timeline store being built from scratch in a schema beside
// the live one, which it replaces only when complete: an interrupted
// rebuild leaves the live store as it was.
type Rebuild struct {
	*Store
	url string
}

// OpenRebuild starts a rebuild of the store at url, dropping what an
// earlier, interrupted one left.
func OpenRebuild(ctx context.Context, url string) (*Rebuild, error) {
	scratch := Schema + "_rebuild"
	if err := dropSchema(ctx, url, scratch); err != nil {
		return nil, err
	}
	st, err := open(ctx, url, scratch, true)
	if err != nil {
		return nil, err
	}
	// The timelines' index is built once the events are in (Finish): one
	// sort instead of an insert into it per event.
	if _, err := st.DB().ExecContext(ctx, `DROP INDEX events_incident`); err != nil {
		return nil, errors.Join(fmt.Errorf("timeline store: %w", err), st.Close())
	}
	return &Rebuild{Store: st, url: url}, nil
}

// Finish builds the index of the timelines.
func (r *Rebuild) Finish(ctx context.Context) error { return r.Store.Store.Finish(ctx) }

// Replace closes the rebuilt store and puts it in place of the live one,
// in one transaction, and wakes the waiters of every replica. It builds
// the index Finish builds when Finish was not called: the live schema's
// migrations are recorded as applied, so nothing would build it later,
// and every timeline read would scan all the events.
func (r *Rebuild) Replace(ctx context.Context) error {
	if err := r.Finish(ctx); err != nil {
		return errors.Join(err, r.Store.Close())
	}
	if err := r.Store.Close(); err != nil {
		return err
	}
	db := stdlib.OpenDB(*r.cfg)
	defer db.Close()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("replace the timeline store: %w", err)
	}
	defer tx.Rollback()
	live, scratch := pgx.Identifier{Schema}.Sanitize(), pgx.Identifier{r.schema}.Sanitize()
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtext($1))`, "hikeshi.migrate."+Schema); err != nil {
		return fmt.Errorf("replace the timeline store: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DROP SCHEMA IF EXISTS `+live+` CASCADE`); err != nil {
		return fmt.Errorf("replace the timeline store: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `ALTER SCHEMA `+scratch+` RENAME TO `+live); err != nil {
		return fmt.Errorf("replace the timeline store: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `SELECT pg_notify($1, $2)`, channel(Schema), wakeAll); err != nil {
		return fmt.Errorf("replace the timeline store: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("replace the timeline store: %w", err)
	}
	return nil
}

// Discard closes the rebuilt store and drops it.
func (r *Rebuild) Discard(ctx context.Context) error {
	cerr := r.Store.Close()
	if err := dropSchema(ctx, r.url, r.schema); err != nil {
		return err
	}
	return cerr
}

// Where names the store a rebuild replaces, for messages.
func (r *Rebuild) Where() string {
	return describe(r.cfg) + " (schema " + Schema + ")"
}

// dropSchema drops schema and everything in it, if it exists.
func dropSchema(ctx context.Context, url, schema string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return fmt.Errorf("timeline store: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{schema}.Sanitize()+` CASCADE`); err != nil {
		return fmt.Errorf("timeline store: drop %s: %w", schema, err)
	}
	return nil
}
