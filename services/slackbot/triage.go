package slackbot

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/incident"
	"github.com/hikeshi/hikeshi/services/projection"
	"github.com/hikeshi/hikeshi/services/sanitize"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/slack-go/slack"
)

// Triage items come from the signals module on the TRIAGE stream; the
// security team accepts (declares) or dismisses them from the security
// channel. The decision is published on the item's subject expecting the
// opening to be its last message, so two people deciding at once cannot
// both succeed.
const (
	TriageDurable       = "slack-triage"
	actionTriageAccept  = "hikeshi_triage_accept"
	actionTriageDismiss = "hikeshi_triage_dismiss"
	viewDismiss         = "hikeshi_triage_dismiss"
	triageMeta          = "triage:"
)

// TriageProjector posts new items and marks decided ones.
func (b *Bot) TriageProjector() projection.Projector {
	return projection.Projector{Durable: TriageDurable, Stream: events.TriageStream,
		Filter: events.TriageSubjectPrefix + ".>", Handle: b.handleTriage}
}

// triagePost is the ledger's record of an item's message.
type triagePost struct {
	Channel string              `json:"channel"`
	TS      string              `json:"ts"`
	Item    events.TriageOpened `json:"item"`
}

func triageKey(k string, step ...string) string {
	return natsjs.EffectKey(append([]string{"slack", "triage", k}, step...)...)
}

func (b *Bot) handleTriage(ctx context.Context, e events.Stored) error {
	if b.cfg.SecurityChannel == "" {
		return nil
	}
	d, err := e.Decode()
	if err != nil {
		return err
	}
	switch d := d.(type) {
	case *events.TriageOpened:
		k := triageKey(d.Key)
		_, err := natsjs.Once(ctx, b.effects, k, func(ctx context.Context) (triagePost, error) {
			ts, err := b.send(ctx, k, b.cfg.SecurityChannel, triageMessage(d, "")...)
			return triagePost{Channel: b.cfg.SecurityChannel, TS: ts, Item: *d}, err
		})
		return err
	case *events.TriageAccepted:
		return b.triageDecided(ctx, d.Key, fmt.Sprintf(":white_check_mark: Accepted by %s: %s declared.", mention(d.AcceptedBy), d.CaseNumber))
	case *events.TriageDismissed:
		return b.triageDecided(ctx, d.Key, fmt.Sprintf(":no_entry_sign: Dismissed by %s: %s", mention(d.DismissedBy), d.Reason))
	}
	return nil
}

// triageDecided replaces the item's buttons with the decision, once.
func (b *Bot) triageDecided(ctx context.Context, k, outcome string) error {
	var p triagePost
	if ok, err := b.effects.Get(ctx, triageKey(k), &p); err != nil || !ok {
		return err
	}
	_, err := natsjs.Once(ctx, b.effects, triageKey(k, "decided"), func(ctx context.Context) (bool, error) {
		if err := b.pacer.Wait(ctx, p.Channel); err != nil {
			return false, err
		}
		_, _, _, err := b.api.UpdateMessageContext(ctx, p.Channel, p.TS, triageMessage(&p.Item, outcome)...)
		if isSlackErr(err, "message_not_found") {
			err = nil
		}
		return true, slackError("chat.update", err)
	})
	return err
}

func triageMessage(it *events.TriageOpened, outcome string) []slack.MsgOption {
	text := fmt.Sprintf(":inbox_tray: *Escalation for triage*: %s\nReported by %s at %s · severity %s",
		sanitize.Line(it.Title), it.ReportedBy, it.ReportedAt.UTC().Format("2006-01-02 15:04 UTC"), it.Severity)
	if it.Priority != "" {
		text += " · priority " + it.Priority
	}
	if it.Service != "" {
		text += " · suspected service " + it.Service
	}
	if it.CustomerImpact != "" {
		text += "\n*Customer impact*: " + it.CustomerImpact
	}
	for _, l := range it.Links {
		text += fmt.Sprintf("\n<%s|%s>", l.URL, cmpOr(l.Title, l.URL))
	}
	blocks := []slack.Block{slack.NewSectionBlock(md(text), nil, nil)}
	if outcome == "" {
		accept := button(actionTriageAccept, "Accept (declare)", it.Key)
		accept.Style = slack.StylePrimary
		dismiss := button(actionTriageDismiss, "Dismiss", it.Key)
		dismiss.Style = slack.StyleDanger
		blocks = append(blocks, slack.NewActionBlock("hikeshi_triage", accept, dismiss))
	} else {
		blocks = append(blocks, slack.NewContextBlock("hikeshi_triage_outcome", md(outcome)))
		text += "\n" + outcome
	}
	return []slack.MsgOption{msgText(text), slack.MsgOptionBlocks(blocks...)}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// triageAction handles the item's buttons; ok is false for other actions.
func (b *Bot) triageAction(ctx context.Context, cb *slack.InteractionCallback, a *slack.BlockAction) (bool, error) {
	if a.ActionID != actionTriageAccept && a.ActionID != actionTriageDismiss {
		return false, nil
	}
	var p triagePost
	found, err := b.effects.Get(ctx, triageKey(a.Value), &p)
	if err != nil {
		return true, err
	}
	if !found {
		return true, badRequest("triage button: unknown item")
	}
	if a.ActionID == actionTriageDismiss {
		return true, b.openView(ctx, cb.TriggerID, modal(viewDismiss, "Dismiss the escalation", "Dismiss", p.Item.Key,
			textInput("reason", "Why needs it no incident?", "", true, false)))
	}
	v := declareModal(nil, triageMeta+p.Item.Key)
	summary := strings.TrimSpace(p.Item.CustomerImpact + "\n" + p.Item.Summary + "\nReported by " + p.Item.ReportedBy)
	for _, bl := range v.Blocks.BlockSet {
		in, ok := bl.(*slack.InputBlock)
		if !ok {
			continue
		}
		if el, ok := in.Element.(*slack.PlainTextInputBlockElement); ok {
			switch in.BlockID {
			case "title":
				el.InitialValue = truncate(sanitize.Line(p.Item.Title), 150)
			case "service":
				el.InitialValue = p.Item.Service
			case "summary":
				el.InitialValue = summary
			}
		}
	}
	return true, b.openView(ctx, cb.TriggerID, v)
}

// errDecided: someone decided the item first.
var errDecided = natsjs.ErrTriageDecided

// decide publishes a decision on the item's subject unless another one
// is there; a retry of the same decision (same event id) is done already.
func (b *Bot) decide(ctx context.Context, k, id, actor string, d events.Data) error {
	return natsjs.DecideTriage(ctx, b.js, k, id, actor, b.now(), d)
}

func (b *Bot) lastTriage(ctx context.Context, k string) (*jetstream.RawStreamMsg, error) {
	return natsjs.LastTriage(ctx, b.js, k)
}

// triageOpen reports whether item k may still be decided by view viewID:
// it is open, or this view's decision (a retried submission) is on it.
func (b *Bot) triageOpen(ctx context.Context, k, viewID string) (bool, error) {
	last, err := b.lastTriage(ctx, k)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("%w: triage %s: %v", natsjs.ErrUnavailable, k, err)
	}
	env, err := events.Unmarshal(last.Data)
	return err == nil && (env.Type == events.TypeTriageOpened || env.ID == events.DeriveID("triage-decided", k, viewID)), err
}

// acceptTriage links the incident declared from item k both ways: a fact
// on the incident and the decision on the item.
func (b *Bot) acceptTriage(ctx context.Context, st incident.State, k, viewID, user string) error {
	acc := &events.TriageAccepted{Key: k, IncidentID: st.ID, CaseNumber: st.CaseNumber, AcceptedBy: user}
	if _, err := b.commands.Execute(ctx, st.ID, incident.RecordFact{Data: acc},
		b.keyed(ctx, user, "slack-view:"+viewID+":triage")); err != nil {
		return err
	}
	err := b.decide(ctx, k, events.DeriveID("triage-decided", k, viewID), user, acc)
	if errors.Is(err, errDecided) {
		b.log.Warn("slack: triage item decided meanwhile; incident declared anyway", "item", k, "incident", st.ID)
		return nil
	}
	return err
}

func (b *Bot) dismissTriage(ctx context.Context, cb *slack.InteractionCallback) (any, error) {
	k := cb.View.PrivateMetadata
	reason := strings.TrimSpace(value(cb, "reason"))
	if reason == "" {
		return map[string]any{"response_action": "errors", "errors": map[string]string{"reason": "Say why."}}, nil
	}
	err := b.decide(ctx, k, events.DeriveID("triage-decided", k, cb.View.ID), cb.User.ID,
		&events.TriageDismissed{Key: k, DismissedBy: cb.User.ID, Reason: truncate(reason, incident.MaxText)})
	if errors.Is(err, errDecided) {
		return map[string]any{"response_action": "errors", "errors": map[string]string{"reason": errDecided.Error()}}, nil
	}
	return nil, err
}
