package slackbot

import (
	"context"
	"errors"
	"fmt"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/command"
	"github.com/hikeshi/hikeshi/services/incident"
	"github.com/hikeshi/hikeshi/services/projection"
)

// OutboxDurable posts the announcements about no incident; fixed forever.
const OutboxDurable = "slack-outbox"

// OutboxProjector posts what other modules put on SLACK_OUTBOX (the
// weekly follow-up digest).
func (b *Bot) OutboxProjector() projection.Projector {
	return projection.Projector{Durable: OutboxDurable, Stream: events.SlackOutboxStream,
		Filter: events.SlackOutboxPrefix + ".>", Handle: b.handleOutbox}
}

func (b *Bot) handleOutbox(ctx context.Context, e events.Stored) error {
	d, err := e.Decode()
	if err != nil {
		return err
	}
	a, ok := d.(*events.AnnouncementRequested)
	if !ok {
		return fmt.Errorf("%w: %s on %s", projection.ErrPermanent, e.Type, events.SlackOutboxStream)
	}
	sent, err := b.announce(ctx, e, a)
	if err == nil && sent.Outcome == events.NotifyRefused {
		b.log.Warn("slack: announcement refused", "channel", a.Channel, "rule", a.Rule, "detail", sent.Detail)
	}
	return err
}

// announce posts a requested announcement once per request. A channel
// Slack refuses for good (not found, archived, bot not a member) is
// recorded as refused rather than retried forever.
func (b *Bot) announce(ctx context.Context, e events.Stored, a *events.AnnouncementRequested) (events.NotifySent, error) {
	k := key(e, "announcement")
	return natsjs.Once(ctx, b.effects, k, func(ctx context.Context) (events.NotifySent, error) {
		f := events.NotifySent{Rule: a.Rule, Channel: "slack", Recipient: a.Channel, Trigger: a.Trigger,
			CauseID: a.CauseID, Outcome: events.NotifyAccepted, MessageID: e.ID}
		if f.Rule == "" {
			f.Rule = "slack"
		}
		if f.CauseID == "" {
			f.CauseID = e.ID
		}
		ts, err := b.send(ctx, k, a.Channel, msgText(a.Text))
		switch {
		case errors.Is(err, projection.ErrPermanent):
			f.Outcome, f.Detail = events.NotifyRefused, err.Error()
		case err != nil:
			return f, err
		default:
			f.Detail, f.MessageID = "posted", ts
		}
		return f, nil
	})
}

// announced posts an announcement requested on an incident and records
// it in the notification ledger, like the notify module's own sends.
func (b *Bot) announced(ctx context.Context, e events.Stored, id string, a *events.AnnouncementRequested) error {
	sent, err := b.announce(ctx, e, a)
	if err != nil {
		return err
	}
	_, err = b.commands.Execute(ctx, id, incident.RecordFact{Data: &sent},
		command.Meta{Actor: "slack", Key: "slack:" + e.ID + ":sent"})
	return err
}
