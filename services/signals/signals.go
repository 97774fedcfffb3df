// Package signals is the module that takes in what producers that are
// not people report — Alertmanager and Grafana alerts, AWS and GCP
// security findings, generic JSON, customer-support escalations — and
// routes it. Its parts: ingest verifies each caller and stores every
// signal once on the SIGNALS stream before answering 202 (signals/ingest);
// the projector here reads the stored signals, evaluates the rules over
// them (signals/rules) to drop, annotate, rate-limit and route them, and
// carries the decision out: incidents (one per group key while open),
// triage items, alert tickets (signals/tickets).
package signals

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/services/config"
	"github.com/hikeshi/hikeshi/services/hub"
	"github.com/hikeshi/hikeshi/services/signals/ingest"
	"github.com/hikeshi/hikeshi/services/signals/rules"
	"github.com/hikeshi/hikeshi/services/signals/tickets"
)

// Name is the module and its hikeshi.yaml section.
const Name = "signals"

// Durable is the signal projector's consumer name; never change it.
const Durable = "signals"

// Config is the signals: section.
type Config struct {
	// The endpoints and the credentials of their callers.
	ingest.Config `yaml:",inline"`
	// CountEvery appends an occurrence count to an incident every N
	// signals of its group (default 100), besides the first and status
	// changes.
	CountEvery int          `yaml:"count_every"`
	Rules      []rules.Rule `yaml:"rules"`
	// Default applies when no rule routes or drops a signal, and when a
	// rule fails to evaluate.
	Default rules.Rule `yaml:"default"`
	// Alert tickets go to GitHub issues or to JIRA, not both.
	GitHub *tickets.GitHub `yaml:"github"`
	JIRA   *tickets.Jira   `yaml:"jira"`
	// Decisions bounds the log of every signal's decision.
	Decisions DecisionsConfig `yaml:"decisions"`
}

// Load reads the section and its secrets.
func Load(f *config.File) (Config, secrets, error) {
	var c Config
	var s secrets
	if _, err := f.Section(Name, &c); err != nil {
		return c, s, err
	}
	if c.CountEvery <= 0 {
		c.CountEvery = 100
	}
	c.Decisions.defaults()
	var err error
	if s.ingest, err = c.Config.Load(Name); err != nil {
		return c, s, err
	}
	get := func(field, env string) string {
		if env == "" || err != nil {
			return ""
		}
		var v string
		v, err = config.Secret(Name, field, env)
		return v
	}
	if c.GitHub != nil {
		s.github = get("github.token_env", c.GitHub.TokenEnv)
	}
	if c.JIRA != nil {
		s.jira = get("jira.token_env", c.JIRA.TokenEnv)
	}
	return c, s, err
}

// compileRules compiles the rules and refuses a configuration whose
// routes cannot be carried out. The hub and `hikeshi rules test` both
// check through it, so they report the same errors.
func (c *Config) compileRules() (*rules.Set, error) {
	if c.GitHub != nil && c.JIRA != nil {
		return nil, fmt.Errorf("signals: alert tickets go to github or jira, not both")
	}
	rs, err := rules.Compile(c.Rules, c.Default)
	if err != nil {
		return nil, err
	}
	if where := rs.Uses(rules.RouteTicket); where != "" && c.GitHub == nil && c.JIRA == nil {
		return nil, fmt.Errorf("%s: route ticket needs signals.github or signals.jira to keep the tickets in; configure one, or route elsewhere", where)
	}
	return rs, nil
}

type secrets struct {
	ingest       ingest.Secrets
	github, jira string
}

// Module is the row in the hub's module table.
// Its projector keeps its state in the data dir.
var Module = hub.Module{Name: Name, Start: start, WritesDataDir: true}

func start(ctx context.Context, env *hub.Env) (*hub.Parts, error) {
	cfg, sec, err := Load(env.Config)
	if err != nil {
		return nil, err
	}
	m, err := newModule(cfg, sec, env, deps{})
	if err != nil {
		return nil, err
	}
	if env.Metrics != nil {
		if err := m.register(env.Metrics); err != nil {
			return nil, err
		}
	}
	return m.parts(), nil
}

// deps are what tests replace: remote lookups and the clock.
type deps struct {
	client *http.Client // GitHub, JIRA, and ingest's JWKS, certificates
	now    func() time.Time
}

type module struct {
	cfg    Config
	sec    secrets
	env    *hub.Env
	pub    *natsjs.SignalPublisher
	ingest *ingest.Handler
	rules  *rules.Set
	proj   *projector
	now    func() time.Time
}

func newModule(cfg Config, sec secrets, env *hub.Env, d deps) (*module, error) {
	if d.client == nil {
		d.client = &http.Client{Timeout: 10 * time.Second}
	}
	if d.now == nil {
		d.now = time.Now
	}
	rs, err := cfg.compileRules()
	if err != nil {
		return nil, err
	}
	m := &module{cfg: cfg, sec: sec, env: env, now: d.now, rules: rs, pub: natsjs.NewSignalPublisher(env.Bus.JS)}
	m.ingest = ingest.New(cfg.Config, sec.ingest, m.pub, ingest.Deps{Client: d.client, Now: d.now, Logger: env.Logger})
	if m.proj, err = newProjector(m, d); err != nil {
		return nil, err
	}
	m.proj.st.retain = cfg.Decisions
	return m, nil
}

func (m *module) parts() *hub.Parts {
	return &hub.Parts{
		Routes:     m.routes(),
		Background: []func(context.Context) error{m.proj.run},
	}
}

func (m *module) routes() map[string]http.Handler {
	routes := m.ingest.Routes()
	routes["GET "+ingest.PathGeneric] = http.HandlerFunc(m.listSignals)
	return routes
}

func init() { hub.Register(Module) }
