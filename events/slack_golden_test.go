package events_test

import (
	"time"

	"github.com/hikeshi/hikeshi/events"
)

// Expected values of the Slack facts' golden files.
func init() {
	goldens["io.hikeshi.slack.conversation_archived.v1.json"] = golden{
		id: "8a1d37c2-5b0e-8f41-9c6a-2e7d4b1f0a93", subject: inc42, time: "2025-03-17T14:05:36.412Z", actor: "slack",
		data: &events.ConversationArchived{
			ChannelID: "C08HZ3K1Q7M", ChannelName: "payments-20250314i-card-payments-failing-at-checkout",
			Object: "slack/019593fa-5d95-7d57-b4cb-bc6b32ea3529.json", Messages: 214, Bytes: 183422,
		},
	}
	goldens["io.hikeshi.slack.status_requested.v1.json"] = golden{
		id: "5c2e9b7a-1d04-8e3f-a6b8-0f3d2c9e7b14", subject: inc42, time: "2025-03-14T10:17:45.200Z", actor: "slack",
		data: &events.StatusRequested{
			ChannelID: "C08HZ3K1Q7M", MessageTS: "1741947465.000200",
			Since:           time.Date(2025, 3, 14, 10, 2, 45, 118_000_000, time.UTC),
			IntervalSeconds: 900, Slot: 1,
		},
	}
	goldens["io.hikeshi.slack.message_flagged.v1.json"] = golden{
		id: "b7f0c3e1-94a2-8d5b-8e61-3c0a9f2d4e58", subject: "0195f58f-4d8d-701e-b267-2504cef45548",
		time: "2025-04-02T08:12:45.018Z", actor: "slack",
		data: &events.MessageFlagged{
			ChannelID: "C02SUPPORT1", MessageTS: "1743581298.001900",
			Permalink: "https://acme.slack.com/archives/C02SUPPORT1/p1743581298001900",
			Author:    "U04CAROL22",
			Excerpt:   "Customers report being logged out and seeing password reset mails they never asked for.",
			Reaction:  "sss", FlaggedBy: "U05DAVE333", SharedTS: "1743581301.002100",
		},
	}
	goldens["io.hikeshi.slack.members_changed.v1.json"] = golden{
		id: "3e9a6c1d-0b7f-8a24-9d5e-6f1c2b8a4d07", subject: "0195f58f-4d8d-701e-b267-2504cef45548",
		time: "2025-04-02T08:14:02.771Z", actor: "slack",
		data: &events.MembersChanged{
			ChannelID: "C08SEC0042X",
			Joined:    []events.ChannelMember{{User: "U04CAROL22", Identity: "person:carol@example.com"}, {User: "U06ERIN444"}},
			Left:      []events.ChannelMember{{User: "U05DAVE333", Identity: "person:dave@example.com"}},
		},
	}
}
