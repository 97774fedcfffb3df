// Package projector reads the stored signals in stream order, evaluates
// the rules over each and carries out the decision: incidents (one per
// group key while open), triage items and alert tickets. Its state (group
// and fingerprint counts, the decisions log) is a file in the data dir,
// committed with each batch's last sequence; a lease lets one process at
// a time run it.
package projector

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/services/command"
	"github.com/hikeshi/hikeshi/services/config"
	"github.com/hikeshi/hikeshi/services/incident"
	"github.com/hikeshi/hikeshi/services/signals/rules"
	"github.com/hikeshi/hikeshi/services/signals/tickets"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Durable is the signal projector's consumer name; never change it.
const Durable = "signals"

// Config is the projector's part of the signals: section.
type Config struct {
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

// Load sets the defaults and reads the ticket tracker's token from the
// environment.
func (c *Config) Load(section string) (ticketToken string, err error) {
	if c.CountEvery <= 0 {
		c.CountEvery = 100
	}
	c.Decisions.defaults()
	switch {
	case c.GitHub != nil && c.GitHub.TokenEnv != "":
		return config.Secret(section, "github.token_env", c.GitHub.TokenEnv)
	case c.JIRA != nil && c.JIRA.TokenEnv != "":
		return config.Secret(section, "jira.token_env", c.JIRA.TokenEnv)
	}
	return "", nil
}

// Commands is the command side the projector declares and updates
// incidents through.
type Commands interface {
	Get(ctx context.Context, id string) (incident.State, error)
	Declare(ctx context.Context, c incident.Declare, m command.Meta) (incident.State, error)
	Execute(ctx context.Context, id string, c incident.Command, m command.Meta) (incident.State, error)
}

// Standby is where the projector says it waits for another process's
// lease.
type Standby interface {
	Wait(part, detail string)
	Done(part string)
}

// Env is what the projector works with.
type Env struct {
	JS       jetstream.JetStream
	Dial     func(name string) (*nats.Conn, error) // a connection of its own for deliveries
	Commands Commands
	Effects  natsjs.Ledger
	Standby  Standby
	Logger   *slog.Logger
	// DataDir holds the state file; DataDirID identifies it while this
	// process holds its lock ("" when it does not).
	DataDir, DataDirID string
	// Store is the PostgreSQL URL of the state, when not in DataDir.
	Store  string
	Client *http.Client // GitHub, JIRA
	Now    func() time.Time
}

// Runner evaluates the rules over each stored signal and carries out
// the decision. It is idempotent: counts carry the stream sequence they
// reached, incidents and facts are appended under keys derived from the
// group and its count, and tickets go through the effects ledger.
type Runner struct {
	cfg     Config
	env     Env
	rules   *rules.Set
	st      *states
	tickets *tickets.Tracker // nil without signals.github or signals.jira
	now     func() time.Time
	// ackWait is how long the server waits for a batch's ack before it
	// delivers the batch again; handling retries well inside it.
	ackWait time.Duration
	// cur is the batch being handled.
	cur batchState

	handled, dropped, flagged, limited, repeated atomic.Int64
}

// New is the projector of cfg (loaded: see Config.Load), its tickets kept
// with ticketToken.
func New(cfg Config, ticketToken string, env Env) (*Runner, error) {
	rs, err := cfg.Compile()
	if err != nil {
		return nil, err
	}
	if env.Now == nil {
		env.Now = time.Now
	}
	if env.Logger == nil {
		env.Logger = slog.Default()
	}
	st, err := newStates(context.Background(), env.JS)
	if err != nil {
		return nil, err
	}
	st.retain = cfg.Decisions
	p := &Runner{cfg: cfg, env: env, rules: rs, st: st, now: env.Now, ackWait: 5 * time.Minute}
	p.tickets, err = tickets.New(cfg.GitHub, cfg.JIRA, ticketToken, env.Client, env.Effects, p.related)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// Compile compiles the rules and refuses a configuration whose routes
// cannot be carried out. The hub and `hikeshi rules test` both check
// through it, so they report the same errors.
func (c *Config) Compile() (*rules.Set, error) {
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
