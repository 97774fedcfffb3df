package sqlstore

import (
	"context"
	"encoding/json"
	"strings"
)

// Search selects incidents for the web console: by status, severity,
// service and drill, and by text in their titles and notes, most recent
// activity first.
type Search struct {
	// Status is open, closed, one status (investigating, …) or "" for all.
	Status   string
	Severity string
	Service  string
	// Drill and Confidential are "yes", "no" or "" for both.
	Drill        string
	Confidential string
	// Text is matched, case-insensitively, in the title, summary and notes.
	Text string
	// Before is the keyset cursor: incidents whose last activity (their
	// version, a stream sequence) is below it; 0 for the first page.
	Before uint64
	Limit  int
}

// noteType is the note event's type; the events package is not imported
// for one constant's sake in the query text.
const noteType = "io.hikeshi.incident.note_added"

// where builds the conditions of s except its status and cursor, which
// the counts leave out.
func (s Search) where(d Dialect) (conds []string, args []any) {
	if s.Severity != "" {
		conds = append(conds, d.JSON("snapshot", "severity")+` = ?`)
		args = append(args, s.Severity)
	}
	if s.Service != "" {
		conds = append(conds, d.FoldEq(d.JSON("snapshot", "service")))
		args = append(args, s.Service)
	}
	conds = append(conds, flag(d, "drill", s.Drill)...)
	conds = append(conds, flag(d, "confidential", s.Confidential)...)
	if t := strings.TrimSpace(s.Text); t != "" {
		like := "%" + escapeLike(t) + "%"
		l := ` ` + d.Like + ` ? ESCAPE '\'`
		conds = append(conds, `(`+d.JSON("snapshot", "title")+l+`
			OR `+d.JSON("snapshot", "summary")+l+`
			OR case_number`+l+`
			OR EXISTS (SELECT 1 FROM events e WHERE e.incident_id = incidents.id AND e.type = ?
				AND `+d.JSON("e.data", "text")+l+`))`)
		args = append(args, like, like, like, noteType, like)
	}
	return conds, args
}

// flag is the condition on a boolean of the snapshot: "yes", "no", or
// none for "".
func flag(d Dialect, field, want string) []string {
	switch want {
	case "yes":
		return []string{d.True("snapshot", field)}
	case "no":
		return []string{`NOT ` + d.True("snapshot", field)}
	}
	return nil
}

func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// SearchIncidents returns the snapshots s selects, most recent activity
// first, at most s.Limit (0: all).
func (s *Store) SearchIncidents(ctx context.Context, f Search) ([]json.RawMessage, error) {
	conds, args := f.where(s.d)
	switch f.Status {
	case "":
	case "open":
		conds = append(conds, `open = 1`)
	case "closed":
		conds = append(conds, `open = 0`)
	default:
		conds = append(conds, `status = ?`)
		args = append(args, f.Status)
	}
	if f.Before > 0 {
		conds = append(conds, `version < ?`)
		args = append(args, f.Before)
	}
	q := `SELECT snapshot FROM incidents`
	if len(conds) > 0 {
		q += ` WHERE ` + strings.Join(conds, ` AND `)
	}
	q += ` ORDER BY version DESC`
	if f.Limit > 0 {
		q += ` LIMIT ?`
		args = append(args, f.Limit)
	}
	return s.snapshots(ctx, q, args...)
}

// CountByStatus counts the incidents f selects per status, whatever
// f.Status and f.Before.
func (s *Store) CountByStatus(ctx context.Context, f Search) (map[string]int, error) {
	conds, args := f.where(s.d)
	q := `SELECT status, count(*) FROM incidents`
	if len(conds) > 0 {
		q += ` WHERE ` + strings.Join(conds, ` AND `)
	}
	rows, err := s.db.QueryContext(ctx, s.d.rebind(q+` GROUP BY status`), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return nil, err
		}
		out[st] = n
	}
	return out, rows.Err()
}

// TimelineBefore returns the last limit events of an incident below
// sequence before (0: from the newest), newest first: a long timeline
// read a page at a time from its end.
func (s *Store) TimelineBefore(ctx context.Context, id string, before uint64, limit int) ([]Entry, error) {
	if before == 0 {
		before = 1<<63 - 1
	}
	rows, err := s.db.QueryContext(ctx, s.d.rebind(`SELECT `+entryCols+` FROM events
		WHERE incident_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?`), id, before, limit)
	if err != nil {
		return nil, err
	}
	return scanEntries(rows)
}
