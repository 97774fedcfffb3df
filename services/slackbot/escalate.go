package slackbot

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/events"
	"github.com/slack-go/slack"
)

// The escalate message shortcut turns a Slack message into a customer
// escalation, stored on SIGNALS exactly as POST /api/v1/escalations stores
// one; the signals module opens its triage item, which this module posts
// to the security channel with Accept and Dismiss.
const viewEscalate = "hikeshi_escalate"

// escalateMeta travels in the modal's private_metadata: the message, and
// when the shortcut was used (the escalation's reported_at, so that a
// retried submission is the same escalation).
type escalateMeta struct {
	Channel string `json:"c"`
	TS      string `json:"ts"`
	Link    string `json:"link"`
	At      int64  `json:"at"`
}

// shortcut opens the escalation modal for the configured message shortcut.
func (b *Bot) shortcut(ctx context.Context, cb *slack.InteractionCallback) error {
	if b.cfg.EscalateShortcut == "-" || cb.CallbackID != b.cfg.EscalateShortcut {
		return nil // a shortcut of another app version: nothing to do
	}
	ts := cmpOr(cb.MessageTs, cb.Message.Timestamp)
	if cb.Channel.ID == "" || ts == "" || cb.TriggerID == "" {
		return badRequest("message_action without channel, message or trigger_id")
	}
	link, err := b.api.GetPermalinkContext(ctx, &slack.PermalinkParameters{Channel: cb.Channel.ID, Ts: ts})
	if err != nil {
		return slackError("chat.getPermalink", err)
	}
	meta, err := json.Marshal(escalateMeta{Channel: cb.Channel.ID, TS: ts, Link: link, At: b.now().Unix()})
	if err != nil {
		return err
	}
	return b.openView(ctx, cb.TriggerID, escalateModal(cb.Message.User, cb.Message.Text, link, string(meta)))
}

func escalateModal(author, text, link, meta string) slack.ModalViewRequest {
	first, _, _ := strings.Cut(strings.TrimSpace(text), "\n")
	details := fmt.Sprintf("%s wrote:\n%s\n%s", mention(author), truncate(text, 1500), link)
	return modal(viewEscalate, "Escalate to security", "Escalate", meta,
		textInput("title", "Title", truncate(first, 150), false, false),
		textInput("impact", "Customer impact", "", true, false),
		textInput("service", "Suspected service", "", false, true),
		textInput("details", "Details", details, true, true),
	)
}

// submitEscalation stores the escalation. Its id comes from the view, so
// Slack's retries of one submission store it once; a second person's
// shortcut on the same message is a second escalation, as it would be
// through the API.
func (b *Bot) submitEscalation(ctx context.Context, cb *slack.InteractionCallback) (any, error) {
	var m escalateMeta
	if err := json.Unmarshal([]byte(cb.View.PrivateMetadata), &m); err != nil || m.At == 0 {
		return nil, badRequest("escalation view without its message")
	}
	e := events.Escalation{
		ID: "slack:" + cb.View.ID, Title: strings.TrimSpace(value(cb, "title")),
		ReportedBy: mention(cb.User.ID), ReportedAt: time.Unix(m.At, 0),
		CustomerImpact: strings.TrimSpace(value(cb, "impact")), Service: strings.TrimSpace(value(cb, "service")),
		Details: strings.TrimSpace(value(cb, "details")),
	}
	if m.Link != "" {
		e.Links = []events.SignalLink{{Title: "Slack message", URL: m.Link}}
	}
	s, err := e.Signal()
	if err != nil {
		block := "title"
		if e.Title != "" {
			block = "impact"
		}
		return map[string]any{"response_action": "errors", "errors": map[string]string{block: err.Error()}}, nil
	}
	if _, err := natsjs.NewSignalPublisher(b.js).Put(ctx, []events.Signal{s}); err != nil {
		return nil, err
	}
	done := modal(viewEscalate, "Escalate to security", "", "",
		slack.NewSectionBlock(md(":inbox_tray: Sent to the security team for triage."), nil, nil))
	done.Submit = nil
	done.Close = plain("Close")
	return map[string]any{"response_action": "update", "view": done}, nil
}
