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
	return b.sendIn(ctx, k, channel, "", opts...)
}

// sendIn is send for a reply in the thread of message thread ("" posts
// in the channel itself).
func (b *Bot) sendIn(ctx context.Context, k, channel, thread string, opts ...slack.MsgOption) (string, error) {
	p, earlier, err := b.markPending(ctx, k, channel)
	if err != nil {
		return "", err
	}
	if earlier {
		ts, found, err := b.findPosted(ctx, channel, thread, k, p.At.Add(-lookupMargin))
		if err != nil || found {
			return ts, err
		}
	}
	if err := b.pacer.Wait(ctx, channel); err != nil {
		return "", err
	}
	if thread != "" {
		opts = append(opts, slack.MsgOptionTS(thread))
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
// (in the thread of thread when it is set) since oldest.
func (b *Bot) findPosted(ctx context.Context, channel, thread, k string, oldest time.Time) (string, bool, error) {
	us := oldest.UnixMicro()
	since := fmt.Sprintf("%d.%06d", us/1_000_000, us%1_000_000)
	cursor := ""
	for {
		msgs, next, err := b.messages(ctx, channel, thread, since, cursor)
		if err != nil {
			return "", false, err
		}
		for _, m := range msgs {
			if m.Metadata.EventType == metadataType && m.Metadata.EventPayload["key"] == k {
				return m.Timestamp, true, nil
			}
		}
		if next == "" {
			return "", false, nil
		}
		cursor = next
	}
}

// messages reads one page of a channel's history, or of a thread's
// replies (history holds no replies).
func (b *Bot) messages(ctx context.Context, channel, thread, oldest, cursor string) ([]slack.Message, string, error) {
	if thread != "" {
		msgs, more, next, err := b.api.GetConversationRepliesContext(ctx, &slack.GetConversationRepliesParameters{
			ChannelID: channel, Timestamp: thread, Cursor: cursor, Limit: 200, Oldest: oldest, IncludeAllMetadata: true})
		if err != nil {
			return nil, "", slackError("conversations.replies", err)
		}
		if !more {
			next = ""
		}
		return msgs, next, nil
	}
	h, err := b.api.GetConversationHistoryContext(ctx, &slack.GetConversationHistoryParameters{
		ChannelID: channel, Cursor: cursor, Limit: 200, Oldest: oldest, IncludeAllMetadata: true})
	if err != nil {
		return nil, "", slackError("conversations.history", err)
	}
	if !h.HasMore {
		return h.Messages, "", nil
	}
	return h.Messages, h.ResponseMetaData.NextCursor, nil
}
