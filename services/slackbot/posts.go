package slackbot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/slack-go/slack"
)

// metadataType marks the messages the bot posts; their payload's "key" is
// the effects-ledger key the message was posted under.
const metadataType = "hikeshi_effect"

// lookupMargin is how far before an attempt's marker the look-up reads:
// Slack stamps the message with its own clock.
const lookupMargin = 5 * time.Minute

// pending is written before a message is posted under an effect key and
// kept: the ledger's record says the post is done, the marker that an
// attempt may have reached Slack.
type pending struct {
	Channel string    `json:"channel"`
	At      time.Time `json:"at"`
}

func pendingKey(k string) string { return "post." + k }

// send posts a message for the effect under key k (the caller records the
// result under k). chat.postMessage takes no idempotency key and its
// 5xx or broken connection may come after Slack posted, so the transport
// hands those back instead of retrying, and every message carries k in
// its metadata: an attempt that finds an earlier attempt's marker first
// looks for that message in the channel and posts only if it is not there.
func (b *Bot) send(ctx context.Context, k, channel string, opts ...slack.MsgOption) (string, error) {
	p, earlier, err := b.markPending(ctx, k, channel)
	if err != nil {
		return "", err
	}
	if earlier {
		ts, found, err := b.findPosted(ctx, channel, k, p.At.Add(-lookupMargin))
		if err != nil || found {
			return ts, err
		}
	}
	if err := b.pacer.Wait(ctx, channel); err != nil {
		return "", err
	}
	opts = append(opts, slack.MsgOptionMetadata(slack.SlackMetadata{
		EventType: metadataType, EventPayload: map[string]any{"key": k},
	}))
	_, ts, err := b.api.PostMessageContext(ctx, channel, opts...)
	return ts, slackError("chat.postMessage", err)
}

// markPending writes the marker for k, or returns the one an earlier
// attempt wrote (earlier true); the first attempt's time is kept, as its
// message would be the oldest.
func (b *Bot) markPending(ctx context.Context, k, channel string) (pending, bool, error) {
	p := pending{Channel: channel, At: time.Now()}
	v, err := json.Marshal(p)
	if err != nil {
		return p, false, err
	}
	_, err = b.state.Create(ctx, pendingKey(k), v)
	if err == nil {
		return p, false, nil
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return p, false, fmt.Errorf("%w: slack state: %v", natsjs.ErrUnavailable, err)
	}
	e, err := b.state.Get(ctx, pendingKey(k))
	if err != nil {
		return p, false, fmt.Errorf("%w: slack state: %v", natsjs.ErrUnavailable, err)
	}
	if err := json.Unmarshal(e.Value(), &p); err != nil {
		return p, false, fmt.Errorf("slack state %s: %w", pendingKey(k), err)
	}
	return p, true, nil
}

// findPosted looks for the bot's message posted under key k in channel
// since oldest.
func (b *Bot) findPosted(ctx context.Context, channel, k string, oldest time.Time) (string, bool, error) {
	us := oldest.UnixMicro()
	p := &slack.GetConversationHistoryParameters{ChannelID: channel, Limit: 200, IncludeAllMetadata: true,
		Oldest: fmt.Sprintf("%d.%06d", us/1_000_000, us%1_000_000)}
	for {
		h, err := b.api.GetConversationHistoryContext(ctx, p)
		if err != nil {
			return "", false, slackError("conversations.history", err)
		}
		for _, m := range h.Messages {
			if m.Metadata.EventType == metadataType && m.Metadata.EventPayload["key"] == k {
				return m.Timestamp, true, nil
			}
		}
		if !h.HasMore || h.ResponseMetaData.NextCursor == "" {
			return "", false, nil
		}
		p.Cursor = h.ResponseMetaData.NextCursor
	}
}
