package postgres

import (
	"context"
	"database/sql"
	"fmt"
)

// qInsertEvents writes event rows given as one array per column: one
// statement for a whole batch, parsed and planned once, where multi-row
// VALUES take a statement per 64 rows and a parameter per value.
const qInsertEvents = `INSERT INTO events (seq, id, incident_id, type, time, actor, data, actorname, via, occurred_at)
	SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[])`

// eventCols are qInsertEvents' columns: a sequence, then text.
const eventCols = 10

// insertEvents is the dialect's InsertEvents: args holds eventCols values
// per row, in qInsertEvents' column order.
func insertEvents(ctx context.Context, tx *sql.Tx, args []any) error {
	if len(args)%eventCols != 0 {
		return fmt.Errorf("%d event values, not rows of %d", len(args), eventCols)
	}
	n := len(args) / eventCols
	seqs := make([]int64, n)
	text := make([][]string, eventCols-1)
	for c := range text {
		text[c] = make([]string, n)
	}
	for i := range n {
		row := args[i*eventCols : (i+1)*eventCols]
		seq, ok := row[0].(uint64)
		if !ok {
			return fmt.Errorf("event sequence %v is a %T, not a uint64", row[0], row[0])
		}
		seqs[i] = int64(seq)
		for c, v := range row[1:] {
			if text[c][i], ok = v.(string); !ok {
				return fmt.Errorf("seq %d: column %d is a %T, not a string", seq, c+1, v)
			}
		}
	}
	params := make([]any, 0, eventCols)
	params = append(params, seqs)
	for _, col := range text {
		params = append(params, col)
	}
	_, err := tx.ExecContext(ctx, qInsertEvents, params...)
	return err
}
