// Package github opens the postmortem pull request of a closed incident,
// drafted from its timeline, and optionally keeps a GitHub issue per
// incident that records the timeline as it happens.
package github

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"text/template"
	"time"

	githubclient "github.com/hikeshi/hikeshi/adapters/github"
	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/config"
	"github.com/hikeshi/hikeshi/services/incident"
	"github.com/hikeshi/hikeshi/services/module"
	"github.com/hikeshi/hikeshi/services/projection"
)

// Name is the configuration section and the durable consumer. Fixed.
const Name = "github"

// Config is the github: section of hikeshi.yaml.
type Config struct {
	// BaseURL is the REST API root: https://api.github.com/ or, for
	// Enterprise Server, https://ghe.example.com/api/v3/.
	BaseURL  string `yaml:"base_url"`
	TokenEnv string `yaml:"token_env"`
	// Repo (owner/name) receives postmortems.
	Repo string `yaml:"repo"`
	// ConfidentialRepo (a private repository) receives the postmortems of
	// confidential incidents; without it they are skipped.
	ConfidentialRepo string `yaml:"confidential_repo"`
	// BaseBranch of the pull requests; default the repository's default.
	BaseBranch string   `yaml:"base_branch"`
	Labels     []string `yaml:"labels"`
	// Template is a text/template file; default DefaultTemplate.
	Template string `yaml:"template"`
	// Reviewers maps incident commanders (as named in Hikeshi) to GitHub
	// logins; a mapped commander is asked to review the postmortem.
	Reviewers map[string]string `yaml:"reviewers"`
	// RecordIssue keeps a GitHub issue per incident recording its timeline.
	RecordIssue bool `yaml:"record_issue"`
	// WriteInterval spaces writes (GitHub asks for one write per second).
	WriteInterval time.Duration `yaml:"write_interval"`
	Followups     Followups     `yaml:"followups"`
}

// Followups are the CSIRT's peacetime thresholds.
type Followups struct {
	// PostmortemDays after close without a merged postmortem.
	PostmortemDays int `yaml:"postmortem_days"`
	// OpenDays an incident may stay open before it is listed.
	OpenDays int `yaml:"open_days"`
	// Digest posts the list to a Slack channel weekly.
	Digest Digest `yaml:"digest"`
}

type repoName = githubclient.Repo

func parseRepo(field, s string) (repoName, error) {
	r, err := githubclient.ParseRepo(s)
	if err != nil {
		return r, fmt.Errorf("github.%s: %w", field, err)
	}
	return r, nil
}

// settings is the checked configuration.
type settings struct {
	Config
	repo, confidential repoName
	hasConfidential    bool
	tmpl               *template.Template
	token              string
}

func load(f *config.File) (*settings, error) {
	s := &settings{Config: Config{
		BaseURL: "https://api.github.com/", Labels: []string{"postmortem"}, WriteInterval: time.Second,
		Followups: Followups{PostmortemDays: 7, OpenDays: 14},
	}}
	if _, err := f.Section(Name, &s.Config); err != nil {
		return nil, err
	}
	u, err := url.Parse(s.BaseURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("github.base_url: want an http(s) URL, got %q", s.BaseURL)
	}
	if !strings.HasSuffix(s.BaseURL, "/") {
		s.BaseURL += "/"
	}
	if s.repo, err = parseRepo("repo", s.Repo); err != nil {
		return nil, err
	}
	if s.ConfidentialRepo != "" {
		if s.confidential, err = parseRepo("confidential_repo", s.ConfidentialRepo); err != nil {
			return nil, err
		}
		if s.confidential == s.repo {
			return nil, errors.New("github.confidential_repo must not be the public repo")
		}
		s.hasConfidential = true
	}
	if err := s.Followups.Digest.check(); err != nil {
		return nil, err
	}
	if s.WriteInterval < 0 {
		return nil, errors.New("github.write_interval must not be negative")
	}
	text := DefaultTemplate
	if s.Template != "" {
		b, err := os.ReadFile(s.Template)
		if err != nil {
			return nil, fmt.Errorf("github.template: %w", err)
		}
		text = string(b)
	}
	if s.tmpl, err = parseTemplate(text); err != nil {
		return nil, fmt.Errorf("github.template: %w", err)
	}
	if s.token, err = config.Secret(Name, "token_env", s.TokenEnv); err != nil {
		return nil, err
	}
	return s, nil
}

// Module is the row in the hub's module table.
var Module = module.Module{Name: Name, New: start}

func start(ctx context.Context, d module.Deps) (module.Parts, error) {
	p, err := New(&d)
	if err != nil {
		return module.Parts{}, err
	}
	api := &api{p: p}
	var loops []func(context.Context) error
	if p.s.Followups.Digest.Channel != "" {
		loops = append(loops, p.RunDigest)
	}
	return module.Parts{
		Background: loops,
		Projectors: []projection.Projector{{Durable: Name, Handle: p.Handle}},
		Routes: map[string]http.Handler{
			"POST /api/v1/incidents/{id}/postmortem": d.APIAuth(http.HandlerFunc(api.postmortem)),
			"GET /api/v1/followups":                  d.APIAuth(http.HandlerFunc(api.followups)),
		},
	}, nil
}

// Projector drives the GitHub side of incidents.
type Projector struct {
	s   *settings
	env *module.Deps
	gh  *githubclient.Client
	// mu serialises postmortems: the projector and an on-demand request
	// must not both create the same branch.
	mu sync.Mutex
}

// New reads the github: section of env's configuration and builds the
// projector.
func New(env *module.Deps) (*Projector, error) {
	s, err := load(env.Config)
	if err != nil {
		return nil, err
	}
	c, err := githubclient.New(githubclient.Config{BaseURL: s.BaseURL, Token: s.token, WriteInterval: s.WriteInterval})
	if err != nil {
		return nil, err
	}
	return &Projector{s: s, env: env, gh: c}, nil
}

// repoFor is where an incident's documents go; ok is false when a
// confidential incident has no private repository to go to.
func (p *Projector) repoFor(st incident.State) (repoName, bool) {
	if st.Confidential {
		return p.s.confidential, p.s.hasConfidential
	}
	return p.s.repo, true
}

// Handle reacts to one incident event.
func (p *Projector) Handle(ctx context.Context, e events.Stored) error {
	switch e.Type {
	case events.TypeClosed, events.TypeGitHubPostmortemRequested:
		// A request from Slack is the on-demand path: the same ledger key
		// as close and the API, so however many ask, one pull request.
		if _, err := p.Postmortem(ctx, e.Envelope.Subject); err != nil && !errors.Is(err, ErrSkipped) {
			return err
		}
	}
	if p.s.RecordIssue {
		return p.record(ctx, e)
	}
	return nil
}
