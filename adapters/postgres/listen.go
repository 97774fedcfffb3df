package postgres

import (
	"context"
	"time"

	"github.com/hikeshi/hikeshi/adapters/sqlstore"
	"github.com/jackc/pgx/v5"
)

// channel is the notification channel of the store in schema: each commit
// notifies it once per incident it added events to, with the incident's
// id; a replaced store notifies wakeAll.
func channel(schema string) string { return "hikeshi_" + schema }

// wakeAll is the payload that wakes every waiter (no incident has it as id).
const wakeAll = "*"

// listen wakes st's waiters at the commits of every process (this one
// included) until stop is called. While the connection is down it retries;
// when it is back, every waiter is woken, since notifications were missed.
func listen(cfg *pgx.ConnConfig, ch string, st *sqlstore.Store) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for backoff := 100 * time.Millisecond; ctx.Err() == nil; backoff = min(2*backoff, 5*time.Second) {
			if listenOnce(ctx, cfg, ch, st) {
				backoff = 100 * time.Millisecond
			}
			st.WakeAll()
			select {
			case <-ctx.Done():
			case <-time.After(backoff):
			}
		}
	}()
	return func() { cancel(); <-done }
}

// listenOnce holds one connection listening on ch until it fails or ctx
// ends; it reports whether it got as far as listening.
func listenOnce(ctx context.Context, cfg *pgx.ConnConfig, ch string, st *sqlstore.Store) bool {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return false
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{ch}.Sanitize()); err != nil {
		return false
	}
	// Commits between the last notification and this LISTEN were missed.
	st.WakeAll()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return true
		}
		if n.Payload == wakeAll {
			st.WakeAll()
		} else {
			st.Wake(n.Payload)
		}
	}
}
