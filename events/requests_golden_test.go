package events_test

import (
	"time"

	"github.com/hikeshi/hikeshi/events"
)

// Expected values of the request and triage golden files.
func init() {
	goldens["io.hikeshi.github.postmortem_requested.v1.json"] = golden{
		id: "6e1f4a2c-8b3d-8c57-9a0e-4d2b7f1c3e85", subject: inc42, time: "2025-03-14T16:20:07.530Z", actor: "U04ALICE01",
		data: &events.PostmortemRequested{RequestedBy: "U04ALICE01", Via: "slack"},
	}
	goldens["io.hikeshi.slack.announcement_requested.v1.json"] = golden{
		id: "a4c81e3f-2d6b-8f09-b7e5-1c3a9d0f6b42", subject: inc42, time: "2025-03-14T09:48:13.102Z", actor: "notify",
		data: &events.AnnouncementRequested{
			Channel: "C07STATUS01",
			Text:    ":rotating_light: INC-42 Card payments failing at checkout (payments) escalated from SEV2 to SEV1, status investigating.",
			Rule:    "sev1-management", Recipient: "status-channel", Trigger: "escalated",
			CauseID: "0195940d-e0e6-7d96-a579-1edc4b57531e",
		},
	}
	const item = "5f3a9c1e-7b2d-8a64-b0e8-3d1f6c9a2e47"
	goldens["io.hikeshi.signal.triage_opened.v1.json"] = golden{
		id: "d2b7e4a1-5c9f-8e36-a1d0-7f4c2b8e9a53", subject: item, time: "2025-04-02T08:03:11.284Z", actor: "signals",
		data: &events.TriageOpened{
			Key: item, Source: "escalation", Fingerprint: "ZD-88412",
			Title:      "Customers see other customers' order history",
			Summary:    "Three tickets since 07:40 UTC, all on the mobile app.",
			ReportedBy: "support: Erin Park", ReportedAt: time.Date(2025, 4, 2, 8, 2, 55, 0, time.UTC),
			CustomerImpact: "Personal data of other customers shown in the order list",
			Service:        "orders", Severity: "critical", Priority: "P1",
			Links: []events.SignalLink{{Title: "Zendesk ticket", URL: "https://acme.zendesk.com/agent/tickets/88412"}},
		},
	}
	goldens["io.hikeshi.signal.triage_accepted.v1.json"] = golden{
		id: "8c4e2a7f-1b9d-8d53-b6e0-2f7a4c1e9d36", subject: item, time: "2025-04-02T08:12:44.910Z", actor: "U05DAVE333",
		data: &events.TriageAccepted{Key: item, IncidentID: "0195f58f-4d8d-701e-b267-2504cef45548", CaseNumber: "INC-43", AcceptedBy: "U05DAVE333"},
	}
	goldens["io.hikeshi.signal.triage_dismissed.v1.json"] = golden{
		id: "3a9d6f2b-4e1c-8b75-a8d2-6c0e3f7b1a94", subject: item, time: "2025-04-02T08:15:02.117Z", actor: "U05DAVE333",
		data: &events.TriageDismissed{Key: item, DismissedBy: "U05DAVE333",
			Reason: "Cached page shown after logout on a shared device; no data of other customers."},
	}
}
