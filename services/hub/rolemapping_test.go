package hub

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/adapters/natsjs/natstest"
	"github.com/hikeshi/hikeshi/events"
)

// TestRoleMappingRecordedWhenItChanges: starting with the mapping last
// recorded records nothing; a changed mapping is recorded with the one
// before it.
func TestRoleMappingRecordedWhenItChanges(t *testing.T) {
	ctx := context.Background()
	bus := natstest.Start(t)
	store, err := natsjs.NewAccess(ctx, bus.JS)
	if err != nil {
		t.Fatal(err)
	}
	first := map[string]string{"sre": "responder"}
	second := map[string]string{"sre": "responder", "csirt": "security"}
	for _, m := range []map[string]string{first, first, second, second} {
		if err := recordRoleMapping(ctx, store, m); err != nil {
			t.Fatal(err)
		}
	}
	list, err := store.AccessEvents(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 {
		t.Fatalf("%d access events, want 2 (one per change)", len(list))
	}
	var last events.RoleMappingChanged
	if err := json.Unmarshal(list[0].Data, &last); err != nil || len(last.Mapping) != 2 || len(last.Previous) != 1 || list[0].Actor != "hub" {
		t.Fatalf("last change %s by %s", list[0].Data, list[0].Actor)
	}
}
