package slackbot

import (
	"context"
	"fmt"

	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/incident"
	"github.com/slack-go/slack"
)

// requestPostmortem asks the GitHub module for the postmortem now by
// appending the request to the incident; the trigger id keys it, so a
// retried slash command asks once.
func (b *Bot) requestPostmortem(ctx context.Context, id, user, trigger string) (string, error) {
	st, err := b.commands.Execute(ctx, id, incident.RecordFact{Data: &events.PostmortemRequested{RequestedBy: user, Via: "slack"}},
		b.keyed(ctx, user, "slack-trigger:"+trigger))
	if err != nil {
		return "", err
	}
	if l, ok := st.Links["github"]; ok {
		return fmt.Sprintf("The postmortem pull request is open: <%s|%s>", l.URL, l.Name), nil
	}
	return "Postmortem requested: the pull request will be linked in this channel when it is open.", nil
}

// postmortemOpened tells the incident channel where the postmortem is. The
// GitHub module opens the pull request when the incident closes, so its
// link usually arrives after archive_on_close archived the channel, and
// Slack refuses messages to an archived channel (is_archived). Then the
// link goes where the incident was followed from outside (postmortemOutside).
// Unarchiving to post and archiving again was not chosen: it notifies every
// member twice and a bot removed by the archive may not unarchive; neither
// was holding the archive back for the postmortem, which may never come
// (no GitHub module, a confidential incident with no private repository)
// or come days later on request. A link that arrives before the close is
// posted in the channel as before.
func (b *Bot) postmortemOpened(ctx context.Context, e events.Stored, id string, l *events.Linked) error {
	r, ok, err := b.record(ctx, id)
	if err != nil || !ok || r.Channel == "" {
		return err
	}
	if !r.Archived {
		_, err = b.post(ctx, e, "post", r.Channel, slack.MsgOptionText(
			fmt.Sprintf(":memo: Postmortem pull request: <%s|%s>. Fill in impact, root cause and action items.", l.URL, l.Name), false))
		if !isSlackErr(err, "is_archived") { // archived meanwhile, by the close or by hand
			return err
		}
	}
	return b.postmortemOutside(ctx, e, id, r, l)
}

// postmortemOutside posts the postmortem link of an incident whose channel
// is archived: in the thread of the declaration's announcement in each
// announcement channel (a top-level message when the announcement's ts is
// not known), or, for a confidential incident, in security_channel under
// its codename. A drill reaches no stakeholder, so its link stays on the
// timeline and the API only, as does any link with nowhere to go (logged).
func (b *Bot) postmortemOutside(ctx context.Context, e events.Stored, id string, r record, l *events.Linked) error {
	st, err := b.commands.Get(ctx, id)
	if err != nil {
		return err
	}
	targets := b.cfg.Announce
	switch {
	case st.Drill:
		targets = nil
	case st.Confidential:
		targets = nil
		if b.cfg.SecurityChannel != "" {
			targets = []string{b.cfg.SecurityChannel}
		}
	}
	if len(targets) == 0 {
		b.log.Warn("slack: postmortem link not posted: the incident channel is archived and the incident has no announcement or security channel",
			"incident", st.CaseNumber, "postmortem", l.URL)
		return nil
	}
	// DisplayTitle is the codename of a confidential incident.
	text := fmt.Sprintf(":memo: Postmortem of *%s* (%s): <%s|%s>. Fill in impact, root cause and action items.",
		st.CaseNumber, st.DisplayTitle(), l.URL, l.Name)
	for _, ch := range targets {
		if _, err := b.reply(ctx, e, "postmortem-"+ch, ch, r.Announced[ch], slack.MsgOptionText(text, false)); err != nil {
			return err
		}
	}
	return nil
}
