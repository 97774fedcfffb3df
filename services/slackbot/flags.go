package slackbot

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/projection"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/slack-go/slack"
)

// The security reaction is acknowledged as soon as it is stored, and
// shared by a projector: Slack wants an answer within 3 s, and the share
// takes three Web API calls that a rate limit can delay for much longer.
const (
	// FlagStream holds one message per flagged Slack message, on its own
	// subject; a second reaction to the same message is refused by the
	// stream (one message per subject, DiscardNewPerSubject).
	FlagStream = "SLACK_FLAGS"
	// FlagDurable is the share projector's consumer; fixed forever.
	FlagDurable   = "slack-flags"
	flagSubjects  = "slack.flags"
	flagRetention = 90 * 24 * time.Hour
)

// errPerSubject is JetStream's answer when the subject already holds its
// one message: the flag is stored already.
const errPerSubject = 10077

func ensureFlagStream(ctx context.Context, js jetstream.JetStream, replicas int) error {
	_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:                 FlagStream,
		Description:          "Slack messages flagged with the security reaction, one subject per message, until shared",
		Subjects:             []string{flagSubjects + ".>"},
		Storage:              jetstream.FileStorage,
		Replicas:             replicas,
		Retention:            jetstream.LimitsPolicy,
		MaxAge:               flagRetention,
		MaxMsgsPerSubject:    1,
		Discard:              jetstream.DiscardNew,
		DiscardNewPerSubject: true,
		Duplicates:           2 * time.Minute,
	})
	if err != nil {
		return fmt.Errorf("stream %s: %w", FlagStream, err)
	}
	return nil
}

// flagID names a flagged message: the stream subject and event id.
func flagID(ch, ts string) string { return events.DeriveID("slack-flag", ch, ts) }

// enqueueFlag stores the reaction and returns once JetStream has it (or
// already had it); failure is natsjs.ErrUnavailable so that Slack is
// answered 503 and retries.
func (b *Bot) enqueueFlag(ctx context.Context, ev *reactionEvent) error {
	if b.cfg.SecurityChannel == "" {
		return nil
	}
	id := flagID(ev.Item.Channel, ev.Item.TS)
	env, err := events.New(id, &flag{ChannelID: ev.Item.Channel, MessageTS: ev.Item.TS, Reaction: ev.Reaction, FlaggedBy: ev.User},
		events.Meta{ID: id, Actor: ev.User, Time: b.now()})
	if err != nil {
		return err
	}
	data, err := env.Marshal()
	if err != nil {
		return err
	}
	m := nats.NewMsg(flagSubjects + "." + id)
	m.Data = data
	m.Header.Set(nats.MsgIdHdr, id)
	m.Header.Set("Content-Type", "application/cloudevents+json")
	_, err = b.js.PublishMsg(ctx, m)
	var apiErr *jetstream.APIError
	if err != nil && !(errors.As(err, &apiErr) && apiErr.ErrorCode == errPerSubject) {
		return fmt.Errorf("%w: store flag: %v", natsjs.ErrUnavailable, err)
	}
	return nil
}

// FlagProjector shares the stored flags into the security channel.
func (b *Bot) FlagProjector() projection.Projector {
	return projection.Projector{Durable: FlagDurable, Stream: FlagStream, Filter: flagSubjects + ".>", Handle: b.handleFlag}
}

func (b *Bot) handleFlag(ctx context.Context, e events.Stored) error {
	d, err := e.Decode()
	if err != nil {
		return err
	}
	f, ok := d.(*flag)
	if !ok {
		return fmt.Errorf("%w: %s on %s", projection.ErrPermanent, e.Type, FlagStream)
	}
	_, err = b.shareFlagged(ctx, *f)
	return err
}

// flag is the ledger's record of a shared (:sss:) message. It stays there
// until an incident is declared from it, which appends it to that
// incident as events.MessageFlagged.
type flag = events.MessageFlagged

func flagKey(ch, ts string) string { return natsjs.EffectKey("slack", "sss", ch, ts) }

// shareFlagged shares a message into the security channel once per
// message, however often the projector is redelivered the flag.
func (b *Bot) shareFlagged(ctx context.Context, in flag) (flag, error) {
	if b.cfg.SecurityChannel == "" {
		return flag{}, nil
	}
	k := flagKey(in.ChannelID, in.MessageTS)
	return natsjs.Once(ctx, b.effects, k, func(ctx context.Context) (flag, error) {
		m, err := b.message(ctx, in.ChannelID, in.MessageTS)
		if err != nil {
			return flag{}, err
		}
		link, err := b.api.GetPermalinkContext(ctx, &slack.PermalinkParameters{Channel: in.ChannelID, Ts: in.MessageTS})
		if err != nil {
			return flag{}, slackError("chat.getPermalink", err)
		}
		f := in
		f.Permalink, f.Author, f.Excerpt = link, m.User, truncate(m.Text, 300)
		text := fmt.Sprintf(":rotating_light: %s flagged a message by %s in <#%s> with :%s:\n> %s\n<%s|Open the message>",
			mention(f.FlaggedBy), mention(m.User), f.ChannelID, f.Reaction, strings.ReplaceAll(f.Excerpt, "\n", "\n> "), link)
		f.SharedTS, err = b.send(ctx, k, b.cfg.SecurityChannel,
			msgText(text),
			slack.MsgOptionBlocks(
				slack.NewSectionBlock(md(text), nil, nil),
				slack.NewActionBlock("hikeshi_flag", button(actionDeclare, "Declare incident", f.ChannelID+"|"+f.MessageTS)),
			))
		return f, err
	})
}
