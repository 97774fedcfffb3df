package timeline

import (
	"context"
	"encoding/json"

	"github.com/hikeshi/hikeshi/services/incident"
	"github.com/hikeshi/hikeshi/services/readmodel"
)

// Incidents reads the incidents of a timeline store for the modules that
// need them (module.Incidents).
type Incidents struct{ Store readmodel.Store }

// List returns every incident's current state, newest first.
func (i Incidents) List(ctx context.Context) ([]incident.State, error) {
	rows, err := i.Store.List(ctx, readmodel.ListFilter{})
	if err != nil {
		return nil, err
	}
	out := make([]incident.State, 0, len(rows))
	for _, raw := range rows {
		var st incident.State
		if err := json.Unmarshal(raw, &st); err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}
