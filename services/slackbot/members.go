package slackbot

import (
	"context"
	"encoding/json"

	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/command"
	"github.com/hikeshi/hikeshi/services/incident"
)

// The members of an incident's private channel may read and act on a
// confidential incident, so who is in the channel is recorded on the
// incident (events.MembersChanged): the people the bot invites, and whoever
// Slack reports joining or leaving (member_joined_channel,
// member_left_channel). A Slack event's id keys its record, so a retried
// delivery records nothing twice.

// memberEvent is the part of member_joined_channel and member_left_channel
// that is used.
type memberEvent struct {
	Type    string `json:"type"`
	User    string `json:"user"`
	Channel string `json:"channel"`
}

// membership records a member joining or leaving an incident channel; any
// other event, or a channel that is no incident's, is acknowledged.
func (b *Bot) membership(ctx context.Context, env eventEnvelope) error {
	if env.Type != "event_callback" {
		return nil
	}
	var ev memberEvent
	if err := json.Unmarshal(env.Event, &ev); err != nil {
		return badRequest("event: %v", err)
	}
	if ev.Type != "member_joined_channel" && ev.Type != "member_left_channel" {
		return nil
	}
	if ev.User == "" || ev.Channel == "" {
		return badRequest("%s without user or channel", ev.Type)
	}
	id, ok, err := b.IncidentFor(ctx, ev.Channel)
	if err != nil || !ok {
		return err
	}
	d := &events.MembersChanged{ChannelID: ev.Channel}
	m := b.members(ctx, []string{ev.User})
	if ev.Type == "member_joined_channel" {
		d.Joined = m
	} else {
		d.Left = m
	}
	return b.recordMembers(ctx, id, d, "slack-ev:"+env.EventID)
}

// recordMembers appends d to incident id under idempotency key k.
func (b *Bot) recordMembers(ctx context.Context, id string, d *events.MembersChanged, k string) error {
	_, err := b.commands.Execute(ctx, id, incident.RecordFact{Data: d}, command.Meta{Actor: "slack", Key: k})
	return err
}
