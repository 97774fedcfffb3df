package sqlite

import (
	"fmt"

	"github.com/hikeshi/hikeshi/adapters/sqlstore"
)

// State is a projector's own state (sqlstore.State) in one SQLite file.
type State struct{ *sqlstore.State }

// The state's types live in sqlstore, shared with the PostgreSQL adapter.
type (
	Decision       = sqlstore.Decision
	Log            = sqlstore.Log
	DecisionFilter = sqlstore.DecisionFilter
)

const stateSchema = `
CREATE TABLE IF NOT EXISTS state (
	key TEXT PRIMARY KEY,
	val BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checkpoint (
	id  INTEGER PRIMARY KEY CHECK (id = 1),
	seq INTEGER NOT NULL
);
` + decisionSchema

// The decisions log (sqlstore.Decision): its searched columns, the rest
// as JSON.
const decisionSchema = `
CREATE TABLE IF NOT EXISTS decisions (
	seq         INTEGER PRIMARY KEY,
	at          INTEGER NOT NULL,
	source      TEXT NOT NULL,
	fingerprint TEXT NOT NULL,
	route       TEXT NOT NULL,
	rule        TEXT NOT NULL,
	flagged     TEXT NOT NULL,
	data        BLOB NOT NULL
);
`

// OpenState opens (creating when needed) the state database at path.
func OpenState(path string) (*State, error) {
	db, err := openDB(path, false, stateSchema)
	if err != nil {
		return nil, fmt.Errorf("state store %s: %w", path, err)
	}
	s, err := sqlstore.NewState(db, Dialect)
	if err != nil {
		return nil, fmt.Errorf("state store %s: %w", path, err)
	}
	return &State{s}, nil
}
