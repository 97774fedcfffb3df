package console

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/incident"
)

// pageNames are the templates under templates/ that are whole pages; each
// is parsed with layout.html and parts.html.
var pageNames = []string{"incidents", "incident", "declare", "dashboard", "signals", "insights", "error", "signedout"}

var funcs = template.FuncMap{
	"age":        age,
	"since":      func(t time.Time) string { return age(time.Since(t)) },
	"when":       func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
	"iso":        func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"lower":      strings.ToLower,
	"split":      strings.Split,
	"add":        func(a, b int) int { return a + b },
	"severities": func() []events.Severity { return events.Severities },
	"statuses":   func() []events.Status { return events.Statuses[:len(events.Statuses)-1] },
	"definition": func(s events.Severity) string { return severityDefinitions[s] },
	"field":      func(name string, errs map[string]string) fieldError { return fieldError{name, errs[name]} },
}

// fieldError is a field's name and what is wrong with it ("" when
// nothing), shown next to it.
type fieldError struct{ Name, Msg string }

// severityDefinitions are shown beside the severity choice.
var severityDefinitions = map[events.Severity]string{
	events.SEV1: "Critical: a core service is down, or data is lost or exposed, for many customers. Everyone needed, now.",
	events.SEV2: "Major: a core feature is degraded for many customers, or a security incident is under way. Respond now.",
	events.SEV3: "Minor: a feature is degraded for some customers and a workaround exists. Respond within working hours.",
	events.SEV4: "Low: little customer impact. Fix it in the normal course of work.",
	events.SEV5: "Informational: no customer impact; recorded to learn from.",
}

func parsePages() map[string]*template.Template {
	pages := map[string]*template.Template{}
	for _, name := range pageNames {
		pages[name] = template.Must(template.New(name).Funcs(funcs).ParseFS(files,
			"templates/layout.html", "templates/parts.html", "templates/"+name+".html"))
	}
	return pages
}

// layout is what every page shows around its content.
type layout struct {
	Title  string
	Caller Caller
	CSRF   string
	Nav    string
	// SignOut is where the sign-out form posts; empty: the caller has no
	// session to end (a token, the local operator).
	SignOut string
	// CanDeclare: the caller may declare (the Declare link shows).
	CanDeclare bool
	Page       any
}

// render writes a whole page.
func (c *Console) render(w http.ResponseWriter, r *http.Request, who Caller, status int, name string, data any) {
	l := layout{Caller: who, CSRF: c.csrfToken(w, r), Nav: name, Page: data, CanDeclare: who != nil && who.Can(Declare, nil)}
	if _, ok := c.sessionCSRF(r); ok && who != nil {
		l.SignOut = c.d.SignOut
	}
	if t, ok := data.(interface{ title() string }); ok {
		l.Title = t.title()
	}
	var b bytes.Buffer
	if err := c.pages[name].ExecuteTemplate(&b, "layout.html", l); err != nil {
		c.d.Logger.Error("console: rendering a page failed", "page", name, "err", err)
		http.Error(w, "internal error rendering the page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

// fragment renders one named template of a page (a timeline entry, the
// incident header) for the live timeline.
func (c *Console) fragment(page, name string, data any) (string, error) {
	var b bytes.Buffer
	err := c.pages[page].ExecuteTemplate(&b, name, data)
	return b.String(), err
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// age is a duration as people say it: 45s, 12m, 3h 5m, 2d 4h.
func age(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh %dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd %dh", int(d.Hours())/24, int(d.Hours())%24)
}

// view is an incident as the pages show it.
type view struct {
	incident.State
	// Name is the title; a confidential incident's codename goes beside it.
	Name  string
	Age   string
	Links []link
}

type link struct{ Label, Name, URL string }

// linkLabels name the systems an incident can be linked to, in the order
// the header shows them.
var linkLabels = []struct{ system, label string }{
	{"slack", "Slack channel"}, {"jira", "JIRA case"}, {"github", "Postmortem PR"},
}

func newView(st incident.State) view {
	v := view{State: st, Name: st.Title}
	if st.Confidential && st.Codename != "" {
		v.Name = st.Title + " (" + st.Codename + ")"
	}
	end := time.Now()
	if st.ClosedAt != nil {
		end = *st.ClosedAt
	}
	v.Age = age(end.Sub(st.DeclaredAt))
	for _, l := range linkLabels {
		if got, ok := st.Links[l.system]; ok && got.URL != "" {
			name := got.Name
			if name == "" {
				name = got.Ref
			}
			v.Links = append(v.Links, link{Label: l.label, Name: name, URL: got.URL})
		}
	}
	return v
}
