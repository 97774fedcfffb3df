package sqlite

import "github.com/hikeshi/hikeshi/adapters/sqlstore"

// The timeline store's types live in sqlstore, shared with the PostgreSQL
// adapter; these names keep this package's callers unchanged.
type (
	Row         = sqlstore.Row
	Change      = sqlstore.Change
	Entry       = sqlstore.Entry
	Order       = sqlstore.Order
	ListFilter  = sqlstore.ListFilter
	Search      = sqlstore.Search
	Milestones  = sqlstore.Milestones
	Contents    = sqlstore.Contents
	EventRow    = sqlstore.EventRow
	IncidentRow = sqlstore.IncidentRow
)

// Orders of a timeline (sqlstore.Recorded, sqlstore.Occurred).
const (
	Recorded = sqlstore.Recorded
	Occurred = sqlstore.Occurred
)

// ErrNotFound: no such incident in the store.
var ErrNotFound = sqlstore.ErrNotFound
