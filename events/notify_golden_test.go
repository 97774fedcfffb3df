package events_test

import "github.com/hikeshi/hikeshi/events"

// Expected values of the notification ledger's golden files.
func init() {
	const escalation = "0195940d-e0e6-7d96-a579-1edc4b57531e" // severity_changed.v1.json
	goldens["io.hikeshi.notify.sent.v1.json"] = golden{
		id: "3f6b2d91-7c4e-8a05-b1d3-6e9f0a2c4b78", subject: inc42, time: "2025-03-14T09:48:13.054Z", actor: "notify",
		data: &events.NotifySent{
			Rule: "sev1-management", Channel: "email", Recipient: "cto@acme.example", Template: "internal",
			Trigger: "escalated", CauseID: escalation, Outcome: events.NotifyAccepted, Detail: "250 queued",
			MessageID: "<0b7e4c21-96d3-8f5a-a2e8-1c4d7b9f3e60@acme.example>",
		},
	}
	goldens["io.hikeshi.notify.sent.v1.webhook-refused.json"] = golden{
		id: "9d2a5e17-4b8c-8f63-a0e4-7c1b3d5f9a26", subject: inc42, time: "2025-03-14T09:48:13.391Z", actor: "notify",
		data: &events.NotifySent{
			Rule: "sev1-management", Channel: "webhook", Recipient: "statuspage",
			Trigger: "escalated", CauseID: escalation, Outcome: events.NotifyRefused, Detail: "HTTP 410",
			MessageID: "5a8c1f3e-2d7b-8946-b0c5-e3f1a9d72b04",
		},
	}
}
