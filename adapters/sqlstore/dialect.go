package sqlstore

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
)

// Dialect is what differs between the databases the store runs on. The
// queries are written once, with ? placeholders and the functions below
// where the SQL differs.
type Dialect struct {
	// Numbered: the database takes $1, $2, … instead of ?.
	Numbered bool
	// JSON is the text of the field at path (dot-separated) of the JSON
	// text in column col, NULL when absent.
	JSON func(col, path string) string
	// True is the condition that the boolean field of the JSON in col is
	// true; false (never NULL) when it is false or absent.
	True func(col, field string) string
	// FoldEq is the condition that col equals one placeholder, ignoring
	// ASCII case.
	FoldEq func(col string) string
	// Like is the LIKE operator that ignores ASCII case.
	Like string
	// LockApply, when set, is a statement run first in Apply's
	// transaction, with the projector's name, that waits for any other
	// Apply of that projector to commit: replicas applying the same events
	// then take turns instead of failing on each other's rows. (SQLite's
	// write transactions take turns already.)
	LockApply string
	// Notify, when set, runs in the transaction of a commit that added
	// events to incidents ids, to tell the stores of other processes.
	Notify func(ctx context.Context, tx *sql.Tx, ids []string) error
	// InsertEvents, when set, writes the event rows of a transaction that
	// has more than one in a single statement: args holds eventCols values
	// per row, in qInsEvent's column order. Without it they go eventChunk
	// rows per INSERT.
	InsertEvents func(ctx context.Context, tx *sql.Tx, args []any) error
}

// rebind writes q's ? placeholders in the dialect's form. The queries here
// have no ? inside their literals.
func (d Dialect) rebind(q string) string {
	if !d.Numbered || !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
