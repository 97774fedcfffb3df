package events_test

import (
	"time"

	"github.com/hikeshi/hikeshi/events"
)

// Expected values of the access changes' golden files.
func init() {
	token := "019ad6f1-4c1f-7c55-a0d2-6e5f4a3b2c1d"
	expires := time.Date(2027, 2, 28, 9, 12, 3, 551_000_000, time.UTC)
	goldens["io.hikeshi.access.token_created.v1.json"] = golden{
		id: "019ad6f1-4c20-7a41-9b3e-2f1d0c9e8b7a", subject: token, time: "2026-11-30T09:12:03.551Z",
		actor: "person:alice@example.com", actorName: "Alice Liddell",
		data: &events.TokenCreated{TokenID: token, Name: "slack-bridge", Role: "responder", Scopes: []string{"act-as"}, ExpiresAt: &expires},
	}
	goldens["io.hikeshi.access.token_revoked.v1.json"] = golden{
		id: "019ad712-08b3-7e10-8c4f-9a8b7c6d5e4f", subject: token, time: "2026-11-30T11:47:20.004Z",
		actor: "token:service", actorName: "service token",
		data: &events.TokenRevoked{TokenID: token, Name: "slack-bridge"},
	}
	goldens["io.hikeshi.access.role_mapping_changed.v1.json"] = golden{
		id: "019ad6e0-0001-7000-8000-5a4b3c2d1e0f", subject: events.RoleMappingID, time: "2026-11-30T08:55:00.120Z", actor: "hub",
		data: &events.RoleMappingChanged{
			Mapping:  map[string]string{"sre@example.com": "responder", "csirt@example.com": "security"},
			Previous: map[string]string{"sre@example.com": "viewer"},
		},
	}
}
