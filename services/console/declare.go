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
	st, err := c.d.Commands.Declare(r.Context(), incident.Declare{
		Title: v.Get("title"), Service: v.Get("service"), Severity: v.Get("severity"), Summary: v.Get("summary"),
		DeclaredBy: who.Actor(), Confidential: v.Get("confidential") != "", Drill: v.Get("drill") != "",
	}, command.Meta{Actor: who.Actor(), Key: key})
	if err == nil {
		http.Redirect(w, r, "/incidents/"+st.CaseNumber, http.StatusSeeOther)
		return
	}
	status, field, msg := c.explain(err, declareFields, st)
	p := declarePage{form: form{V: map[string]string{}, E: map[string]string{}}, Key: key}
	if p.Key == "" {
		p.Key = newKey()
	}
	for _, k := range declareFields {
		p.V[k] = strings.TrimSpace(v.Get(k))
	}
	if field != "" {
		p.E[field] = msg
	} else {
		p.Problem = msg
	}
	c.render(w, r, who, status, "declare", p)
}
