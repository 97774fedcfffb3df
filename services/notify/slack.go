package notify

import (
	"context"
	"fmt"

	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/command"
	"github.com/hikeshi/hikeshi/services/incident"
)

// announce asks the Slack module to post to a channel: the request is a
// fact on the incident under the send's key, so it is appended once, and
// the Slack module posts it once and records io.hikeshi.notify.sent.
func (p *Projector) announce(ctx context.Context, recorded *incident.State, rule *Rule, name, channel, key string, r Report) error {
	st, err := p.env.Commands.Execute(ctx, r.IncidentID, incident.RecordFact{Data: &events.AnnouncementRequested{
		Channel: channel, Text: slackText(r, rule.Template), Rule: rule.Name, Recipient: name, Trigger: r.Trigger, CauseID: r.EventID,
	}}, command.Meta{Actor: Name, Key: key})
	if err != nil {
		return err
	}
	*recorded = st
	return nil
}

// slackText is the announcement: built from the Report, which holds only
// what may leave the private channel (the codename of a confidential
// incident), in the voice of the rule's template.
func slackText(r Report, tpl string) string {
	if tpl == External {
		return fmt.Sprintf("%s%s: %s. %s", r.Marker, r.Title, r.ExternalHeadline(), r.Severity)
	}
	text := fmt.Sprintf(":rotating_light: %s*%s %s* (%s) %s — %s, %s", r.Marker, r.CaseNumber, r.Title, r.Service, r.Headline(), r.Severity, r.Status)
	if r.Message != "" {
		text += fmt.Sprintf("\n%s: %s", r.MessageLabel, r.Message)
	}
	return text + fmt.Sprintf("\n<%s|Timeline>", r.TimelineURL)
}
