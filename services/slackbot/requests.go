package slackbot

import (
	"context"
	"fmt"

	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/command"
	"github.com/hikeshi/hikeshi/services/incident"
	"github.com/slack-go/slack"
)

// requestPostmortem asks the GitHub module for the postmortem now by
// appending the request to the incident; the trigger id keys it, so a
// retried slash command asks once.
func (b *Bot) requestPostmortem(ctx context.Context, id, user, trigger string) (string, error) {
	st, err := b.commands.Execute(ctx, id, incident.RecordFact{Data: &events.PostmortemRequested{RequestedBy: user, Via: "slack"}},
		command.Meta{Actor: user, Key: "slack-trigger:" + trigger})
	if err != nil {
		return "", err
	}
	if l, ok := st.Links["github"]; ok {
		return fmt.Sprintf("The postmortem pull request is open: <%s|%s>", l.URL, l.Name), nil
	}
	return "Postmortem requested: the pull request will be linked in this channel when it is open.", nil
}

// postmortemOpened tells the incident channel where the postmortem is.
func (b *Bot) postmortemOpened(ctx context.Context, e events.Stored, id string, l *events.Linked) error {
	r, ok, err := b.record(ctx, id)
	if err != nil || !ok || r.Channel == "" {
		return err
	}
	_, err = b.post(ctx, e, "post", r.Channel, slack.MsgOptionText(
		fmt.Sprintf(":memo: Postmortem pull request: <%s|%s>. Fill in impact, root cause and action items.", l.URL, l.Name), false))
	return err
}
