package events

// TypeNotifySent is the notification ledger: one event per message sent to
// one recipient, so the timeline says who was told what, when and how.
const TypeNotifySent = "io.hikeshi.notify.sent"

// Outcomes of a notification.
const (
	// NotifyAccepted: the SMTP server answered 250 to the message, or the
	// webhook receiver answered 2xx.
	NotifyAccepted = "accepted"
	// NotifyRefused: the remote refused for good (a mailbox that does not
	// exist, a webhook URL that answers 404); the send is not retried.
	NotifyRefused = "refused"
)

// NotifySent records one notification.
type NotifySent struct {
	Rule      string `json:"rule"`      // the notify rule that selected the recipient
	Channel   string `json:"channel"`   // email or webhook
	Recipient string `json:"recipient"` // the email address or the webhook's name
	// Template is the report the mail was written from: internal or
	// external. Webhooks carry the fixed JSON payload and have none.
	Template string `json:"template,omitempty"`
	// Trigger is what happened: declared, escalated, severity_changed,
	// status_updated, closed.
	Trigger string `json:"trigger"`
	// CauseID is the incident event the notification is about.
	CauseID string `json:"cause_id"`
	Outcome string `json:"outcome"`
	// Detail is the remote's answer: the SMTP reply or the HTTP status.
	Detail string `json:"detail,omitempty"`
	// MessageID is the mail's Message-ID or the webhook's delivery id, by
	// which a receiver recognises a repeated delivery.
	MessageID string `json:"message_id"`
}

func (NotifySent) EventType() string { return TypeNotifySent }

func init() {
	Register(Spec{Type: TypeNotifySent, Name: "notify_sent", Version: 1,
		Doc: "A notification was sent (or definitively refused): rule, channel, recipient, template, outcome.",
		New: func() Data { return &NotifySent{} }})
}
