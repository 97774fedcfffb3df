package tickets

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	gojira "github.com/andygrunwald/go-jira"
	"github.com/hikeshi/hikeshi/adapters/httpx"
	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/integration"
	"github.com/hikeshi/hikeshi/services/projection"
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
	c      *gojira.Client
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
	auth := "Bearer " + token
	if c.Email != "" {
		auth = "Basic " + base64.StdEncoding.EncodeToString([]byte(c.Email+":"+token))
	}
	t := &httpx.Transport{RateLimitOnly: integration.CreateNotRetried("/rest/api/2/issue")}
	if client != nil && client.Transport != nil {
		t.Base = client.Transport
	}
	jc, err := gojira.NewClient(integration.Client(auth, t), c.BaseURL)
	if err != nil {
		return nil, err
	}
	return &jiraTracker{c: jc, cfg: c, labels: c.Labels}, nil
}

func (j *jiraTracker) kind() string { return "jira" }

func (j *jiraTracker) find(ctx context.Context, label string) (string, bool, error) {
	jql := fmt.Sprintf(`project = "%s" AND labels = "%s" ORDER BY created ASC`, j.cfg.Project, label)
	issues, resp, err := j.c.Issue.SearchWithContext(ctx, jql, &gojira.SearchOptions{MaxResults: 1, Fields: []string{"labels"}})
	if err != nil {
		return "", false, jiraErr("search", resp, err)
	}
	if len(issues) == 0 {
		return "", false, nil
	}
	return issues[0].Key, true, nil
}

func (j *jiraTracker) create(ctx context.Context, sig *events.Signal, d *rules.Decision, label, body string) (string, error) {
	// JIRA labels hold no spaces: the source is a subject token already.
	labels := append([]string{label, "hikeshi-alert", "source-" + sig.Source, "severity-" + sig.Severity}, j.labels...)
	created, resp, err := j.c.Issue.CreateWithContext(ctx, &gojira.Issue{Fields: &gojira.IssueFields{
		Project:     gojira.Project{Key: j.cfg.Project},
		Type:        gojira.IssueType{Name: j.cfg.IssueType},
		Summary:     ticketTitle(sig),
		Description: body,
		Labels:      labels,
	}})
	if err != nil {
		if resp != nil && resp.Body != nil {
			err = gojira.NewJiraError(resp, err) // names the refused field
		}
		return "", jiraErr("create", resp, err)
	}
	return created.Key, nil
}

func (j *jiraTracker) comment(ctx context.Context, ref, text string) error {
	_, resp, err := j.c.Issue.AddCommentWithContext(ctx, ref, &gojira.Comment{Body: text})
	return jiraErr("comment on "+ref, resp, err)
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
	transitions, resp, err := j.c.Issue.GetTransitionsWithContext(ctx, ref)
	if err != nil {
		return jiraErr("transitions of "+ref, resp, err)
	}
	var names []string
	for _, t := range transitions {
		if strings.EqualFold(t.Name, name) {
			resp, err := j.c.Issue.DoTransitionWithContext(ctx, ref, t.ID)
			return jiraErr("transition "+t.Name+" of "+ref, resp, err)
		}
		names = append(names, t.Name)
	}
	issue, resp, err := j.c.Issue.GetWithContext(ctx, ref, &gojira.GetQueryOptions{Fields: "status"})
	if err != nil {
		return jiraErr("status of "+ref, resp, err)
	}
	if s := issue.Fields.Status; s != nil && (s.StatusCategory.Key == "done") != open {
		return nil
	}
	return fmt.Errorf("%w: jira: %s has no transition named %q (available: %s); set signals.jira.done_transition or reopen_transition",
		projection.ErrPermanent, ref, name, strings.Join(names, ", "))
}

func jiraErr(what string, resp *gojira.Response, err error) error {
	if err == nil {
		return nil
	}
	code := 0
	if resp != nil && resp.Response != nil {
		code = resp.StatusCode
	}
	return fmt.Errorf("jira %s: %w", what, integration.Final(code, err))
}
