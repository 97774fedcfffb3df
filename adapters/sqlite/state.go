package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// State is a projector's own state, one value per key, on disk: a storm of
// distinct keys (one per alert fingerprint) costs disk, not memory, and the
// values and the checkpoint are committed together.
type State struct {
	db                    *sql.DB
	path                  string
	get, put, cp, save, n *sql.Stmt
}

const stateSchema = `
CREATE TABLE IF NOT EXISTS state (
	key TEXT PRIMARY KEY,
	val BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checkpoint (
	id  INTEGER PRIMARY KEY CHECK (id = 1),
	seq INTEGER NOT NULL
);
`

// OpenState opens (creating when needed) the state database at path.
func OpenState(path string) (*State, error) {
	db, err := openDB(path, false, stateSchema)
	if err != nil {
		return nil, fmt.Errorf("state store %s: %w", path, err)
	}
	s := &State{db: db, path: path}
	for _, p := range []struct {
		stmt **sql.Stmt
		q    string
	}{
		{&s.get, `SELECT val FROM state WHERE key = ?`},
		{&s.put, `INSERT INTO state (key, val) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET val = excluded.val`},
		{&s.cp, `SELECT seq FROM checkpoint WHERE id = 1`},
		{&s.save, `INSERT INTO checkpoint (id, seq) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET seq = excluded.seq`},
		{&s.n, `SELECT count(*) FROM state`},
	} {
		if *p.stmt, err = db.Prepare(p.q); err != nil {
			s.Close()
			return nil, fmt.Errorf("state store %s: prepare: %w", path, err)
		}
	}
	return s, nil
}

// Path is where the database lives.
func (s *State) Path() string { return s.path }

// Close closes the database.
func (s *State) Close() error {
	for _, st := range []*sql.Stmt{s.get, s.put, s.cp, s.save, s.n} {
		if st != nil {
			_ = st.Close()
		}
	}
	return s.db.Close()
}

// Get returns the value of key; ok is false when there is none.
func (s *State) Get(ctx context.Context, key string) (val []byte, ok bool, err error) {
	err = s.get.QueryRowContext(ctx, key).Scan(&val)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("state %s: %w", key, err)
	}
	return val, true, nil
}

// Checkpoint is the last stream sequence committed, 0 if none.
func (s *State) Checkpoint(ctx context.Context) (uint64, error) {
	var seq uint64
	err := s.cp.QueryRowContext(ctx).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return seq, err
}

// Len is the number of keys.
func (s *State) Len(ctx context.Context) (int, error) {
	var n int
	err := s.n.QueryRowContext(ctx).Scan(&n)
	return n, err
}

// Keys calls fn with every key.
func (s *State) Keys(ctx context.Context, fn func(key string)) error {
	rows, err := s.db.QueryContext(ctx, `SELECT key FROM state`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return err
		}
		fn(k)
	}
	return rows.Err()
}

// Commit writes vals and the checkpoint seq in one transaction.
func (s *State) Commit(ctx context.Context, vals map[string][]byte, seq uint64) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("state: begin: %w", err)
	}
	defer tx.Rollback()
	put := tx.StmtContext(ctx, s.put)
	defer put.Close()
	for k, v := range vals {
		if _, err := put.ExecContext(ctx, k, v); err != nil {
			return fmt.Errorf("state %s: %w", k, err)
		}
	}
	if _, err := tx.StmtContext(ctx, s.save).ExecContext(ctx, seq); err != nil {
		return fmt.Errorf("state: checkpoint: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("state: commit: %w", err)
	}
	return nil
}
