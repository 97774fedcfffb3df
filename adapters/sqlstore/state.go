package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"strings"
)

// State is a projector's own state, one value per key, on disk: a storm of
// distinct keys (one per alert fingerprint) costs disk, not memory, and the
// values and the checkpoint are committed together.
type State struct {
	db                       *sql.DB
	d                        Dialect
	get, put, putN, cp, save *sql.Stmt
	// log1 and logN insert one decision and a chunk of them.
	log1, logN *sql.Stmt
}

// StateChunk is the rows one upsert statement writes.
const StateChunk = 64

func upsertState(rows int) string {
	return `INSERT INTO state (key, val) VALUES (?, ?)` + strings.Repeat(`, (?, ?)`, rows-1) +
		` ON CONFLICT (key) DO UPDATE SET val = excluded.val`
}

// NewState returns the state over db, which holds its schema, speaking d.
// The state owns db: Close closes it.
func NewState(db *sql.DB, d Dialect) (*State, error) {
	s := &State{db: db, d: d}
	for _, p := range []struct {
		stmt **sql.Stmt
		q    string
	}{
		{&s.get, `SELECT val FROM state WHERE key = ?`},
		{&s.put, upsertState(1)},
		{&s.putN, upsertState(StateChunk)},
		{&s.log1, insertDecisions(1)},
		{&s.logN, insertDecisions(decisionChunk)},
		{&s.cp, `SELECT seq FROM checkpoint WHERE id = 1`},
		{&s.save, `INSERT INTO checkpoint (id, seq) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET seq = excluded.seq`},
	} {
		var err error
		if *p.stmt, err = db.Prepare(d.rebind(p.q)); err != nil {
			s.Close()
			return nil, fmt.Errorf("state store: prepare: %w", err)
		}
	}
	return s, nil
}

// Close closes the database.
func (s *State) Close() error {
	for _, st := range []*sql.Stmt{s.get, s.put, s.putN, s.log1, s.logN, s.cp, s.save} {
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
	return s.CommitLog(ctx, vals, nil, seq)
}

// CommitLog writes vals, appends log to the decisions log and prunes it,
// and writes the checkpoint seq, in one transaction: the log holds exactly
// the decisions of the committed stream sequences.
func (s *State) CommitLog(ctx context.Context, vals map[string][]byte, log *Log, seq uint64) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("state: begin: %w", err)
	}
	defer tx.Rollback()
	// Rows go chunk by chunk, one statement each: a storm's batch writes
	// a row per new fingerprint. Between chunks the commit yields, so that
	// a large one does not hold a core for milliseconds ahead of requests.
	put, putN := tx.StmtContext(ctx, s.put), tx.StmtContext(ctx, s.putN)
	defer put.Close()
	defer putN.Close()
	args := make([]any, 0, 2*StateChunk)
	for k, v := range vals {
		args = append(args, k, v)
		if len(args) == cap(args) {
			if _, err := putN.ExecContext(ctx, args...); err != nil {
				return fmt.Errorf("state: %w", err)
			}
			args = args[:0]
			runtime.Gosched()
		}
	}
	for i := 0; i < len(args); i += 2 {
		if _, err := put.ExecContext(ctx, args[i], args[i+1]); err != nil {
			return fmt.Errorf("state %s: %w", args[i], err)
		}
	}
	if err := s.appendLog(ctx, tx, log, seq); err != nil {
		return err
	}
	if _, err := tx.StmtContext(ctx, s.save).ExecContext(ctx, seq); err != nil {
		return fmt.Errorf("state: checkpoint: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("state: commit: %w", err)
	}
	return nil
}
