package slackbot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/command"
	"github.com/hikeshi/hikeshi/services/incident"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/slack-go/slack"
)

// record is what the integration keeps per incident in StateBucket: where
// its channel is and when the timekeeper should next ask. It is derived
// from the log, so replaying the projector rebuilds it.
type record struct {
	Channel   string          `json:"channel"`
	Name      string          `json:"name"`
	KickoffTS string          `json:"kickoff_ts"`
	Severity  events.Severity `json:"severity"`
	// Since is the time of the last status update (or the declaration);
	// SinceEvent its event id. Timekeeper slots count from it.
	Since      time.Time `json:"since"`
	SinceEvent string    `json:"since_event"`
	Open       bool      `json:"open"`
	// Archived: archive_on_close archived the channel; Slack refuses
	// messages to it from then on.
	Archived bool `json:"archived,omitempty"`
	// Announced holds the ts of the declaration's announcement per
	// announcement channel: its thread takes what the archived channel
	// no longer can.
	Announced map[string]string `json:"announced,omitempty"`
}

type channelRef struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

func incidentKey(id string) string { return "inc." + id }
func channelKey(ch string) string  { return "ch." + ch }

func (b *Bot) record(ctx context.Context, id string) (record, bool, error) {
	var r record
	e, err := b.state.Get(ctx, incidentKey(id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return r, false, nil
	}
	if err != nil {
		return r, false, fmt.Errorf("%w: slack state: %v", natsjs.ErrUnavailable, err)
	}
	return r, true, json.Unmarshal(e.Value(), &r)
}

func (b *Bot) putRecord(ctx context.Context, id string, r record) error {
	v, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if _, err := b.state.Put(ctx, incidentKey(id), v); err != nil {
		return fmt.Errorf("%w: slack state: %v", natsjs.ErrUnavailable, err)
	}
	return nil
}

// IncidentFor returns the incident whose channel is ch.
func (b *Bot) IncidentFor(ctx context.Context, ch string) (string, bool, error) {
	e, err := b.state.Get(ctx, channelKey(ch))
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrInvalidKey) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("%w: slack state: %v", natsjs.ErrUnavailable, err)
	}
	return string(e.Value()), true, nil
}

func (b *Bot) index(ctx context.Context, ch, id string) error {
	if _, err := b.state.Put(ctx, channelKey(ch), []byte(id)); err != nil {
		return fmt.Errorf("%w: slack state: %v", natsjs.ErrUnavailable, err)
	}
	return nil
}

// key is the effects-ledger key of one step caused by event e.
func key(e events.Stored, step string) string { return natsjs.EffectKey("slack", e.ID, step) }

// Handle reacts to one incident event.
func (b *Bot) Handle(ctx context.Context, e events.Stored) error {
	d, err := e.Decode()
	if err != nil {
		return err
	}
	id := e.Envelope.Subject // the incident id; e.Subject is the NATS subject
	switch d := d.(type) {
	case *events.Declared:
		return b.declared(ctx, e, id)
	case *events.SeverityChanged, *events.StatusUpdated, *events.CommanderAssigned, *events.NoteAdded:
		return b.changed(ctx, e, id, d)
	case *events.IncidentClosed:
		return b.closed(ctx, e, id, d)
	case *events.AnnouncementRequested:
		return b.announced(ctx, e, id, d)
	case *events.Linked:
		switch e.Type {
		case events.TypeSlackChannelLinked:
			return b.index(ctx, d.Ref, id)
		case events.TypeGitHubPostmortemOpened:
			return b.postmortemOpened(ctx, e, id, d)
		}
	}
	return nil
}

func (b *Bot) declared(ctx context.Context, e events.Stored, id string) error {
	cur, err := b.commands.Get(ctx, id)
	if err != nil {
		return err
	}
	if l, ok := cur.Links["slack"]; ok && l.Ref != "" {
		// The channel link is the last step below: the declaration was
		// carried out in full, maybe before a lost effects ledger. Its
		// channel may be archived by now, where a search by name passes
		// it by and would make a second one.
		return b.index(ctx, l.Ref, id)
	}
	// The declaration's posts say what the incident was when declared, so
	// a replay after an escalation posts what the live run posted.
	var st incident.State
	if err := st.Apply(e.Envelope, e.Seq); err != nil {
		return err
	}
	ch, err := natsjs.Once(ctx, b.effects, key(e, "channel"), func(ctx context.Context) (channelRef, error) {
		return b.ensureChannel(ctx, &st)
	})
	if err != nil {
		return err
	}
	if err := b.index(ctx, ch.ID, id); err != nil {
		return err
	}
	if err := b.setTopic(ctx, e, &st, ch.ID, true); err != nil {
		return err
	}
	if _, err := natsjs.Once(ctx, b.effects, key(e, "invite"), func(ctx context.Context) (bool, error) {
		return true, b.inviteMembers(ctx, e, id, ch.ID, b.invitees(ctx, &st, st.Severity))
	}); err != nil {
		return err
	}
	kickoff, err := b.post(ctx, e, "kickoff", ch.ID, kickoffMessage(&st, b.publicURL)...)
	if err != nil {
		return err
	}
	if _, err := natsjs.Once(ctx, b.effects, key(e, "pin"), func(ctx context.Context) (bool, error) {
		err := b.api.AddPinContext(ctx, ch.ID, slack.NewRefToMessage(ch.ID, kickoff))
		if isSlackErr(err, "already_pinned") {
			err = nil
		}
		return true, slackError("pins.add", err)
	}); err != nil {
		return err
	}
	if _, err := b.post(ctx, e, "guidance", ch.ID, slack.MsgOptionText(guidanceText, false)); err != nil {
		return err
	}
	if _, err := b.post(ctx, e, "request", ch.ID, slack.MsgOptionText(requestText(st.DeclaredBy), false)); err != nil {
		return err
	}
	announced := map[string]string{}
	if !st.Confidential && !st.Drill {
		for _, ac := range b.cfg.Announce {
			ts, err := b.post(ctx, e, "announce-"+ac, ac, announceMessage(&st, ch)...)
			if err != nil {
				return err
			}
			announced[ac] = ts
		}
	}
	r, _, err := b.record(ctx, id)
	if err != nil {
		return err
	}
	if r.Since.IsZero() {
		r.Since, r.SinceEvent, r.Open = e.Time, e.ID, true
	}
	r.Channel, r.Name, r.KickoffTS, r.Severity = ch.ID, ch.Name, kickoff, st.Severity
	if len(announced) > 0 {
		r.Announced = announced
	}
	if err := b.putRecord(ctx, id, r); err != nil {
		return err
	}
	_, err = b.commands.Execute(ctx, id, incident.RecordLink{
		Type: events.TypeSlackChannelLinked,
		Linked: events.Linked{System: "slack", Ref: ch.ID, Name: "#" + ch.Name,
			URL: strings.TrimRight(b.cfg.WorkspaceURL, "/") + "/archives/" + ch.ID},
	}, command.Meta{Actor: "slack", Key: "slack:" + e.ID + ":channel_linked"})
	return err
}

// ensureChannel creates the incident channel, or finds the one an earlier
// attempt created before it could record it. A name taken by a channel
// that is not this incident's gets a numbered suffix; the walk through the
// suffixes is the same on every attempt, so a retry finds its own channel.
func (b *Bot) ensureChannel(ctx context.Context, st *incident.State) (channelRef, error) {
	base := b.channelName(st)
	for n := 1; n <= 20; n++ {
		name := base
		if n > 1 {
			name = withSuffix(base, n)
		}
		c, err := b.api.CreateConversationContext(ctx, slack.CreateConversationParams{ChannelName: name, IsPrivate: st.Confidential})
		if err == nil {
			return channelRef{ID: c.ID, Name: c.Name}, nil
		}
		if !isSlackErr(err, "name_taken") {
			return channelRef{}, slackError("conversations.create", err)
		}
		found, ok, err := b.findChannel(ctx, name, st.Confidential)
		if err != nil {
			return channelRef{}, err
		}
		if ok && !found.IsArchived && (found.Purpose.Value == "" || strings.Contains(found.Purpose.Value, marker(st.ID))) {
			return channelRef{ID: found.ID, Name: found.Name}, nil
		}
	}
	return channelRef{}, fmt.Errorf("slack: no free channel name for %s", st.CaseNumber)
}

func (b *Bot) channelName(st *incident.State) string {
	vars := nameVars(st.Service, st.Title, st.CaseNumber, st.Codename, st.DeclaredAt.In(b.cfg.location()))
	tmpl := b.cfg.ChannelTemplate
	if st.Confidential {
		// Only the codename: the channel's name is visible in search
		// results and in the sidebar of everyone invited later.
		tmpl = b.cfg.ConfidentialTemplate
		vars["service"], vars["slug"] = st.Codename, st.Codename
	}
	prefix := ""
	if st.Drill {
		prefix = b.cfg.DrillPrefix
	}
	return channelName(tmpl, vars, prefix)
}

func (b *Bot) findChannel(ctx context.Context, name string, private bool) (slack.Channel, bool, error) {
	types := []string{"public_channel"}
	if private {
		types = []string{"private_channel"}
	}
	p := &slack.GetConversationsParameters{Types: types, Limit: 200}
	for {
		chans, next, err := b.api.GetConversationsContext(ctx, p)
		if err != nil {
			return slack.Channel{}, false, slackError("conversations.list", err)
		}
		for _, c := range chans {
			if c.Name == name {
				return c, true, nil
			}
		}
		if next == "" {
			return slack.Channel{}, false, nil
		}
		p.Cursor = next
	}
}

// post sends a message once per causing event and step. A crash, a
// cancelled handler or a lost answer after Slack took the message does not
// repeat it: send finds the message by its metadata before posting again.
func (b *Bot) post(ctx context.Context, e events.Stored, step, channel string, opts ...slack.MsgOption) (string, error) {
	return b.reply(ctx, e, step, channel, "", opts...)
}

// reply is post for a reply in the thread of message thread.
func (b *Bot) reply(ctx context.Context, e events.Stored, step, channel, thread string, opts ...slack.MsgOption) (string, error) {
	k := key(e, step)
	return natsjs.Once(ctx, b.effects, k, func(ctx context.Context) (string, error) {
		return b.sendIn(ctx, k, channel, thread, opts...)
	})
}

func (b *Bot) setTopic(ctx context.Context, e events.Stored, st *incident.State, ch string, purpose bool) error {
	_, err := natsjs.Once(ctx, b.effects, key(e, "topic"), func(ctx context.Context) (bool, error) {
		if _, err := b.api.SetTopicOfConversationContext(ctx, ch, topic(st)); err != nil {
			return false, slackError("conversations.setTopic", err)
		}
		if purpose {
			if _, err := b.api.SetPurposeOfConversationContext(ctx, ch, purposeText(st)); err != nil {
				return false, slackError("conversations.setPurpose", err)
			}
		}
		return true, nil
	})
	return err
}

// invitees are the declarer, the service's first-response team, the
// security team and, at or above the threshold, the executives. A drill
// touches no real stakeholder: only the declarer and the responders.
func (b *Bot) invitees(ctx context.Context, st *incident.State, sev events.Severity) []string {
	var ids []string
	if userID.MatchString(st.DeclaredBy) {
		ids = append(ids, st.DeclaredBy)
	}
	team, ok := b.cfg.Services[st.Service]
	if !ok {
		team = b.cfg.DefaultTeam
	}
	ids = append(ids, team.Members...)
	if !st.Drill {
		ids = append(ids, b.cfg.SecurityTeam...)
		if b.executivesDue(sev) {
			ids = append(ids, b.cfg.Executives...)
		}
	}
	return ids
}

func (b *Bot) executivesDue(sev events.Severity) bool {
	threshold, _ := events.ParseSeverity(b.cfg.ExecutivesSeverity)
	return sev.Rank() > 0 && sev.Rank() <= threshold.Rank()
}

// inviteMembers invites ids into incident id's channel ch, the step of
// event e, and records who joined. A retry after the invitation, whose
// record failed, is answered already_in_channel and records them then.
func (b *Bot) inviteMembers(ctx context.Context, e events.Stored, id, ch string, ids []string) error {
	users, err := b.invite(ctx, ch, ids)
	if err != nil || len(users) == 0 {
		return err
	}
	return b.recordMembers(ctx, id, &events.MembersChanged{ChannelID: ch, Joined: b.members(ctx, users)}, "slack:"+e.ID+":invited")
}

// invite expands user groups and invites everyone in one call, and returns
// who is in the channel now. Slack's refusals for single users
// (deactivated, already there) are logged, not retried: they would fail
// the same way again.
func (b *Bot) invite(ctx context.Context, ch string, ids []string) ([]string, error) {
	var users []string
	for _, id := range ids {
		if groupID.MatchString(id) {
			members, err := b.api.GetUserGroupMembersContext(ctx, id)
			if err != nil {
				if isSlackErr(err, "") {
					b.log.Warn("slack: user group not expanded", "group", id, "err", err)
					continue
				}
				return nil, slackError("usergroups.users.list", err)
			}
			users = append(users, members...)
			continue
		}
		users = append(users, id)
	}
	slices.Sort(users)
	users = slices.Compact(users)
	if len(users) == 0 {
		return nil, nil
	}
	_, err := b.api.InviteUsersToConversationContext(ctx, ch, users...)
	switch {
	case err == nil, isSlackErr(err, "already_in_channel"):
		return users, nil
	case isSlackErr(err, ""):
		b.log.Warn("slack: invite refused", "channel", ch, "err", err)
		return nil, nil
	}
	return nil, slackError("conversations.invite", err)
}

// isSlackErr reports whether err is Slack's answer code (any code for "").
func isSlackErr(err error, code string) bool {
	var se slack.SlackErrorResponse
	return errors.As(err, &se) && (code == "" || se.Err == code)
}

func (b *Bot) changed(ctx context.Context, e events.Stored, id string, d events.Data) error {
	r, ok, err := b.record(ctx, id)
	if err != nil {
		return err
	}
	if !ok || r.Channel == "" {
		return nil // declared before this integration ran: no channel to talk to
	}
	if r.Archived {
		// Archived on close, and a closed incident takes no change: this
		// one was carried out before (a replay, a lost ledger), and Slack
		// refuses anything more in the channel.
		return nil
	}
	st, err := b.commands.Get(ctx, id)
	if err != nil {
		return err
	}
	if _, err := b.post(ctx, e, "post", r.Channel, changeMessage(e, d)...); err != nil {
		return err
	}
	switch d := d.(type) {
	case *events.NoteAdded:
		return nil // notes change neither the topic nor the summary
	case *events.StatusUpdated:
		r.Since, r.SinceEvent = e.Time, e.ID
	case *events.SeverityChanged:
		r.Severity = d.To
		if d.To.Rank() < d.From.Rank() {
			if err := b.escalated(ctx, e, &st, r, d); err != nil {
				return err
			}
		}
	}
	if err := b.setTopic(ctx, e, &st, r.Channel, false); err != nil {
		return err
	}
	if err := b.updateSummary(ctx, e, &st, r); err != nil {
		return err
	}
	return b.putRecord(ctx, id, r)
}

func (b *Bot) escalated(ctx context.Context, e events.Stored, st *incident.State, r record, d *events.SeverityChanged) error {
	if !st.Drill && b.executivesDue(d.To) && !b.executivesDue(d.From) {
		if _, err := natsjs.Once(ctx, b.effects, key(e, "invite"), func(ctx context.Context) (bool, error) {
			return true, b.inviteMembers(ctx, e, st.ID, r.Channel, b.cfg.Executives)
		}); err != nil {
			return err
		}
	}
	if st.Confidential || st.Drill {
		return nil
	}
	for _, ac := range b.cfg.Announce {
		if _, err := b.post(ctx, e, "announce-"+ac, ac, escalationMessage(st, r, d)...); err != nil {
			return err
		}
	}
	return nil
}

// updateSummary rewrites the pinned kickoff message with the current state.
func (b *Bot) updateSummary(ctx context.Context, e events.Stored, st *incident.State, r record) error {
	if r.KickoffTS == "" {
		return nil
	}
	_, err := natsjs.Once(ctx, b.effects, key(e, "summary"), func(ctx context.Context) (bool, error) {
		if err := b.pacer.Wait(ctx, r.Channel); err != nil {
			return false, err
		}
		_, _, _, err := b.api.UpdateMessageContext(ctx, r.Channel, r.KickoffTS, kickoffMessage(st, b.publicURL)...)
		if isSlackErr(err, "message_not_found") || isSlackErr(err, "cant_update_message") {
			b.log.Warn("slack: pinned summary not updated", "channel", r.Channel, "err", err)
			err = nil
		}
		return true, slackError("chat.update", err)
	})
	return err
}

func (b *Bot) closed(ctx context.Context, e events.Stored, id string, d *events.IncidentClosed) error {
	r, ok, err := b.record(ctx, id)
	if err != nil {
		return err
	}
	if !ok || r.Channel == "" || r.Archived {
		return nil // archiving is the close's last step: all of it was done
	}
	st, err := b.commands.Get(ctx, id)
	if err != nil {
		return err
	}
	if _, err := b.post(ctx, e, "post", r.Channel, closingMessage(&st, d)...); err != nil {
		return err
	}
	if err := b.setTopic(ctx, e, &st, r.Channel, false); err != nil {
		return err
	}
	if err := b.updateSummary(ctx, e, &st, r); err != nil {
		return err
	}
	r.Open = false
	if err := b.putRecord(ctx, id, r); err != nil {
		return err
	}
	arch, err := natsjs.Once(ctx, b.effects, key(e, "export"), func(ctx context.Context) (events.ConversationArchived, error) {
		return b.export(ctx, id, r)
	})
	if err != nil {
		return err
	}
	if _, err := b.commands.Execute(ctx, id, incident.RecordFact{Data: &arch},
		command.Meta{Actor: "slack", Key: "slack:" + e.ID + ":conversation_archived"}); err != nil {
		return err
	}
	if !b.cfg.ArchiveOnClose {
		return nil
	}
	if _, err = natsjs.Once(ctx, b.effects, key(e, "archive"), func(ctx context.Context) (bool, error) {
		err := b.api.ArchiveConversationContext(ctx, r.Channel)
		if isSlackErr(err, "already_archived") {
			err = nil
		}
		return true, slackError("conversations.archive", err)
	}); err != nil {
		return err
	}
	r.Archived = true
	return b.putRecord(ctx, id, r)
}
