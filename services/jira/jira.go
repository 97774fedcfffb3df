// Package jira keeps a JIRA case per incident: created when the incident is
// declared, commented on every change so that the case always shows the
// current state, and moved to done when the incident closes.
package jira

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	jiraclient "github.com/hikeshi/hikeshi/adapters/jira"
	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/command"
	"github.com/hikeshi/hikeshi/services/config"
	"github.com/hikeshi/hikeshi/services/incident"
	"github.com/hikeshi/hikeshi/services/integration"
	"github.com/hikeshi/hikeshi/services/module"
	"github.com/hikeshi/hikeshi/services/projection"
	"github.com/hikeshi/hikeshi/services/sanitize"
)

// Name is the module's configuration section and its projector's durable
// consumer. Fixed: renaming it would replay every incident into JIRA.
const Name = "jira"

// Config is the jira: section of hikeshi.yaml.
type Config struct {
	// BaseURL is the site: https://acme.atlassian.net (Cloud) or the
	// Server/Data Center base URL.
	BaseURL string `yaml:"base_url"`
	// Email selects Cloud basic auth (email + API token); without it the
	// token is a Server/Data Center personal access token sent as bearer.
	Email    string `yaml:"email"`
	TokenEnv string `yaml:"token_env"`
	Project  string `yaml:"project"`
	// IssueType of the case (default Task).
	IssueType string `yaml:"issue_type"`
	// Priorities maps SEV1…SEV5 to priority names.
	Priorities map[string]string `yaml:"priorities"`
	// DoneTransition is the workflow transition taken on close (default Done).
	DoneTransition string `yaml:"done_transition"`
	// Labels are added to every case, next to hikeshi-<incident id>.
	Labels []string `yaml:"labels"`
}

// DefaultPriorities are JIRA's stock priority names.
var DefaultPriorities = map[string]string{
	"SEV1": "Highest", "SEV2": "High", "SEV3": "Medium", "SEV4": "Low", "SEV5": "Lowest",
}

// Load reads and checks the section.
func Load(f *config.File) (Config, string, error) {
	c := Config{IssueType: "Task", DoneTransition: "Done"}
	if _, err := f.Section(Name, &c); err != nil {
		return c, "", err
	}
	u, err := url.Parse(c.BaseURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return c, "", fmt.Errorf("jira.base_url: want an http(s) URL, got %q", c.BaseURL)
	}
	if c.Project == "" {
		return c, "", errors.New("jira.project: name the project key (OPS)")
	}
	prio := map[string]string{}
	for k, v := range DefaultPriorities {
		prio[k] = v
	}
	for k, v := range c.Priorities {
		sev, err := events.ParseSeverity(k)
		if err != nil {
			return c, "", fmt.Errorf("jira.priorities: %v", err)
		}
		prio[string(sev)] = v
	}
	c.Priorities = prio
	token, err := config.Secret(Name, "token_env", c.TokenEnv)
	if err != nil {
		return c, "", err
	}
	return c, jiraclient.Authorization(c.Email, token), nil
}

// Module is the row in the hub's module table.
var Module = module.Module{Name: Name, New: start}

func start(ctx context.Context, d module.Deps) (module.Parts, error) {
	cfg, auth, err := Load(d.Config)
	if err != nil {
		return module.Parts{}, err
	}
	p, err := New(cfg, auth, &d)
	if err != nil {
		return module.Parts{}, err
	}
	return module.Parts{Projectors: []projection.Projector{{Durable: Name, Handle: p.Handle}}}, nil
}

// Projector mirrors incidents into JIRA cases.
type Projector struct {
	cfg    Config
	env    *module.Deps
	client *jiraclient.Client
}

// New builds the projector; auth is the Authorization header value.
func New(cfg Config, auth string, env *module.Deps) (*Projector, error) {
	c, err := jiraclient.New(jiraclient.Config{BaseURL: cfg.BaseURL, Authorization: auth})
	if err != nil {
		return nil, err
	}
	return &Projector{cfg: cfg, env: env, client: c}, nil
}

// caseRef is the recorded result of finding or creating a case.
type caseRef struct {
	ID  string `json:"id"`
	Key string `json:"key"`
}

// Handle reacts to one incident event.
func (p *Projector) Handle(ctx context.Context, e events.Stored) error {
	switch e.Type {
	case events.TypeDeclared, events.TypeSeverityChanged, events.TypeStatusUpdated,
		events.TypeCommanderAssigned, events.TypeNoteAdded, events.TypeClosed,
		events.TypeSlackChannelLinked, events.TypeSlackConversationArchived:
	default:
		return nil
	}
	d, err := e.Decode()
	if err != nil {
		return err
	}
	st, err := p.env.Commands.Get(ctx, e.Envelope.Subject)
	if err != nil {
		return err
	}
	ref, err := p.ensureCase(ctx, st, e.ID)
	if err != nil {
		return err
	}
	switch d := d.(type) {
	case *events.Declared:
		return nil
	case *events.SeverityChanged:
		if err := p.comment(ctx, ref, e, fmt.Sprintf("Severity changed from %s to %s.%s", d.From, d.To, line("Reason", integration.Text(st, d.Reason)))); err != nil {
			return err
		}
		return p.resummarise(ctx, ref, st, d.To)
	case *events.StatusUpdated:
		return p.comment(ctx, ref, e, fmt.Sprintf("Status: %s → %s.%s", d.From, d.To, line("Update", integration.Text(st, d.Message))))
	case *events.CommanderAssigned:
		return p.comment(ctx, ref, e, fmt.Sprintf("Incident commander: %s.", d.User))
	case *events.NoteAdded:
		return p.comment(ctx, ref, e, "Note: "+integration.Text(st, d.Text))
	case *events.Linked:
		if d.URL == "" && d.Name == "" {
			return nil
		}
		return p.comment(ctx, ref, e, "Slack channel: "+slackLink(*d))
	case *events.ConversationArchived:
		return p.attach(ctx, ref, st, e.ID, *d)
	case *events.IncidentClosed:
		text := "Incident closed." + line("Resolution", integration.Text(st, d.Resolution)) +
			line("Lessons learned", integration.Text(st, d.LessonsLearned))
		if err := p.comment(ctx, ref, e, text); err != nil {
			return err
		}
		return p.done(ctx, ref, st)
	}
	return nil
}

func line(label, text string) string {
	if strings.TrimSpace(text) == "" {
		return ""
	}
	return "\n*" + label + ":* " + text
}

func slackLink(l events.Linked) string {
	name := l.Name
	if name == "" {
		name = l.Ref
	}
	if l.URL == "" {
		return name
	}
	return "[" + name + "|" + l.URL + "]"
}

// Label is the label that finds an incident's case.
func Label(id string) string { return "hikeshi-" + id }

// Summary is the case's summary line: one line, as JIRA refuses a summary
// with a line break.
func Summary(st incident.State) string {
	return sanitize.Line(fmt.Sprintf("%s[%s] %s", integration.Marker(st), st.Severity, st.DisplayTitle()))
}

// Description is the case's body, in JIRA wiki markup.
func (p *Projector) Description(st incident.State) string {
	var b strings.Builder
	if st.Drill {
		b.WriteString("*DRILL*: a training incident; no customer or stakeholder is affected.\n\n")
	}
	fmt.Fprintf(&b, "Hikeshi incident %s, declared by %s.\n", st.CaseNumber, st.DeclaredBy)
	if st.Confidential {
		fmt.Fprintf(&b, "Confidential incident *%s*: title, service and details are kept in the private incident channel.\n", st.Codename)
	} else {
		fmt.Fprintf(&b, "*Service:* %s\n", st.Service)
		if st.Summary != "" {
			fmt.Fprintf(&b, "*Summary:* %s\n", st.Summary)
		}
	}
	if l, ok := st.Links["slack"]; ok {
		fmt.Fprintf(&b, "*Slack:* %s\n", slackLink(events.Linked{Ref: l.Ref, Name: l.Name, URL: l.URL}))
	}
	fmt.Fprintf(&b, "*Timeline:* %s\n", integration.TimelineURL(p.env.PublicURL, st.ID))
	return sanitize.Text(b.String())
}

// ensureCase finds or creates the case and records the link, once per
// incident. The case is looked up by label before every create, so neither
// a crash between creating it and recording it nor an answer lost after
// JIRA created it makes a second one (integration.Finder).
func (p *Projector) ensureCase(ctx context.Context, st incident.State, causeID string) (caseRef, error) {
	ref, err := natsjs.Once(ctx, p.env.Effects, natsjs.EffectKey(Name, st.ID, "case"), func(ctx context.Context) (caseRef, error) {
		ref, _, err := integration.Finder[caseRef]{
			Effects: p.env.Effects, Key: natsjs.EffectKey(Name, st.ID, "case-create"),
			Find:   func(ctx context.Context) (caseRef, bool, error) { return p.find(ctx, st.ID) },
			Create: func(ctx context.Context) (caseRef, error) { return p.create(ctx, st) },
		}.FindOrCreate(ctx)
		return ref, err
	})
	if err != nil {
		return ref, err
	}
	if _, ok := st.Links[Name]; ok {
		return ref, nil
	}
	link := events.Linked{System: Name, Ref: ref.ID, Name: ref.Key, URL: strings.TrimRight(p.cfg.BaseURL, "/") + "/browse/" + ref.Key}
	_, err = p.env.Commands.Execute(ctx, st.ID, incident.RecordLink{Type: events.TypeJiraCaseLinked, Linked: link},
		command.Meta{Actor: Name, Key: "jira-case:" + st.ID})
	return ref, err
}

func (p *Projector) find(ctx context.Context, id string) (caseRef, bool, error) {
	is, ok, err := p.client.FindByLabel(ctx, p.cfg.Project, Label(id))
	return caseRef{ID: is.ID, Key: is.Key}, ok, integration.Refused(err)
}

func (p *Projector) create(ctx context.Context, st incident.State) (caseRef, error) {
	labels := append([]string{"hikeshi", Label(st.ID)}, p.cfg.Labels...)
	if st.Drill {
		labels = append(labels, "hikeshi-drill")
	}
	created, err := p.client.Create(ctx, jiraclient.NewIssue{
		Project: p.cfg.Project, Type: p.cfg.IssueType, Summary: Summary(st), Description: p.Description(st),
		Labels: labels, Priority: p.cfg.Priorities[string(st.Severity)],
	})
	return caseRef{ID: created.ID, Key: created.Key}, integration.Refused(err)
}

// ArchivesBucket is the object store the Slack integration exports
// conversations to (events.ConversationArchived).
const ArchivesBucket = "hikeshi_archives"

// attach adds the Slack conversation's export to the case. A confidential
// incident's conversation holds what the codename hides: it stays out.
func (p *Projector) attach(ctx context.Context, ref caseRef, st incident.State, eventID string, a events.ConversationArchived) error {
	if st.Confidential {
		return nil
	}
	name := fmt.Sprintf("%s-slack-%s.json", st.CaseNumber, strings.TrimPrefix(a.ChannelName, "#"))
	_, err := natsjs.Once(ctx, p.env.Effects, natsjs.EffectKey(Name, st.ID, "attach", eventID), func(ctx context.Context) (string, error) {
		issue, err := p.client.Get(ctx, ref.Key, "attachment")
		if err != nil {
			return "", integration.Refused(err)
		}
		for _, at := range issue.Attachments {
			if at.Filename == name {
				return at.ID, nil
			}
		}
		store, err := p.env.JS.ObjectStore(ctx, ArchivesBucket)
		if err != nil {
			return "", fmt.Errorf("%w: archives bucket: %v", natsjs.ErrUnavailable, err)
		}
		body, err := store.GetBytes(ctx, a.Object)
		if err != nil {
			return "", fmt.Errorf("archive %s: %w", a.Object, err)
		}
		id, err := p.client.Attach(ctx, ref.Key, name, body)
		return id, integration.Refused(err)
	})
	return err
}

// marker ends every comment: finding it among the case's comments tells a
// redelivery that the comment was already added.
func marker(eventID string) string { return "hikeshi event " + eventID }

func (p *Projector) comment(ctx context.Context, ref caseRef, e events.Stored, text string) error {
	key := natsjs.EffectKey(Name, e.Envelope.Subject, "comment", e.ID)
	_, err := natsjs.Once(ctx, p.env.Effects, key, func(ctx context.Context) (string, error) {
		mark := marker(e.ID)
		if id, ok, err := p.client.FindComment(ctx, ref.Key, mark); err != nil || ok {
			return id, integration.Refused(err)
		}
		body := fmt.Sprintf("%s\n\n{color:#707070}%s by %s at %s · %s{color}", sanitize.Text(text), e.Type[strings.LastIndex(e.Type, ".")+1:],
			orDash(e.Actor), e.Time.UTC().Format("2006-01-02 15:04:05 UTC"), mark)
		id, err := p.client.Comment(ctx, ref.Key, body)
		return id, integration.Refused(err)
	})
	return err
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// resummarise sets the priority and the [SEVn] of the summary for sev. It
// is idempotent by nature: setting the same fields twice changes nothing.
func (p *Projector) resummarise(ctx context.Context, ref caseRef, st incident.State, sev events.Severity) error {
	st.Severity = sev
	return integration.Refused(p.client.Update(ctx, ref.Key, map[string]any{
		"summary":  Summary(st),
		"priority": map[string]string{"name": p.cfg.Priorities[string(sev)]},
	}))
}

// done takes the configured transition. A case already in a done status
// (moved by a person, or by us before a crash) is left alone.
func (p *Projector) done(ctx context.Context, ref caseRef, st incident.State) error {
	_, err := natsjs.Once(ctx, p.env.Effects, natsjs.EffectKey(Name, st.ID, "done"), func(ctx context.Context) (string, error) {
		status, err := p.client.Transition(ctx, ref.Key, p.cfg.DoneTransition, true)
		if _, ok := errors.AsType[*jiraclient.NoTransitionError](err); ok {
			err = fmt.Errorf("%w; set jira.done_transition", err)
		}
		return status, integration.Refused(err)
	})
	return err
}
