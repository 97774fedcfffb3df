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
	"net/http"
	"time"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/services/config"
	contract "github.com/hikeshi/hikeshi/services/module"
	"github.com/hikeshi/hikeshi/services/signals/ingest"
	"github.com/hikeshi/hikeshi/services/signals/projector"
)

// Name is the module and its hikeshi.yaml section.
const Name = "signals"

// Config is the signals: section.
type Config struct {
	// The endpoints and the credentials of their callers.
	Ingest ingest.Config `yaml:",inline"`
	// The rules, the alert tickets and the decisions log.
	Projector projector.Config `yaml:",inline"`
}

// Load reads the section and its secrets.
func Load(f *config.File) (Config, secrets, error) {
	var c Config
	var s secrets
	if _, err := f.Section(Name, &c); err != nil {
		return c, s, err
	}
	var err error
	if s.ingest, err = c.Ingest.Load(Name); err != nil {
		return c, s, err
	}
	s.tickets, err = c.Projector.Load(Name)
	return c, s, err
}

type secrets struct {
	ingest  ingest.Secrets
	tickets string
}

// Module is the row in the hub's module table.
// Its projector keeps its state in the data dir.
var Module = contract.Module{Name: Name, New: start, WritesDataDir: true}

func start(ctx context.Context, env contract.Deps) (contract.Parts, error) {
	cfg, sec, err := Load(env.Config)
	if err != nil {
		return contract.Parts{}, err
	}
	client := &http.Client{Timeout: 10 * time.Second} // JWKS, certificates, GitHub, JIRA
	m := &module{pub: natsjs.NewSignalPublisher(env.JS), apiAuth: env.APIAuth}
	m.ingest = ingest.New(cfg.Ingest, sec.ingest, m.pub, ingest.Deps{Client: client, Logger: env.Logger})
	m.proj, err = projector.New(cfg.Projector, sec.tickets, projector.Env{
		JS: env.JS, Dial: env.Dial, Commands: env.Commands, Effects: env.Effects, Standby: env.Standby,
		Logger: env.Logger, DataDir: env.DataDir, DataDirID: env.DataDirID, Store: env.Store, Client: client,
	})
	if err != nil {
		return contract.Parts{}, err
	}
	if env.Metrics != nil {
		if err := m.register(env.Metrics); err != nil {
			return contract.Parts{}, err
		}
	}
	return contract.Parts{
		Routes:     m.routes(),
		Background: []func(context.Context) error{m.proj.Run},
	}, nil
}

// module is the signals module's running parts.
type module struct {
	pub    *natsjs.SignalPublisher
	ingest *ingest.Handler
	proj   *projector.Runner
	// apiAuth checks the callers of the signals list, an API route.
	apiAuth func(http.Handler) http.Handler
}

func (m *module) routes() map[string]http.Handler {
	routes := m.ingest.Routes()
	routes["GET "+ingest.PathGeneric] = m.apiAuth(http.HandlerFunc(m.proj.ListSignals))
	return routes
}
