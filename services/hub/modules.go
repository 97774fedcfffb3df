package hub

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/adapters/sqlite"
	"github.com/hikeshi/hikeshi/services/access"
	"github.com/hikeshi/hikeshi/services/command"
	"github.com/hikeshi/hikeshi/services/config"
	"github.com/hikeshi/hikeshi/services/projection"
	"github.com/hikeshi/hikeshi/services/telemetry"
)

// Env is what the hub hands a module.
type Env struct {
	Config   *config.File
	Bus      *Bus
	Commands *command.Handler // appends commands and integration results
	Timeline *sqlite.Store
	// DataDir is where a module keeps files of its own (projector state).
	DataDir string
	// DataDirID identifies DataDir while this process holds its lock
	// ("" when it does not): see DataDirLock.
	DataDirID string
	// Standby is where a part waiting for another process's lease says so.
	Standby   *Standby
	Effects   *natsjs.Effects
	Metrics   *telemetry.Metrics
	Logger    *slog.Logger
	PublicURL string // where people reach the hub, for links in messages
	// Token is the API's bearer token ("" when none is required), for
	// module routes that serve API clients rather than webhooks.
	Token string
	// Access authenticates the callers of module routes that serve API
	// clients, and says how confidential incidents are listed to those
	// outside them (see httpapi.Authorise and httpapi.Allowed).
	Access *access.Guard
}

// Parts is what a module adds to the hub.
type Parts struct {
	// Projectors run on their own durable consumers, so a slow remote
	// delays only its own module.
	Projectors []projection.Projector
	// Routes are mounted on the HTTP server outside bearer-token auth:
	// each handler verifies its caller itself (signatures, shared secrets).
	Routes map[string]http.Handler
	// Background loops run until the hub stops (timers, socket connections).
	Background []func(context.Context) error
}

// Module is an optional part of the hub. It runs when hikeshi.yaml has a
// section of its name (or when named in --targets).
type Module struct {
	Name  string
	Start func(ctx context.Context, env *Env) (*Parts, error)
	// WritesDataDir: the module keeps files in the data dir, so the process
	// running it takes the data dir's lock.
	WritesDataDir bool
}

// modules is the registration table: adding an integration is one package
// and one row here.
var modules = []Module{}

// Register adds a module's row from the module package's init. A module
// package imports hub for Env, so hub cannot import it back: the hikeshi
// command links the modules in (cmd/hikeshi/modules.go) and they register.
func Register(m Module) {
	for _, o := range modules {
		if o.Name == m.Name {
			panic("hub: module registered twice: " + m.Name)
		}
	}
	modules = append(modules, m)
}

func moduleNames() []string {
	names := make([]string, 0, len(modules))
	for _, m := range modules {
		names = append(names, m.Name)
	}
	return names
}
