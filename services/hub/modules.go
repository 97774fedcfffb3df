package hub

import (
	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/services/command"
	"github.com/hikeshi/hikeshi/services/httpapi"
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

// deps is what every module of this process shares; each module gets a
// copy with its own logger.
func (h *Hub) deps(commands *command.Handler, effects *natsjs.Effects, metrics *telemetry.Metrics) module.Deps {
	cfg := h.cfg
	d := module.Deps{
		Config: cfg.File, Commands: commands, Effects: effects, Events: h.bus.Events,
		Incidents: timeline.Incidents{Store: h.timeline}, JS: h.bus.JS, Dial: h.bus.Dial,
		Metrics: metrics.Registry, APIAuth: httpapi.RequireToken(cfg.Token),
		PublicURL: cfg.PublicURL, DataDir: cfg.DataDir, Standby: &h.standby,
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
