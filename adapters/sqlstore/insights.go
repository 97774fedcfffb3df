package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"time"
)

// Milestones are when an incident reached each step of its response; a
// zero time: not (yet) reached.
type Milestones struct {
	ID, CaseNumber, Service, Severity string
	// Confidential, DeclaredBy and CommanderNow (the current commander)
	// are what need-to-know depends on.
	Confidential                    bool
	DeclaredBy, CommanderNow        string
	Declared                        time.Time
	Commander, Identified, Resolved time.Time
	Closed                          time.Time
	// Mitigated: the first status at or past monitoring.
	Mitigated time.Time
	// Recorded holds the milestones recorded on the incident
	// (milestone_recorded, the last record of each), which win over the
	// times above: impact_started, detected, acknowledged, mitigated,
	// resolved.
	Recorded map[string]time.Time
}

// milestonesQuery reads, per incident that is not a drill, the first time
// of each milestone from its events: a commander assigned, a status at or
// past identified (a forward move may skip steps), resolved, closed.
func milestonesQuery(d Dialect) string {
	to := d.JSON("e.data", "to")
	return `SELECT i.id, i.case_number, coalesce(` + d.JSON("i.snapshot", "service") + `, ''),
	coalesce(` + d.JSON("i.snapshot", "severity") + `, ''), CASE WHEN ` + d.True("i.snapshot", "confidential") + ` THEN 1 ELSE 0 END,
	coalesce(` + d.JSON("i.snapshot", "declared_by") + `, ''), coalesce(` + d.JSON("i.snapshot", "commander") + `, ''), i.declared_at,
	(SELECT min(e.time) FROM events e WHERE e.incident_id = i.id AND e.type = 'io.hikeshi.incident.commander_assigned'),
	(SELECT min(e.time) FROM events e WHERE e.incident_id = i.id AND e.type = 'io.hikeshi.incident.status_updated'
		AND ` + to + ` IN ('identified', 'monitoring', 'resolved')),
	(SELECT min(e.time) FROM events e WHERE e.incident_id = i.id AND e.type = 'io.hikeshi.incident.status_updated'
		AND ` + to + ` = 'resolved'),
	(SELECT min(e.time) FROM events e WHERE e.incident_id = i.id AND e.type = 'io.hikeshi.incident.closed'),
	(SELECT min(e.time) FROM events e WHERE e.incident_id = i.id AND e.type = 'io.hikeshi.incident.status_updated'
		AND ` + to + ` IN ('monitoring', 'resolved')),
	coalesce(` + d.JSON("i.snapshot", "milestones.recorded") + `, '')
	FROM incidents i WHERE NOT ` + d.True("i.snapshot", "drill") + ` AND i.declared_at >= ?
	ORDER BY i.declared_seq`
}

// Milestones lists the milestones of the incidents declared since since,
// drills left out, in the order they were declared.
func (s *Store) Milestones(ctx context.Context, since time.Time) ([]Milestones, error) {
	rows, err := s.db.QueryContext(ctx, s.d.rebind(milestonesQuery(s.d)), since.UTC().Format(time.RFC3339Nano))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Milestones
	for rows.Next() {
		var m Milestones
		var declared string
		var commander, identified, resolved, closed, mitigated sql.NullString
		var recorded string
		if err := rows.Scan(&m.ID, &m.CaseNumber, &m.Service, &m.Severity, &m.Confidential, &m.DeclaredBy, &m.CommanderNow, &declared,
			&commander, &identified, &resolved, &closed, &mitigated, &recorded); err != nil {
			return nil, err
		}
		m.Recorded = recordedMilestones(recorded)
		m.Declared, _ = time.Parse(time.RFC3339Nano, declared)
		for _, f := range []struct {
			to *time.Time
			v  sql.NullString
		}{{&m.Commander, commander}, {&m.Identified, identified}, {&m.Resolved, resolved}, {&m.Closed, closed}, {&m.Mitigated, mitigated}} {
			if f.v.Valid {
				*f.to, _ = time.Parse(time.RFC3339Nano, f.v.String)
			}
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// recordedMilestones reads the recorded milestones of an incident's
// snapshot (incident.Milestones.Recorded); none when it has none.
func recordedMilestones(raw string) map[string]time.Time {
	if raw == "" {
		return nil
	}
	var rec map[string]struct {
		At time.Time `json:"at"`
	}
	if json.Unmarshal([]byte(raw), &rec) != nil || len(rec) == 0 {
		return nil
	}
	out := make(map[string]time.Time, len(rec))
	for name, r := range rec {
		out[name] = r.At
	}
	return out
}
