package tickets

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/hikeshi/hikeshi/adapters/jira"
	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/integration"
	"github.com/hikeshi/hikeshi/services/signals/rules"
)

// Jira: alert tickets as JIRA issues, one per fingerprint. The
// connection is configured as for the jira: section (Cloud: email and API
// token; Server/Data Center: a personal access token).
type Jira struct {
	BaseURL   string `yaml:"base_url"`
	Email     string `yaml:"email"`
	TokenEnv  string `yaml:"token_env"`
	Project   string `yaml:"project"`
	IssueType string `yaml:"issue_type"` // default Task
	// Workflow transitions, found by name: resolved takes DoneTransition
	// (default Done), firing again ReopenTransition (default Reopen).
	DoneTransition   string   `yaml:"done_transition"`
	ReopenTransition string   `yaml:"reopen_transition"`
	Labels           []string `yaml:"labels"`
}

type jiraTracker struct {
	c      *jira.Client
	cfg    Jira
	labels []string
}

func newJira(c Jira, token string, client *http.Client) (*jiraTracker, error) {
	if u, err := url.Parse(c.BaseURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("signals.jira.base_url: want an http(s) URL, got %q", c.BaseURL)
	}
	if c.Project == "" {
		return nil, fmt.Errorf("signals.jira.project: name the project key")
	}
	if c.IssueType == "" {
		c.IssueType = "Task"
	}
	if c.DoneTransition == "" {
		c.DoneTransition = "Done"
	}
	if c.ReopenTransition == "" {
		c.ReopenTransition = "Reopen"
	}
	cfg := jira.Config{BaseURL: c.BaseURL, Authorization: jira.Authorization(c.Email, token)}
	if client != nil {
		cfg.Base = client.Transport
	}
	jc, err := jira.New(cfg)
	if err != nil {
		return nil, err
	}
	return &jiraTracker{c: jc, cfg: c, labels: c.Labels}, nil
}

func (j *jiraTracker) kind() string { return "jira" }

func (j *jiraTracker) find(ctx context.Context, label string) (string, bool, error) {
	is, ok, err := j.c.FindByLabel(ctx, j.cfg.Project, label)
	return is.Key, ok, integration.Refused(err)
}

func (j *jiraTracker) create(ctx context.Context, sig *events.Signal, d *rules.Decision, label, body string) (string, error) {
	// JIRA labels hold no spaces: the source is a subject token already.
	labels := append([]string{label, "hikeshi-alert", "source-" + sig.Source, "severity-" + sig.Severity}, j.labels...)
	created, err := j.c.Create(ctx, jira.NewIssue{
		Project: j.cfg.Project, Type: j.cfg.IssueType, Summary: ticketTitle(sig), Description: body, Labels: labels,
	})
	return created.Key, integration.Refused(err)
}

func (j *jiraTracker) comment(ctx context.Context, ref, text string) error {
	_, err := j.c.Comment(ctx, ref, text)
	return integration.Refused(err)
}

// move takes the transition named for the direction. An issue already in
// the wanted status category (moved by a person) is left alone; a
// workflow without the transition is a configuration error, dead-lettered
// with the names it offers.
func (j *jiraTracker) move(ctx context.Context, ref string, open bool) error {
	name := j.cfg.DoneTransition
	if open {
		name = j.cfg.ReopenTransition
	}
	_, err := j.c.Transition(ctx, ref, name, !open)
	if _, ok := errors.AsType[*jira.NoTransitionError](err); ok {
		err = fmt.Errorf("%w; set signals.jira.done_transition or reopen_transition", err)
	}
	return integration.Refused(err)
}
