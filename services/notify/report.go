package notify

import (
	"bytes"
	"embed"
	"fmt"
	htmltemplate "html/template"
	"os"
	"strings"
	texttemplate "text/template"
	"time"

	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/incident"
	"github.com/hikeshi/hikeshi/services/integration"
	"github.com/hikeshi/hikeshi/services/sanitize"
)

// Built-in templates.
const (
	Internal = "internal" // for staff: every detail, the timeline link
	External = "external" // for customers and partners: what and where it stands
)

var builtins = map[string]bool{Internal: true, External: true}

//go:embed templates
var builtinFiles embed.FS

// Report is what a mail template sees. It is built from what may be told
// outside the private channel (codename, withheld free text), so no
// template, built-in or custom, can put a confidential incident's title,
// service or details into a mail.
type Report struct {
	Rule       string
	Trigger    string // declared, escalated, severity_changed, status_updated, closed
	EventID    string // the incident event this is about
	IncidentID string
	CaseNumber string
	Title      string // the codename for a confidential incident
	Service    string
	Severity   events.Severity
	Status     events.Status
	Summary    string
	Commander  string
	DeclaredBy string
	DeclaredAt time.Time
	// From and To are the old and new severity or status of a change.
	From, To string
	// Message is the status update's message, the reason of a severity
	// change or the resolution; MessageLabel names it.
	Message, MessageLabel string
	Lessons               string // lessons learned, on close
	Confidential, Drill   bool
	Marker                string // "[DRILL] " for drills
	TimelineURL           string
	Time                  time.Time // when it happened
}

// Headline says what happened, for staff.
func (r Report) Headline() string {
	switch r.Trigger {
	case OnDeclared:
		return "declared"
	case OnEscalated:
		return fmt.Sprintf("escalated from %s to %s", r.From, r.To)
	case OnSeverityChanged:
		return fmt.Sprintf("severity changed from %s to %s", r.From, r.To)
	case OnStatusUpdated:
		return fmt.Sprintf("status %s → %s", r.From, r.To)
	case OnClosed:
		return "closed"
	}
	return r.Trigger
}

// ExternalHeadline says where the incident stands, for readers outside.
func (r Report) ExternalHeadline() string {
	switch {
	case r.Trigger == OnClosed:
		return "This incident is closed"
	case r.Trigger == OnDeclared:
		return "We are investigating an incident"
	case r.Status == events.Identified:
		return "The cause has been identified and a fix is under way"
	case r.Status == events.Monitoring:
		return "A fix has been applied and we are monitoring the results"
	case r.Status == events.Resolved:
		return "This incident has been resolved"
	}
	return "We are still investigating this incident"
}

// newReport describes st (as it stood after event e, with data d).
func newReport(rule, trigger, publicURL string, st incident.State, e events.Stored, d events.Data) Report {
	r := Report{
		Rule: rule, Trigger: trigger, EventID: e.ID, IncidentID: st.ID, CaseNumber: st.CaseNumber,
		Title: st.DisplayTitle(), Service: integration.Service(st), Severity: st.Severity, Status: st.Status,
		Summary: integration.Text(st, st.Summary), Commander: st.Commander,
		DeclaredBy: st.DeclaredBy, DeclaredAt: st.DeclaredAt.UTC(),
		Confidential: st.Confidential, Drill: st.Drill, Marker: integration.Marker(st),
		TimelineURL: integration.TimelineURL(publicURL, st.ID), Time: e.Time.UTC(),
	}
	switch d := d.(type) {
	case *events.SeverityChanged:
		r.From, r.To = string(d.From), string(d.To)
		r.Message, r.MessageLabel = integration.Text(st, d.Reason), "Reason"
	case *events.StatusUpdated:
		r.From, r.To = string(d.From), string(d.To)
		r.Message, r.MessageLabel = integration.Text(st, d.Message), "Update"
	case *events.IncidentClosed:
		r.To = string(events.Closed)
		r.Message, r.MessageLabel = integration.Text(st, d.Resolution), "Resolution"
		r.Lessons = integration.Text(st, d.LessonsLearned)
	}
	return r
}

// template is one mail template's three parts.
type template struct {
	subject *texttemplate.Template
	text    *texttemplate.Template
	html    *htmltemplate.Template
}

// loadTemplates parses the built-in templates and the configured files.
func loadTemplates(files map[string]TemplateFiles) (map[string]*template, error) {
	out := map[string]*template{}
	for name := range builtins {
		f := files[name]
		t, err := parseTemplate(name, f, true)
		if err != nil {
			return nil, err
		}
		out[name] = t
	}
	for name, f := range files {
		if builtins[name] {
			continue
		}
		if f.Subject == "" || f.Text == "" || f.HTML == "" {
			return nil, fmt.Errorf("notify.templates.%s: a new template needs subject, text and html", name)
		}
		t, err := parseTemplate(name, f, false)
		if err != nil {
			return nil, err
		}
		out[name] = t
	}
	return out, nil
}

func parseTemplate(name string, f TemplateFiles, builtin bool) (*template, error) {
	part := func(inline bool, value, ext string) (string, error) {
		switch {
		case value != "" && inline:
			return value, nil
		case value != "":
			b, err := os.ReadFile(value)
			if err != nil {
				return "", fmt.Errorf("notify.templates.%s: %w", name, err)
			}
			return string(b), nil
		}
		b, err := builtinFiles.ReadFile("templates/" + name + "." + ext)
		return string(b), err
	}
	subject, err := part(true, f.Subject, "subject")
	if err != nil {
		return nil, err
	}
	text, err := part(false, f.Text, "txt")
	if err != nil {
		return nil, err
	}
	html, err := part(false, f.HTML, "html")
	if err != nil {
		return nil, err
	}
	t := &template{}
	opt := "missingkey=error"
	if t.subject, err = texttemplate.New(name + ".subject").Option(opt).Parse(strings.TrimSpace(subject)); err != nil {
		return nil, fmt.Errorf("notify.templates.%s.subject: %w", name, err)
	}
	if t.text, err = texttemplate.New(name + ".txt").Option(opt).Parse(text); err != nil {
		return nil, fmt.Errorf("notify.templates.%s.text: %w", name, err)
	}
	if t.html, err = htmltemplate.New(name + ".html").Option(opt).Parse(html); err != nil {
		return nil, fmt.Errorf("notify.templates.%s.html: %w", name, err)
	}
	// Render a sample now, so that a template naming a field Report does
	// not have fails at start, not at the first incident.
	sample := Report{Rule: "check", Trigger: OnStatusUpdated, Title: "t", Severity: events.SEV2, Status: events.Identified}
	if _, err := t.render(sample); err != nil {
		return nil, fmt.Errorf("notify.templates.%s: %w", name, err)
	}
	return t, nil
}

// rendered is a mail's subject and bodies.
type rendered struct{ subject, text, html string }

// render fills the templates. What reaches the mail is cleaned of
// controls and escapes: the title is one line in the body too, and the
// subject is one line whatever the template produced.
func (t *template) render(r Report) (rendered, error) {
	r.Title = sanitize.Line(r.Title)
	var s, txt, h bytes.Buffer
	if err := t.subject.Execute(&s, r); err != nil {
		return rendered{}, err
	}
	if err := t.text.Execute(&txt, r); err != nil {
		return rendered{}, err
	}
	if err := t.html.Execute(&h, r); err != nil {
		return rendered{}, err
	}
	subject := strings.Join(strings.Fields(sanitize.Line(s.String())), " ")
	return rendered{subject: subject, text: sanitize.Text(txt.String()), html: sanitize.Text(h.String())}, nil
}
