package slackbot

import (
	"fmt"
	"strings"

	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/incident"
	"github.com/hikeshi/hikeshi/services/integration"
	"github.com/hikeshi/hikeshi/services/sanitize"
	"github.com/slack-go/slack"
)

// Action ids of the buttons the bot posts; the interactivity endpoint
// routes on them.
const (
	actionStatus  = "hikeshi_status"
	actionClose   = "hikeshi_close"
	actionDeclare = "hikeshi_declare"
)

const guidanceText = "Before anyone starts recovery work, align on the situation: what is broken, " +
	"who is affected, and what changed. Post findings in this channel so the timeline keeps them; " +
	"use `/incident status`, `/incident note` and `/incident commander` to record decisions."

func requestText(declarer string) string {
	who := mention(declarer)
	return who + ", please describe what happened, the impact (who and what is affected), and when it was first noticed."
}

// mention turns a Slack user id into a mention and leaves other names as
// they are.
func mention(user string) string {
	if userID.MatchString(user) {
		return "<@" + user + ">"
	}
	if user == "" {
		return "_nobody yet_"
	}
	return user
}

// marker identifies the incident in the channel purpose, so a channel
// found by name is known to be this incident's.
func marker(id string) string { return "hikeshi:" + id }

func topic(st *incident.State) string {
	t := fmt.Sprintf("%s · %s · %s · IC %s", st.CaseNumber, st.Severity, st.Status, mention(st.Commander))
	return truncate(sanitize.Line(t), 250)
}

func purposeText(st *incident.State) string {
	return truncate(fmt.Sprintf("%s: %s", st.CaseNumber, sanitize.Line(st.Title)), 200) + " (" + marker(st.ID) + ")"
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// kickoffMessage is the pinned summary: it is posted inside the incident
// channel only, so it may carry the real title of a confidential incident.
func kickoffMessage(st *incident.State, publicURL string) []slack.MsgOption {
	title := fmt.Sprintf("%s: %s", st.CaseNumber, sanitize.Line(st.Title))
	if st.Drill {
		title = "[DRILL] " + title
	}
	fields := []*slack.TextBlockObject{
		md("*Severity*\n" + string(st.Severity)),
		md("*Status*\n" + string(st.Status)),
		md("*Commander*\n" + mention(st.Commander)),
		md("*Declared by*\n" + mention(st.DeclaredBy)),
		md("*Service*\n" + st.Service),
	}
	links := []string{fmt.Sprintf("<%s|Timeline>", integration.TimelineURL(publicURL, st.ID))}
	if j, ok := st.Links["jira"]; ok && j.URL != "" {
		links = append(links, fmt.Sprintf("<%s|%s>", j.URL, j.Name))
	}
	blocks := []slack.Block{
		slack.NewHeaderBlock(slack.NewTextBlockObject(slack.PlainTextType, truncate(title, 150), false, false)),
	}
	if st.Summary != "" {
		blocks = append(blocks, slack.NewSectionBlock(md(truncate(st.Summary, 3000)), nil, nil))
	}
	blocks = append(blocks,
		slack.NewSectionBlock(nil, fields, nil),
		slack.NewContextBlock("", md(strings.Join(links, " · "))),
	)
	if st.Open() {
		blocks = append(blocks, slack.NewActionBlock("hikeshi_actions",
			button(actionStatus, "Update status", st.ID),
			button(actionClose, "Close", st.ID)))
	}
	return []slack.MsgOption{msgText(title), slack.MsgOptionBlocks(blocks...)}
}

// msgText and md carry text to Slack: line breaks kept, controls and
// terminal escapes removed (titles in them are made one line first).
func msgText(s string) slack.MsgOption {
	return slack.MsgOptionText(sanitize.Text(s), false)
}

func md(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.MarkdownType, sanitize.Text(s), false, false)
}

func button(action, label, value string) *slack.ButtonBlockElement {
	return slack.NewButtonBlockElement(action, value, slack.NewTextBlockObject(slack.PlainTextType, label, false, false))
}

// announceMessage goes to the announcement channels: never called for
// confidential or drill incidents.
func announceMessage(st *incident.State, ch channelRef) []slack.MsgOption {
	text := fmt.Sprintf(":rotating_light: %s *%s* declared: %s — join <#%s>", st.Severity, st.CaseNumber, sanitize.Line(st.DisplayTitle()), ch.ID)
	return []slack.MsgOption{msgText(text)}
}

func escalationMessage(st *incident.State, r record, d *events.SeverityChanged) []slack.MsgOption {
	text := fmt.Sprintf(":arrow_double_up: *%s* escalated from %s to %s: %s — <#%s>", st.CaseNumber, d.From, d.To, sanitize.Line(st.DisplayTitle()), r.Channel)
	return []slack.MsgOption{msgText(text)}
}

func changeMessage(e events.Stored, d events.Data) []slack.MsgOption {
	by := mention(e.Actor)
	var text string
	switch d := d.(type) {
	case *events.SeverityChanged:
		text = fmt.Sprintf(":warning: Severity %s → *%s* (by %s)", d.From, d.To, by)
		if d.Reason != "" {
			text += "\n> " + d.Reason
		}
	case *events.StatusUpdated:
		text = fmt.Sprintf(":information_source: Status %s → *%s* (by %s)", d.From, d.To, by)
		if d.Message != "" {
			text += "\n> " + d.Message
		}
	case *events.CommanderAssigned:
		text = fmt.Sprintf(":firefighter: %s is now the incident commander (by %s)", mention(d.User), by)
	case *events.NoteAdded:
		text = fmt.Sprintf(":memo: Note from %s:\n> %s", by, d.Text)
	}
	return []slack.MsgOption{msgText(truncate(text, 3900))}
}

func closingMessage(st *incident.State, d *events.IncidentClosed) []slack.MsgOption {
	text := fmt.Sprintf(":white_check_mark: *%s closed.*\n*Resolution:* %s", st.CaseNumber, d.Resolution)
	if d.LessonsLearned != "" {
		text += "\n*Lessons learned:* " + d.LessonsLearned
	}
	text += "\nThis conversation is exported to the incident record."
	return []slack.MsgOption{msgText(truncate(text, 3900))}
}

func nudgeMessage(id string, since string) []slack.MsgOption {
	text := "What is the status now? No status update since " + since + "."
	return []slack.MsgOption{
		msgText(text),
		slack.MsgOptionBlocks(
			slack.NewSectionBlock(md(":hourglass: *What is the status now?* No status update since "+since+"."), nil, nil),
			slack.NewActionBlock("hikeshi_nudge", button(actionStatus, "Update status", id)),
		),
	}
}
