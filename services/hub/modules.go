package hub

import (
	"context"
	"fmt"
	"net/http"
	"slices"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/services/command"
	"github.com/hikeshi/hikeshi/services/module"
	"github.com/hikeshi/hikeshi/services/telemetry"
	"github.com/hikeshi/hikeshi/services/timeline"
)

// What the hub hands modules satisfies their contract.
var (
	_ module.Commands  = (*command.Handler)(nil)
	_ module.Effects   = (*natsjs.Effects)(nil)
	_ module.EventLog  = (*natsjs.Store)(nil)
	_ module.Incidents = timeline.Incidents{}
)

// services makes the command handler and what every module of this
// process shares.
func (h *Hub) services(ctx context.Context, metrics *telemetry.Metrics) (*command.Handler, module.Deps, error) {
	cases, err := natsjs.NewCases(ctx, h.bus.JS, h.cfg.CasePrefix)
	if err != nil {
		return nil, module.Deps{}, err
	}
	effects, err := natsjs.NewEffects(ctx, h.bus.JS)
	if err != nil {
		return nil, module.Deps{}, err
	}
	commands := command.New(h.bus.Events, cases, command.OnAppend(metrics.Appended),
		command.CaseFallback(h.timeline.FindByCase))
	return commands, h.deps(commands, effects, metrics), nil
}

// ModuleParts builds module name's parts as Start hands them to a hub,
// without running them (see Open). The module must be configured.
func (h *Hub) ModuleParts(ctx context.Context, name string) (module.Parts, error) {
	i := slices.IndexFunc(h.cfg.Modules, func(m module.Module) bool { return m.Name == name })
	if i < 0 {
		return module.Parts{}, fmt.Errorf("no module %q", name)
	}
	_, deps, err := h.services(ctx, telemetry.New())
	if err != nil {
		return module.Parts{}, err
	}
	deps.Logger = h.cfg.Logger.With("module", name)
	parts, err := h.cfg.Modules[i].New(ctx, deps)
	if err != nil {
		return module.Parts{}, fmt.Errorf("%s: %w", name, err)
	}
	return parts, nil
}

// Waiting lists the parts of this process that wait for a lease another
// process holds, part → what it waits for.
func (h *Hub) Waiting() map[string]string { return h.standby.Waiting() }

// deps is what every module of this process shares; each module gets a
// copy with its own logger.
func (h *Hub) deps(commands *command.Handler, effects *natsjs.Effects, metrics *telemetry.Metrics) module.Deps {
	cfg := h.cfg
	d := module.Deps{
		Config: cfg.File, Commands: commands, Effects: effects, Events: h.bus.Events,
		Incidents: timeline.Incidents{Store: h.timeline}, JS: h.bus.JS, Dial: h.bus.Dial,
		Metrics: metrics.Registry,
		// start sets the API's check of callers; a process serving no API
		// (a replay) builds routes it never mounts.
		APIAuth:   func(http.Handler) http.Handler { return http.NotFoundHandler() },
		PublicURL: cfg.PublicURL, DataDir: cfg.DataDir, Store: cfg.Store, Standby: &h.standby,
	}
	if h.lock != nil {
		d.DataDirID = h.lock.ID
	}
	return d
}

func (c *Config) moduleNames() []string {
	names := make([]string, 0, len(c.Modules))
	for _, m := range c.Modules {
		names = append(names, m.Name)
	}
	return names
}
