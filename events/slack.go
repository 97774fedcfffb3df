package events

import "time"

// Facts the Slack integration records on an incident's timeline.
const (
	TypeSlackConversationArchived = "io.hikeshi.slack.conversation_archived"
	TypeSlackStatusRequested      = "io.hikeshi.slack.status_requested"
	TypeSlackMessageFlagged       = "io.hikeshi.slack.message_flagged"
	TypeSlackMembersChanged       = "io.hikeshi.slack.members_changed"
)

// ConversationArchived says where the export of the incident channel is: a
// JSON document in the JetStream Object Store bucket hikeshi_archives under
// Object. Other integrations (the JIRA case) attach it from there.
type ConversationArchived struct {
	ChannelID   string `json:"channel_id"`
	ChannelName string `json:"channel_name"`
	Object      string `json:"object"`
	Messages    int    `json:"messages"` // messages and thread replies exported
	Bytes       int64  `json:"bytes"`    // size of the object
}

// StatusRequested records a timekeeper nudge: no status update arrived for
// the interval, so the channel was asked "What is the status now?". Slot
// counts intervals since Since, which makes the nudge's id deterministic.
type StatusRequested struct {
	ChannelID       string    `json:"channel_id"`
	MessageTS       string    `json:"message_ts"`
	Since           time.Time `json:"since"` // the last status update or the declaration
	IntervalSeconds int       `json:"interval_seconds"`
	Slot            int       `json:"slot"`
}

// MessageFlagged records the Slack message an incident was declared from:
// someone reacted to it with the security reaction (:sss:) and it was
// shared into the security channel.
type MessageFlagged struct {
	ChannelID string `json:"channel_id"`
	MessageTS string `json:"message_ts"`
	Permalink string `json:"permalink,omitempty"`
	Author    string `json:"author,omitempty"`
	Excerpt   string `json:"excerpt,omitempty"`
	Reaction  string `json:"reaction"`
	FlaggedBy string `json:"flagged_by"`
	SharedTS  string `json:"shared_ts,omitempty"` // the share in the security channel
}

// MembersChanged records who joined or left the incident's private
// channel: its members may read and act on a confidential incident. The
// Slack integration appends it for the people it invites when it makes the
// channel and for Slack's member_joined_channel and member_left_channel
// events.
type MembersChanged struct {
	ChannelID string          `json:"channel_id"`
	Joined    []ChannelMember `json:"joined,omitempty"`
	Left      []ChannelMember `json:"left,omitempty"`
}

// ChannelMember is a Slack user, and the hub identity they map to when
// the mapping by e-mail is configured.
type ChannelMember struct {
	User     string `json:"user"`               // the Slack user id
	Identity string `json:"identity,omitempty"` // person:<email>
}

func (ConversationArchived) EventType() string { return TypeSlackConversationArchived }
func (StatusRequested) EventType() string      { return TypeSlackStatusRequested }
func (MessageFlagged) EventType() string       { return TypeSlackMessageFlagged }
func (MembersChanged) EventType() string       { return TypeSlackMembersChanged }

func init() {
	Register(Spec{Type: TypeSlackConversationArchived, Name: "slack_conversation_archived", Version: 1,
		Doc: "The Slack channel's conversation was exported into the hikeshi_archives object store.",
		New: func() Data { return &ConversationArchived{} }})
	Register(Spec{Type: TypeSlackStatusRequested, Name: "slack_status_requested", Version: 1,
		Doc: "The timekeeper asked the incident channel for a status update.",
		New: func() Data { return &StatusRequested{} }})
	Register(Spec{Type: TypeSlackMessageFlagged, Name: "slack_message_flagged", Version: 1,
		Doc: "The Slack message the incident was declared from, flagged with the security reaction.",
		New: func() Data { return &MessageFlagged{} }})
	Register(Spec{Type: TypeSlackMembersChanged, Name: "slack_members_changed", Version: 1,
		Doc: "People joined or left the incident's private Slack channel.",
		New: func() Data { return &MembersChanged{} }})
}
