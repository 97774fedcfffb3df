package console

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/command"
	"github.com/hikeshi/hikeshi/services/incident"
	"github.com/nats-io/nats.go/jetstream"
)

// The triage queue: escalations waiting for the security team to accept
// them (declare an incident, through the declare form filled from the
// item) or dismiss them (with a reason). Decisions land on the item's
// subject on TRIAGE exactly as the Slack module's do, so whichever side
// decides first wins and the other is told.

// triageItem is one open item on the dashboard, with its dismiss form.
type triageItem struct {
	events.TriageOpened
	Form form
	// Key makes the dismissal idempotent (a form sent twice).
	FormKey string
}

// openTriage lists the open items (none without a bus).
func (c *Console) openTriage(ctx context.Context) ([]triageItem, error) {
	if c.d.JS == nil {
		return nil, nil
	}
	items, err := natsjs.OpenTriage(ctx, c.d.JS)
	if err != nil {
		return nil, err
	}
	out := make([]triageItem, len(items))
	for i, it := range items {
		out[i] = triageItem{TriageOpened: it, Form: form{V: map[string]string{}, E: map[string]string{}}, FormKey: newKey()}
	}
	return out, nil
}

// triageOpen returns item k if it may still be decided by the decision
// with event id decision: it is open, or that decision is on it already
// (a form sent again).
func (c *Console) triageOpen(ctx context.Context, k, decision string) (events.TriageOpened, bool, error) {
	if c.d.JS == nil || k == "" {
		return events.TriageOpened{}, false, nil
	}
	last, err := natsjs.LastTriage(ctx, c.d.JS, k)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return events.TriageOpened{}, false, nil
	}
	if err != nil {
		return events.TriageOpened{}, false, err
	}
	env, err := events.Unmarshal(last.Data)
	if err != nil {
		return events.TriageOpened{}, false, err
	}
	if env.ID == decision {
		return events.TriageOpened{Key: k}, true, nil
	}
	if env.Type != events.TypeTriageOpened {
		return events.TriageOpened{}, false, nil
	}
	d, err := env.Decode()
	it, ok := d.(*events.TriageOpened)
	if err != nil || !ok {
		return events.TriageOpened{}, false, err
	}
	return *it, true, nil
}

// triageDecision is the event id of the decision a form (by its key)
// makes on item k: the same form sent twice decides once.
func triageDecision(k, formKey string) string {
	return events.DeriveID("triage-decided", k, "console", formKey)
}

// triageSummary is what the declare form's summary starts with for an
// item.
func triageSummary(it events.TriageOpened) string {
	return strings.TrimSpace(it.CustomerImpact + "\n" + it.Summary + "\nReported by " + it.ReportedBy)
}

// acceptTriage links the incident declared from item k both ways: a fact
// on the incident and the decision on the item.
func (c *Console) acceptTriage(ctx context.Context, st incident.State, k, formKey string, who Caller) error {
	acc := &events.TriageAccepted{Key: k, IncidentID: st.ID, CaseNumber: st.CaseNumber, AcceptedBy: who.Actor()}
	if _, err := c.d.Commands.Execute(ctx, st.ID, incident.RecordFact{Data: acc},
		command.Meta{Actor: who.Actor(), ActorName: who.Name(), Key: "console-triage:" + formKey}); err != nil {
		return err
	}
	err := natsjs.DecideTriage(ctx, c.d.JS, k, triageDecision(k, formKey), who.Actor(), time.Now(), acc)
	if errors.Is(err, natsjs.ErrTriageDecided) {
		c.d.Logger.Warn("console: triage item decided meanwhile; incident declared anyway", "item", k, "incident", st.ID)
		return nil
	}
	return err
}

// dismiss decides item {key} needs no incident, for the reason given.
func (c *Console) dismiss(w http.ResponseWriter, r *http.Request, who Caller) {
	if !who.Can(Declare, nil) {
		c.fail(w, r, who, http.StatusForbidden, "Your role may not decide escalations; ask the security team.")
		return
	}
	k := r.PathValue("key")
	reason := strings.TrimSpace(r.PostFormValue("reason"))
	formKey := r.PostFormValue("key")
	if formKey == "" || len(formKey) > 255 {
		formKey = newKey()
	}
	status, problem := http.StatusOK, ""
	switch _, open, err := c.triageOpen(r.Context(), k, triageDecision(k, formKey)); {
	case err != nil:
		c.d.Logger.Error("console: reading a triage item failed", "item", k, "err", err)
		status, problem = http.StatusServiceUnavailable, "The escalation could not be read from the event bus; nothing was recorded. Send it again in a moment."
	case !open:
		status, problem = http.StatusConflict, "This escalation was already decided (see the security channel or the incident); nothing was recorded."
	case reason == "":
		status, problem = http.StatusBadRequest, "Reason is required: say why this escalation needs no incident."
	case len([]rune(reason)) > incident.MaxText:
		status, problem = http.StatusBadRequest, "Reason is longer than 10000 characters."
	}
	if problem == "" {
		err := natsjs.DecideTriage(r.Context(), c.d.JS, k, triageDecision(k, formKey), who.Actor(), time.Now(),
			&events.TriageDismissed{Key: k, DismissedBy: who.Actor(), Reason: reason})
		switch {
		case errors.Is(err, natsjs.ErrTriageDecided):
			status, problem = http.StatusConflict, "Someone decided this escalation first; nothing was recorded."
		case err != nil:
			c.d.Logger.Error("console: dismissing a triage item failed", "item", k, "err", err)
			status, problem = http.StatusServiceUnavailable, "The event bus did not store the dismissal; nothing was recorded. Send it again in a moment."
		default:
			http.Redirect(w, r, "/dashboard#triage", http.StatusSeeOther)
			return
		}
	}
	c.showDashboard(w, r, who, status, map[string]form{k: {V: map[string]string{"reason": reason, "key": formKey},
		E: map[string]string{"reason": problem}}})
}
