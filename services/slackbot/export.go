package slackbot

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/hikeshi/hikeshi/events"
	"github.com/slack-go/slack"
)

// archive is the JSON document stored for a closed incident's channel.
type archive struct {
	Incident   string           `json:"incident"`
	Channel    channelRef       `json:"channel"`
	ExportedAt time.Time        `json:"exported_at"`
	Messages   []archiveMessage `json:"messages"` // oldest first
}

type archiveMessage struct {
	TS      string           `json:"ts"`
	User    string           `json:"user,omitempty"`
	Text    string           `json:"text"`
	Files   []archiveFile    `json:"files,omitempty"`
	Replies []archiveMessage `json:"replies,omitempty"`
}

type archiveFile struct {
	Name      string `json:"name"`
	Permalink string `json:"permalink,omitempty"`
}

// ArchiveObject is the object name of an incident's conversation export.
func ArchiveObject(id string) string { return "slack/" + id + ".json" }

// export reads the whole channel, threads included, page by page, and
// stores it; storing again under the same name replaces the object, so a
// retry leaves one archive.
func (b *Bot) export(ctx context.Context, id string, r record) (events.ConversationArchived, error) {
	doc := archive{Incident: id, Channel: channelRef{ID: r.Channel, Name: r.Name}, ExportedAt: b.now().UTC()}
	count := 0
	p := &slack.GetConversationHistoryParameters{ChannelID: r.Channel, Limit: 200}
	for {
		h, err := b.api.GetConversationHistoryContext(ctx, p)
		if err != nil {
			return events.ConversationArchived{}, slackError("conversations.history", err)
		}
		for _, m := range h.Messages {
			am := toArchive(m)
			count++
			if m.ReplyCount > 0 {
				if am.Replies, err = b.replies(ctx, r.Channel, m.Timestamp); err != nil {
					return events.ConversationArchived{}, err
				}
				count += len(am.Replies)
			}
			doc.Messages = append(doc.Messages, am)
		}
		if !h.HasMore || h.ResponseMetaData.NextCursor == "" {
			break
		}
		p.Cursor = h.ResponseMetaData.NextCursor
	}
	slices.Reverse(doc.Messages) // history answers newest first
	data, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return events.ConversationArchived{}, err
	}
	name := ArchiveObject(id)
	if _, err := b.archives.PutBytes(ctx, name, data); err != nil {
		return events.ConversationArchived{}, fmt.Errorf("store archive %s: %w", name, err)
	}
	return events.ConversationArchived{ChannelID: r.Channel, ChannelName: r.Name, Object: name,
		Messages: count, Bytes: int64(len(data))}, nil
}

func (b *Bot) replies(ctx context.Context, ch, ts string) ([]archiveMessage, error) {
	var out []archiveMessage
	p := &slack.GetConversationRepliesParameters{ChannelID: ch, Timestamp: ts, Limit: 200}
	for {
		msgs, more, next, err := b.api.GetConversationRepliesContext(ctx, p)
		if err != nil {
			return nil, slackError("conversations.replies", err)
		}
		for _, m := range msgs {
			if m.Timestamp == ts {
				continue // the parent comes first on every page
			}
			out = append(out, toArchive(m))
		}
		if !more || next == "" {
			return out, nil
		}
		p.Cursor = next
	}
}

func toArchive(m slack.Message) archiveMessage {
	am := archiveMessage{TS: m.Timestamp, User: m.User, Text: m.Text}
	for _, f := range m.Files {
		am.Files = append(am.Files, archiveFile{Name: f.Name, Permalink: f.Permalink})
	}
	return am
}
