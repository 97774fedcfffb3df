package console

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"strings"

	"github.com/hikeshi/hikeshi/services/command"
	"github.com/hikeshi/hikeshi/services/incident"
)

type declarePage struct {
	form
	// Key makes the form's declaration idempotent: sending it twice (a
	// double click, a retry after a timeout) declares one incident.
	Key string
	// Triage is the escalation the declaration accepts, if any.
	Triage string
}

func (declarePage) title() string { return "Declare an incident" }

var declareFields = []string{"title", "service", "severity", "summary", "confidential", "drill"}

func newKey() string {
	b := make([]byte, 18)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (c *Console) declareForm(w http.ResponseWriter, r *http.Request, who Caller) {
	if !who.Can(Declare, nil) {
		c.fail(w, r, who, http.StatusForbidden, "Your role may not declare incidents; ask a responder.")
		return
	}
	p := declarePage{form: form{V: map[string]string{"severity": "SEV3"}, E: map[string]string{}}, Key: newKey()}
	if k := r.URL.Query().Get("triage"); k != "" {
		// Accepting an escalation: the form starts from what it reported.
		it, open, err := c.triageOpen(r.Context(), k, "")
		switch {
		case err != nil:
			p.Problem = "The escalation could not be read from the event bus; reload in a moment."
		case !open:
			p.Problem = "This escalation was already decided (or is unknown): declaring here declares a new incident, unlinked to it."
		default:
			p.Triage = k
			p.V["title"], p.V["service"], p.V["summary"] = it.Title, it.Service, triageSummary(it)
		}
	}
	c.render(w, r, who, http.StatusOK, "declare", p)
}

// declare declares an incident as the caller and opens its page; a
// refusal shows the form again, as typed, with the reason by the field.
func (c *Console) declare(w http.ResponseWriter, r *http.Request, who Caller) {
	if !who.Can(Declare, nil) {
		c.fail(w, r, who, http.StatusForbidden, "Your role may not declare incidents; ask a responder.")
		return
	}
	if err := r.ParseForm(); err != nil {
		c.fail(w, r, who, http.StatusBadRequest, "The form could not be read: "+err.Error())
		return
	}
	v := r.PostForm
	key := v.Get("key")
	if len(key) > 255 {
		key = ""
	}
	k := v.Get("triage")
	if k != "" && key == "" {
		key = newKey() // the decision on the item needs a key
	}
	if k != "" {
		// An escalation someone else decided meanwhile is not accepted
		// twice; the form says so, as typed.
		if _, open, err := c.triageOpen(r.Context(), k, triageDecision(k, key)); err != nil || !open {
			msg := "This escalation was already decided meanwhile; nothing was declared. Reload the dashboard."
			if err != nil {
				msg = "The escalation could not be read from the event bus; nothing was declared. Send the form again in a moment."
			}
			c.declareAgain(w, r, who, http.StatusConflict, "", msg, key, k)
			return
		}
	}
	st, err := c.d.Commands.Declare(r.Context(), incident.Declare{
		Title: v.Get("title"), Service: v.Get("service"), Severity: v.Get("severity"), Summary: v.Get("summary"),
		DeclaredBy: who.Actor(), Confidential: v.Get("confidential") != "", Drill: v.Get("drill") != "",
	}, command.Meta{Actor: who.Actor(), ActorName: who.Name(), Key: key})
	if err == nil && k != "" {
		if err = c.acceptTriage(r.Context(), st, k, key, who); err != nil {
			// Declared, but not linked to the item yet: the same form sent
			// again (same key) finishes the job without a second incident.
			c.d.Logger.Error("console: accepting a triage item failed", "item", k, "incident", st.ID, "err", err)
			c.declareAgain(w, r, who, http.StatusServiceUnavailable, "", st.CaseNumber+" is declared, but the escalation was not marked accepted: send the form again to finish.", key, k)
			return
		}
	}
	if err == nil {
		http.Redirect(w, r, "/incidents/"+st.CaseNumber, http.StatusSeeOther)
		return
	}
	status, field, msg := c.explain(err, declareFields, st)
	c.declareAgain(w, r, who, status, field, msg, key, k)
}

// declareAgain shows the declare form again as sent, with why it was
// refused next to field (or above the form).
func (c *Console) declareAgain(w http.ResponseWriter, r *http.Request, who Caller, status int, field, msg, key, triage string) {
	p := declarePage{form: form{V: map[string]string{}, E: map[string]string{}}, Key: key, Triage: triage}
	if p.Key == "" {
		p.Key = newKey()
	}
	for _, k := range declareFields {
		p.V[k] = strings.TrimSpace(r.PostForm.Get(k))
	}
	if field != "" {
		p.E[field] = msg
	} else {
		p.Problem = msg
	}
	c.render(w, r, who, status, "declare", p)
}
