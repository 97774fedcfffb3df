package slackbot

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/command"
	"github.com/hikeshi/hikeshi/services/incident"
	"github.com/slack-go/slack"
)

// Callback ids of the modals.
const (
	viewDeclare = "hikeshi_declare"
	viewStatus  = "hikeshi_status"
	viewClose   = "hikeshi_close"
)

func plain(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.PlainTextType, s, false, false)
}

func textInput(block, label, initial string, multiline, optional bool) *slack.InputBlock {
	el := slack.NewPlainTextInputBlockElement(nil, block)
	el.InitialValue = initial
	el.Multiline = multiline
	in := slack.NewInputBlock(block, plain(label), nil, el)
	in.Optional = optional
	return in
}

func selectInput(block, label string, values []string, initial string) *slack.InputBlock {
	var opts []*slack.OptionBlockObject
	for _, v := range values {
		opts = append(opts, slack.NewOptionBlockObject(v, plain(v), nil))
	}
	el := slack.NewOptionsSelectBlockElement(slack.OptTypeStatic, plain(label), block, opts...)
	if i := slices.Index(values, initial); i >= 0 {
		el.InitialOption = opts[i]
	}
	return slack.NewInputBlock(block, plain(label), nil, el)
}

func modal(callback, title, submit, meta string, blocks ...slack.Block) slack.ModalViewRequest {
	return slack.ModalViewRequest{
		Type: slack.VTModal, CallbackID: callback, Title: plain(title), Submit: plain(submit), Close: plain("Cancel"),
		PrivateMetadata: meta, Blocks: slack.Blocks{BlockSet: blocks},
	}
}

// declareModal is the declare form, pre-filled from a flagged message when
// f is set (its key travels in private_metadata).
func declareModal(f *flag, meta string) slack.ModalViewRequest {
	title, summary := "", ""
	if f != nil {
		first, _, _ := strings.Cut(strings.TrimSpace(f.Excerpt), "\n")
		title = truncate(first, 80)
		summary = strings.TrimSpace(f.Excerpt + "\n" + f.Permalink)
	}
	sevs := make([]string, len(events.Severities))
	for i, s := range events.Severities {
		sevs[i] = string(s)
	}
	opts := slack.NewCheckboxGroupsBlockElement("options",
		slack.NewOptionBlockObject("confidential", plain("Confidential (security): private channel, codename everywhere else"), nil),
		slack.NewOptionBlockObject("drill", plain("Drill: a training incident, no stakeholders"), nil))
	if f != nil {
		opts.InitialOptions = []*slack.OptionBlockObject{opts.Options[0]}
	}
	optBlock := slack.NewInputBlock("options", plain("Options"), nil, opts)
	optBlock.Optional = true
	return modal(viewDeclare, "Declare an incident", "Declare", meta,
		textInput("title", "Title", title, false, false),
		textInput("service", "Service", "", false, false),
		selectInput("severity", "Severity", sevs, "SEV3"),
		textInput("summary", "Summary", summary, true, true),
		optBlock,
	)
}

func statusModal(id string) slack.ModalViewRequest {
	var sts []string
	for _, s := range events.Statuses[:4] {
		sts = append(sts, string(s))
	}
	return modal(viewStatus, "Update status", "Update", id,
		selectInput("status", "Status", sts, ""),
		textInput("message", "What changed?", "", true, true))
}

func closeModal(id string) slack.ModalViewRequest {
	return modal(viewClose, "Close the incident", "Close", id,
		textInput("resolution", "Resolution", "", true, false),
		textInput("lessons", "Lessons learned", "", true, true))
}

// ServeInteractivity handles buttons (block_actions), modal submissions
// (view_submission) and message shortcuts (message_action).
func (b *Bot) ServeInteractivity(w http.ResponseWriter, r *http.Request) {
	b.serve(w, r, func(ctx context.Context, body []byte) (any, error) {
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, badRequest("interactivity form: %v", err)
		}
		p := form.Get("payload")
		if p == "" {
			return nil, badRequest("interactivity: no payload")
		}
		return b.onInteraction(ctx, []byte(p))
	})
}

// onInteraction handles an interaction payload (the HTTP form's payload
// field, or the payload of a Socket Mode interactive envelope).
func (b *Bot) onInteraction(ctx context.Context, payload []byte) (any, error) {
	cb, err := parseInteraction(payload)
	if err != nil {
		return nil, err
	}
	var answer any
	switch cb.Type {
	case slack.InteractionTypeBlockActions:
		err = b.action(ctx, cb)
	case slack.InteractionTypeViewSubmission:
		answer, err = b.submit(ctx, cb)
	case slack.InteractionTypeMessageAction:
		err = b.shortcut(ctx, cb)
	}
	if err != nil {
		b.log.Warn("slack interaction", "type", cb.Type, "err", err)
	}
	return answer, err
}

// parseInteraction decodes an interaction payload; fuzzed.
func parseInteraction(p []byte) (*slack.InteractionCallback, error) {
	var cb slack.InteractionCallback
	if err := json.Unmarshal(p, &cb); err != nil {
		return nil, badRequest("interactivity payload: %v", err)
	}
	switch cb.Type {
	case slack.InteractionTypeBlockActions, slack.InteractionTypeViewSubmission, slack.InteractionTypeViewClosed,
		slack.InteractionTypeMessageAction:
	default:
		return nil, badRequest("interactivity: unsupported type %q", cb.Type)
	}
	if cb.User.ID == "" {
		return nil, badRequest("interactivity: no user")
	}
	return &cb, nil
}

func (b *Bot) action(ctx context.Context, cb *slack.InteractionCallback) error {
	for _, a := range cb.ActionCallback.BlockActions {
		if ok, err := b.triageAction(ctx, cb, a); ok {
			return err
		}
		switch a.ActionID {
		case actionStatus:
			return b.openView(ctx, cb.TriggerID, statusModal(a.Value))
		case actionClose:
			return b.openView(ctx, cb.TriggerID, closeModal(a.Value))
		case actionDeclare:
			ch, ts, ok := strings.Cut(a.Value, "|")
			if !ok {
				return badRequest("declare button: bad value")
			}
			f, found, err := b.sharedFlag(ctx, ch, ts)
			if err != nil {
				return err
			}
			if !found {
				return badRequest("declare button: unknown flagged message")
			}
			return b.openView(ctx, cb.TriggerID, declareModal(&f, a.Value))
		}
	}
	return nil
}

// sharedFlag is the flag a declare button was posted for. The button can
// come back before the ledger records the share that posted it (the post
// is the share's last step), so a missing record is looked for again for
// a moment, well inside Slack's 3 s to answer.
func (b *Bot) sharedFlag(ctx context.Context, ch, ts string) (flag, bool, error) {
	var f flag
	for try := 0; ; try++ {
		found, err := b.effects.Get(ctx, flagKey(ch, ts), &f)
		if err != nil || found || try == 10 {
			return f, found, err
		}
		select {
		case <-ctx.Done():
			return f, false, ctx.Err()
		case <-time.After(150 * time.Millisecond):
		}
	}
}

func value(cb *slack.InteractionCallback, block string) string {
	v := cb.View.State.Values[block][block]
	if v.SelectedOption.Value != "" {
		return v.SelectedOption.Value
	}
	return v.Value
}

func checked(cb *slack.InteractionCallback, block, option string) bool {
	for _, o := range cb.View.State.Values[block][block].SelectedOptions {
		if o.Value == option {
			return true
		}
	}
	return false
}

// submit runs a modal's command. The view id is the same on a retry of the
// same submission, so it keys the command.
func (b *Bot) submit(ctx context.Context, cb *slack.InteractionCallback) (any, error) {
	if cb.View.State == nil || cb.View.ID == "" {
		return nil, badRequest("view_submission without state")
	}
	meta := b.keyed(ctx, cb.User.ID, "slack-view:"+cb.View.ID)
	id := cb.View.PrivateMetadata
	var err error
	switch cb.View.CallbackID {
	case viewDismiss:
		return b.dismissTriage(ctx, cb)
	case viewEscalate:
		return b.submitEscalation(ctx, cb)
	case viewDeclare:
		if k, ok := strings.CutPrefix(id, triageMeta); ok {
			if open, err := b.triageOpen(ctx, k, cb.View.ID); err != nil || !open {
				if err != nil {
					return nil, err
				}
				return map[string]any{"response_action": "errors", "errors": map[string]string{"title": errDecided.Error()}}, nil
			}
		}
		var st incident.State
		st, err = b.commands.Declare(ctx, incident.Declare{
			Title: value(cb, "title"), Service: value(cb, "service"), Severity: value(cb, "severity"),
			Summary: value(cb, "summary"), DeclaredBy: cb.User.ID, DeclaredByIdentity: b.identity(ctx, cb.User.ID),
			Confidential: checked(cb, "options", "confidential"), Drill: checked(cb, "options", "drill"),
		}, meta)
		if k, ok := strings.CutPrefix(id, triageMeta); ok && err == nil {
			err = b.acceptTriage(ctx, st, k, cb.View.ID, cb.User.ID)
		} else if err == nil && id != "" {
			err = b.attachFlag(ctx, st.ID, id, cb.View.ID)
		}
	case viewStatus:
		_, err = b.commands.Execute(ctx, id, incident.UpdateStatus{Status: value(cb, "status"), Message: value(cb, "message")}, meta)
	case viewClose:
		_, err = b.commands.Execute(ctx, id, incident.Close{Resolution: value(cb, "resolution"), LessonsLearned: value(cb, "lessons")}, meta)
	default:
		return nil, badRequest("unknown view %q", cb.View.CallbackID)
	}
	var v *incident.ValidationError
	var c *incident.ConflictError
	switch {
	case errors.As(err, &v):
		block := v.Field
		if block == "lessons_learned" {
			block = "lessons"
		}
		return map[string]any{"response_action": "errors", "errors": map[string]string{block: v.Message}}, nil
	case errors.As(err, &c), errors.Is(err, incident.ErrNotFound):
		// Not about one field: shown under the modal's first input.
		return map[string]any{"response_action": "errors", "errors": map[string]string{firstInput[cb.View.CallbackID]: err.Error()}}, nil
	}
	return nil, err
}

// firstInput is the block under which a modal shows errors that concern
// no single field (the incident is closed, or gone).
var firstInput = map[string]string{viewDeclare: "title", viewStatus: "status", viewClose: "resolution"}

// attachFlag records on the new incident the message it was declared from.
func (b *Bot) attachFlag(ctx context.Context, id, ref, viewID string) error {
	ch, ts, _ := strings.Cut(ref, "|")
	var f flag
	found, err := b.effects.Get(ctx, flagKey(ch, ts), &f)
	if err != nil || !found {
		return err
	}
	_, err = b.commands.Execute(ctx, id, incident.RecordFact{Data: &f},
		command.Meta{Actor: "slack", Key: "slack-view:" + viewID + ":flag"})
	return err
}
