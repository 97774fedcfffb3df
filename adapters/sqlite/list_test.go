package sqlite

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hikeshi/hikeshi/adapters/sqlstore"
)

// TestListWalksAnIndex: every list query is served by an index in the
// list's order, so ?limit=50 reads 50 rows instead of sorting every
// incident.
func TestListWalksAnIndex(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "timeline.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	queries := []string{
		// The incident a page starts before, found by id or case number.
		sqlstore.FindQuery("declared_seq"),
	}
	for _, f := range []sqlstore.ListFilter{
		{Limit: 50},
		{Status: "open", Limit: 50},
		{Status: "closed", Limit: 50},
		{Limit: 50, Before: "x"},
		{Status: "open", Limit: 50, Before: "x"},
		{},
	} {
		queries = append(queries, sqlstore.ListQuery(f))
	}
	for _, q := range queries {
		var args []any
		for range strings.Count(q, "?") {
			args = append(args, 1)
		}
		rows, err := s.DB().QueryContext(context.Background(), "EXPLAIN QUERY PLAN "+q, args...)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		joined := strings.Join(plan, "; ")
		if strings.Contains(joined, "TEMP B-TREE") || !strings.Contains(joined, "USING INDEX") {
			t.Errorf("%s: plan %q sorts or scans instead of walking an index", q, joined)
		}
	}
}

// TestMigrateAddsDeclaredSeq: a store written before the list had its
// index gets the column, filled from its events, when opened.
func TestMigrateAddsDeclaredSeq(t *testing.T) {
	path := filepath.Join(t.TempDir(), "timeline.db")
	db, err := openDB(path, false, `
CREATE TABLE events (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, incident_id TEXT NOT NULL, type TEXT NOT NULL, time TEXT NOT NULL, actor TEXT NOT NULL, data TEXT NOT NULL);
CREATE TABLE incidents (id TEXT PRIMARY KEY, case_number TEXT NOT NULL UNIQUE, status TEXT NOT NULL, open INTEGER NOT NULL, declared_at TEXT NOT NULL, version INTEGER NOT NULL, snapshot TEXT NOT NULL);
CREATE INDEX incidents_open ON incidents (open, declared_at);
INSERT INTO events VALUES (3, 'e3', 'a', 't', '', '', '{}'), (5, 'e5', 'b', 't', '', '', '{}'), (7, 'e7', 'a', 't', '', '', '{}');
INSERT INTO incidents VALUES ('a', 'INC-1', 's', 1, '', 7, '{"id":"a"}'), ('b', 'INC-2', 's', 1, '', 5, '{"id":"b"}');`)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.List(context.Background(), sqlstore.ListFilter{Limit: 1, Before: "INC-2"})
	if err != nil || len(got) != 1 || string(got[0]) != `{"id":"a"}` {
		t.Errorf("list before INC-2 after migration = %s, %v; want incident a", got, err)
	}
}
