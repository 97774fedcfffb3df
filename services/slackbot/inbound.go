package slackbot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/adapters/slacksign"
	"github.com/hikeshi/hikeshi/services/incident"
	"github.com/slack-go/slack"
)

// ackBudget keeps every answer inside Slack's 3-second limit.
const ackBudget = 2500 * time.Millisecond

// verified reads the body and checks Slack's signature before anything is
// parsed; it answers 401 (or 413) itself and returns nil then.
func (b *Bot) verified(w http.ResponseWriter, r *http.Request) []byte {
	body, err := b.verifier.Body(r)
	switch {
	case errors.Is(err, slacksign.ErrTooLarge):
		http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
		return nil
	case err != nil:
		http.Error(w, "invalid Slack signature: "+err.Error(), http.StatusUnauthorized)
		return nil
	}
	return body
}

// fail answers an error after verification: 503 when the bus could not
// store (Slack retries), 500 when Slack itself failed us, 400 for input.
func fail(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, natsjs.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		http.Error(w, "temporarily unavailable; retry", http.StatusServiceUnavailable)
	case errors.Is(err, errBadRequest):
		http.Error(w, err.Error(), http.StatusBadRequest)
	default:
		// Internal causes stay in the log, never in the answer.
		slog.Error("slack request failed", "err", err)
		http.Error(w, "internal error; the cause is in the hub's log", http.StatusInternalServerError)
	}
}

var errBadRequest = errors.New("bad request")

func badRequest(format string, a ...any) error {
	return fmt.Errorf("%w: %s", errBadRequest, fmt.Sprintf(format, a...))
}

// eventEnvelope is the outer Events API payload.
type eventEnvelope struct {
	Type      string          `json:"type"`
	Challenge string          `json:"challenge"`
	EventID   string          `json:"event_id"`
	Event     json.RawMessage `json:"event"`
}

type reactionEvent struct {
	Type     string `json:"type"`
	User     string `json:"user"`
	Reaction string `json:"reaction"`
	ItemUser string `json:"item_user"`
	Item     struct {
		Type    string `json:"type"`
		Channel string `json:"channel"`
		TS      string `json:"ts"`
	} `json:"item"`
}

// parseEvent decodes an Events API body; it is what the fuzz target runs.
func parseEvent(body []byte) (eventEnvelope, *reactionEvent, error) {
	var env eventEnvelope
	if err := json.Unmarshal(body, &env); err != nil {
		return env, nil, badRequest("events payload: %v", err)
	}
	switch env.Type {
	case "url_verification":
		if env.Challenge == "" {
			return env, nil, badRequest("url_verification without challenge")
		}
		return env, nil, nil
	case "event_callback":
	default:
		return env, nil, badRequest("unknown payload type %q", env.Type)
	}
	if env.EventID == "" || len(env.Event) == 0 {
		return env, nil, badRequest("event_callback without event_id or event")
	}
	var head struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(env.Event, &head); err != nil {
		return env, nil, badRequest("event: %v", err)
	}
	if head.Type != "reaction_added" {
		return env, nil, nil // subscribed to more than we use: acknowledge
	}
	var ev reactionEvent
	if err := json.Unmarshal(env.Event, &ev); err != nil {
		return env, nil, badRequest("reaction_added: %v", err)
	}
	if ev.User == "" || ev.Reaction == "" || ev.Item.Channel == "" || ev.Item.TS == "" {
		return env, nil, badRequest("reaction_added without user, reaction or item")
	}
	return env, &ev, nil
}

// ServeEvents is the Events API endpoint. A retry (X-Slack-Retry-Num)
// carries the same event_id, from which every effect and command key is
// derived, so it changes nothing.
func (b *Bot) ServeEvents(w http.ResponseWriter, r *http.Request) {
	b.serve(w, r, b.onEvent)
}

// serve verifies a request, hands its body to the dispatcher both
// transports share, and writes the answer Slack expects (if any).
func (b *Bot) serve(w http.ResponseWriter, r *http.Request, dispatch func(context.Context, []byte) (any, error)) {
	body := b.verified(w, r)
	if body == nil {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), ackBudget)
	defer cancel()
	answer, err := dispatch(ctx, body)
	if err != nil {
		fail(w, err)
		return
	}
	if answer != nil {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(answer)
	}
}

// onEvent handles an Events API payload (the HTTP body, or the payload of
// a Socket Mode events_api envelope).
func (b *Bot) onEvent(ctx context.Context, body []byte) (any, error) {
	env, ev, err := parseEvent(body)
	if err != nil {
		return nil, err
	}
	if env.Type == "url_verification" {
		return map[string]string{"challenge": env.Challenge}, nil
	}
	if ev == nil {
		return nil, b.membership(ctx, env)
	}
	if ev.Item.Type != "message" {
		return nil, nil
	}
	switch ev.Reaction {
	case b.cfg.Reaction:
		err = b.enqueueFlag(ctx, ev)
	case b.cfg.PinEmoji:
		err = b.pinNote(ctx, ev)
	}
	if err != nil {
		b.log.Warn("slack event", "event_id", env.EventID, "err", err)
	}
	return nil, err
}

// message reads one message (top level or thread reply).
func (b *Bot) message(ctx context.Context, ch, ts string) (slack.Message, error) {
	h, err := b.api.GetConversationHistoryContext(ctx, &slack.GetConversationHistoryParameters{
		ChannelID: ch, Latest: ts, Inclusive: true, Limit: 1})
	if err != nil {
		return slack.Message{}, slackError("conversations.history", err)
	}
	if len(h.Messages) == 1 && h.Messages[0].Timestamp == ts {
		return h.Messages[0], nil
	}
	return slack.Message{Msg: slack.Msg{Timestamp: ts}}, nil
}

// pinNote adds a message pinned with the note reaction in an incident
// channel to the timeline, once per message: the command key is the
// message, so Slack's retries and a second person's pin add nothing.
func (b *Bot) pinNote(ctx context.Context, ev *reactionEvent) error {
	id, ok, err := b.IncidentFor(ctx, ev.Item.Channel)
	if err != nil || !ok {
		return err
	}
	m, err := b.message(ctx, ev.Item.Channel, ev.Item.TS)
	if err != nil {
		return err
	}
	if m.Text == "" {
		return nil
	}
	text := fmt.Sprintf("%s: %s", mention(m.User), m.Text)
	// The note is the message: it happened when it was posted.
	note := incident.AddNote{Text: truncate(text, incident.MaxText), OccurredAt: slackTime(ev.Item.TS), Now: b.now()}
	meta := b.keyed(ctx, ev.User, "slack-pin:"+ev.Item.Channel+":"+ev.Item.TS)
	_, err = b.commands.Execute(ctx, id, note, meta)
	var v *incident.ValidationError
	if errors.As(err, &v) && v.Field == "occurred_at" {
		// A clock far off Slack's: the note still counts, at its recording.
		note.OccurredAt = time.Time{}
		_, err = b.commands.Execute(ctx, id, note, meta)
	}
	if isRefusal(err) {
		return nil // closed incident: nothing to add, and a retry would not help
	}
	return err
}

func isRefusal(err error) bool {
	var v *incident.ValidationError
	var c *incident.ConflictError
	return errors.As(err, &v) || errors.As(err, &c)
}

// ServeCommand is the slash command endpoint (/incident by default).
func (b *Bot) ServeCommand(w http.ResponseWriter, r *http.Request) {
	b.serve(w, r, func(ctx context.Context, body []byte) (any, error) {
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, badRequest("slash command form: %v", err)
		}
		return b.onCommand(ctx, form)
	})
}

// onCommand runs a slash command's fields; the answer is ephemeral.
func (b *Bot) onCommand(ctx context.Context, form url.Values) (any, error) {
	if form.Get("command") != b.cfg.Command || form.Get("user_id") == "" || form.Get("trigger_id") == "" {
		return nil, badRequest("not %s, or no user_id or trigger_id", b.cfg.Command)
	}
	reply, err := b.command(ctx, form)
	if err != nil || reply == "" {
		return nil, err
	}
	return map[string]string{"response_type": "ephemeral", "text": reply}, nil
}

func (b *Bot) helpText() string {
	c := b.cfg.Command
	return strings.Join([]string{
		"*" + c + "* opens the declare form. In an incident channel:",
		"`" + c + " severity SEV2 [reason]` · `" + c + " status monitoring [message]` · `" + c + " commander @user`",
		"`" + c + " note <text>` · `" + c + " close` (resolution and lessons learned) · `" + c + " postmortem` · `" + c + " help`",
	}, "\n")
}

// command runs a slash command; the answer is shown to the caller only.
func (b *Bot) command(ctx context.Context, form url.Values) (string, error) {
	sub, rest, _ := strings.Cut(strings.TrimSpace(form.Get("text")), " ")
	rest = strings.TrimSpace(rest)
	user, trigger := form.Get("user_id"), form.Get("trigger_id")
	switch strings.ToLower(sub) {
	case "", "declare":
		return "", b.openView(ctx, trigger, declareModal(nil, ""))
	case "help":
		return b.helpText(), nil
	}
	id, ok, err := b.IncidentFor(ctx, form.Get("channel_id"))
	if err != nil {
		return "", err
	}
	if !ok {
		return "This is not an incident channel. " + b.helpText(), nil
	}
	var c incident.Command
	switch strings.ToLower(sub) {
	case "severity", "sev":
		sev, reason, _ := strings.Cut(rest, " ")
		c = incident.ChangeSeverity{Severity: sev, Reason: reason}
	case "status":
		st, msg, _ := strings.Cut(rest, " ")
		c = incident.UpdateStatus{Status: st, Message: msg}
	case "commander", "ic":
		u := userFromMention(rest)
		c = incident.AssignCommander{User: u, UserIdentity: b.identity(ctx, u)}
	case "note":
		c = incident.AddNote{Text: rest}
	case "close":
		return "", b.openView(ctx, trigger, closeModal(id))
	case "postmortem":
		return b.requestPostmortem(ctx, id, user, trigger)
	default:
		return fmt.Sprintf("Unknown subcommand %q.\n%s", sub, b.helpText()), nil
	}
	// trigger_id is unique per invocation: the key makes a repeat harmless.
	_, err = b.commands.Execute(ctx, id, c, b.keyed(ctx, user, "slack-trigger:"+trigger))
	if isRefusal(err) {
		return "Not done: " + err.Error(), nil
	}
	if err != nil {
		return "", err
	}
	return "Done.", nil
}

// userFromMention reads <@U123|name> or <@U123> or a plain name.
func userFromMention(s string) string {
	s = strings.TrimSpace(s)
	if in, ok := strings.CutPrefix(s, "<@"); ok {
		in, _, _ = strings.Cut(strings.TrimSuffix(in, ">"), "|")
		return in
	}
	return strings.TrimPrefix(s, "@")
}

func (b *Bot) openView(ctx context.Context, trigger string, v slack.ModalViewRequest) error {
	_, err := b.api.OpenViewContext(ctx, trigger, v)
	return slackError("views.open", err)
}

// slackTime is the time of a Slack message timestamp ("1732200000.123456":
// seconds and microseconds since the epoch); zero if ts is not one.
func slackTime(ts string) time.Time {
	sec, frac, _ := strings.Cut(ts, ".")
	s, err := strconv.ParseInt(sec, 10, 64)
	if err != nil || s <= 0 {
		return time.Time{}
	}
	frac = (frac + "000000")[:6]
	us, err := strconv.ParseInt(frac, 10, 64)
	if err != nil {
		return time.Time{}
	}
	return time.Unix(s, us*1000).UTC()
}
