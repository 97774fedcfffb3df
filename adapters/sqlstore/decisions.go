package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"runtime"
	"strings"
	"time"
)

// The decisions log keeps, per stream sequence, what a projector decided
// for one message (the signal projector: the rule, the route, where the
// signal went), with the columns it is searched by and the rest as JSON.
// It is bounded: Log says what a commit prunes.

// Decision is one row of the decisions log.
type Decision struct {
	Seq                                       uint64
	Time                                      time.Time
	Source, Fingerprint, Route, Rule, Flagged string
	Data                                      []byte // the whole record, JSON
}

// Log is what a commit appends to the decisions log, and how it bounds it.
type Log struct {
	Decisions []Decision
	// Keep is how many stream sequences back decisions are kept (0: no
	// bound): at most Keep rows.
	Keep uint64
	// MaxAge drops decisions older than Now-MaxAge (0: no bound).
	MaxAge time.Duration
	Now    time.Time
}

// decisionChunk is the rows one insert statement writes.
const decisionChunk = 64

const decisionCols = 8

func insertDecisions(rows int) string {
	return `INSERT INTO decisions (seq, at, source, fingerprint, route, rule, flagged, data) VALUES ` +
		strings.TrimSuffix(strings.Repeat(`(?, ?, ?, ?, ?, ?, ?, ?), `, rows), ", ") +
		` ON CONFLICT (seq) DO UPDATE SET at = excluded.at, source = excluded.source, fingerprint = excluded.fingerprint,
		route = excluded.route, rule = excluded.rule, flagged = excluded.flagged, data = excluded.data`
}

// appendLog writes log in tx, chunk by chunk, then prunes: rows more than
// Keep sequences below seq, then the oldest rows while they are older than
// MaxAge (rows come in sequence order, so the scan stops at the first
// young one).
func (s *State) appendLog(ctx context.Context, tx *sql.Tx, log *Log, seq uint64) error {
	if log == nil {
		return nil
	}
	// Full chunks go through one prepared statement, the rest row by row:
	// no statement is parsed per commit.
	logN, log1 := tx.StmtContext(ctx, s.logN), tx.StmtContext(ctx, s.log1)
	defer logN.Close()
	defer log1.Close()
	args := make([]any, 0, decisionCols*decisionChunk)
	for _, d := range log.Decisions {
		args = append(args, int64(d.Seq), d.Time.UnixNano(), d.Source, d.Fingerprint, d.Route, d.Rule, d.Flagged, d.Data)
		if len(args) == cap(args) {
			if _, err := logN.ExecContext(ctx, args...); err != nil {
				return fmt.Errorf("decisions: %w", err)
			}
			args = args[:0]
			runtime.Gosched()
		}
	}
	for i := 0; i < len(args); i += decisionCols {
		if _, err := log1.ExecContext(ctx, args[i:i+decisionCols]...); err != nil {
			return fmt.Errorf("decisions: %w", err)
		}
	}
	if log.Keep > 0 && seq > log.Keep {
		if _, err := tx.ExecContext(ctx, s.d.rebind(`DELETE FROM decisions WHERE seq <= ?`), int64(seq-log.Keep)); err != nil {
			return fmt.Errorf("decisions: prune: %w", err)
		}
	}
	if log.MaxAge > 0 {
		if _, err := tx.ExecContext(ctx, s.d.rebind(`DELETE FROM decisions WHERE seq < coalesce(
			(SELECT seq FROM decisions WHERE at >= ? ORDER BY seq LIMIT 1), 9223372036854775807)`),
			log.Now.Add(-log.MaxAge).UnixNano()); err != nil {
			return fmt.Errorf("decisions: prune: %w", err)
		}
	}
	return nil
}

// DecisionFilter selects decisions; empty fields select all.
type DecisionFilter struct {
	Source, Fingerprint, Route, Rule string
	Flagged                          *bool
	// Before pages back: only sequences below it (0: from the newest).
	Before uint64
	// Since hides decisions older than it.
	Since time.Time
	Limit int
}

// Decisions lists decisions, newest first.
func (s *State) Decisions(ctx context.Context, f DecisionFilter) ([]Decision, error) {
	var where []string
	var args []any
	for _, c := range []struct{ col, v string }{
		{"source", f.Source}, {"fingerprint", f.Fingerprint}, {"route", f.Route}, {"rule", f.Rule},
	} {
		if c.v != "" {
			where = append(where, c.col+" = ?")
			args = append(args, c.v)
		}
	}
	if f.Flagged != nil && *f.Flagged {
		where = append(where, "flagged != ''")
	} else if f.Flagged != nil {
		where = append(where, "flagged = ''")
	}
	if f.Before > 0 {
		where = append(where, "seq < ?")
		args = append(args, int64(f.Before))
	}
	if !f.Since.IsZero() {
		where = append(where, "at >= ?")
		args = append(args, f.Since.UnixNano())
	}
	q := `SELECT seq, at, source, fingerprint, route, rule, flagged, data FROM decisions`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY seq DESC LIMIT ?"
	args = append(args, max(f.Limit, 1))
	rows, err := s.db.QueryContext(ctx, s.d.rebind(q), args...)
	if err != nil {
		return nil, fmt.Errorf("decisions: %w", err)
	}
	defer rows.Close()
	var out []Decision
	for rows.Next() {
		var d Decision
		var seq, at int64
		if err := rows.Scan(&seq, &at, &d.Source, &d.Fingerprint, &d.Route, &d.Rule, &d.Flagged, &d.Data); err != nil {
			return nil, fmt.Errorf("decisions: %w", err)
		}
		d.Seq, d.Time = uint64(seq), time.Unix(0, at).UTC()
		out = append(out, d)
	}
	return out, rows.Err()
}
