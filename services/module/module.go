// Package module is the contract between the hub and its optional parts
// (Slack, JIRA, GitHub, notifications, signals, or a consumer of your own).
// A module is a package that exports one Module value; cmd/hikeshi lists
// the modules in its table and the hub starts those hikeshi.yaml (or
// --targets) asks for, handing each the Deps below. A module talks to the
// others only through events, so it imports this package, events, incident
// and config, never the hub or another module.
//
// This package is a leaf: it imports only the standard library, events,
// incident, config, projection and third-party libraries.
package module

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/config"
	"github.com/hikeshi/hikeshi/services/incident"
	"github.com/hikeshi/hikeshi/services/projection"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// Module is one row of the hub's module table.
type Module struct {
	// Name is the module's target (--targets) and its section of
	// hikeshi.yaml: the module runs when that section is there.
	Name string
	// New reads the module's section of d.Config and builds its parts.
	New func(ctx context.Context, d Deps) (Parts, error)
	// WritesDataDir: the module keeps files in the data dir, so the process
	// running it takes the data dir's lock.
	WritesDataDir bool
}

// Parts is what a module adds to the hub.
type Parts struct {
	// Projectors run on their own durable consumers, so a slow remote
	// delays only its own module.
	Projectors []projection.Projector
	// Routes are mounted on the HTTP server outside the API's bearer-token
	// check: each handler verifies its caller itself (signatures, shared
	// secrets), or is wrapped in Deps.APIAuth when it serves API clients.
	Routes map[string]http.Handler
	// Background loops run until the hub stops (timers, socket connections).
	Background []func(context.Context) error
}

// Deps is what the hub hands a module: behaviour behind interfaces, data as
// plain values. Fields a hub process cannot provide are nil.
type Deps struct {
	// Config is hikeshi.yaml; the module reads its own section.
	Config *config.File
	// Commands appends commands to incidents (integration results as
	// facts and links, severity changes, declarations).
	Commands Commands
	// Effects is the effects ledger: a side effect done outside is
	// recorded here so a redelivered event does not do it again.
	Effects Effects
	// Events reads an incident's stored events.
	Events EventLog
	// Incidents reads the incidents read model (the timeline store).
	Incidents Incidents
	// JS is the JetStream context, for a module's own streams and buckets.
	JS jetstream.JetStream
	// Dial opens another connection to the bus, named name (a consumer
	// loop of the module's own).
	Dial func(name string) (*nats.Conn, error)
	// Logger is tagged with the module's name.
	Logger *slog.Logger
	// Metrics registers the module's own collectors on /metrics.
	Metrics prometheus.Registerer
	// APIAuth wraps a route that serves API clients (not a webhook) with
	// the API's check of its caller: an authenticated identity with at
	// least the viewer role, in the request's context (access.From). The
	// handler checks more itself: a higher role (access.Require) and
	// need-to-know for each incident (access.Allowed, access.MayRead).
	APIAuth func(http.Handler) http.Handler
	// ShowCodenames: a confidential incident the caller may not read is
	// listed under its codename (auth.show_codenames), not left out.
	ShowCodenames bool
	// PublicURL is where people reach the hub, for links in messages.
	PublicURL string
	// DataDir is where a module keeps files of its own (WritesDataDir).
	DataDir string
	// DataDirID identifies DataDir while this process holds its lock
	// ("" when it does not).
	DataDirID string
	// Store is the PostgreSQL URL (--store) where a module keeps its state
	// instead of DataDir, so that replicas share it; empty: DataDir.
	Store string
	// Standby is where a part waiting for another process's lease says so;
	// a nil Standby records nothing.
	Standby *Standby
}

// Commands is what modules ask of the incident command handler.
type Commands interface {
	// Get returns an incident's current state (incident.ErrNotFound when
	// there is none).
	Get(ctx context.Context, id string) (incident.State, error)
	// Resolve turns an incident id or a case number (INC-42) into an id.
	Resolve(ctx context.Context, ref string) (string, error)
	Declare(ctx context.Context, c incident.Declare, m incident.Meta) (incident.State, error)
	Execute(ctx context.Context, id string, c incident.Command, m incident.Meta) (incident.State, error)
}

// Effects is the effects ledger, keyed by what caused an effect.
type Effects interface {
	// Get decodes the recorded result of an effect into v; false when the
	// effect was not done.
	Get(ctx context.Context, key string, v any) (bool, error)
	// Put records that an effect was done, with its result.
	Put(ctx context.Context, key string, v any) error
}

// EventLog reads the incident event log.
type EventLog interface {
	// Load returns incident id's events stored after stream sequence after.
	Load(ctx context.Context, id string, after uint64) ([]events.Stored, error)
}

// Incidents reads the incidents read model.
type Incidents interface {
	// List returns every incident's current state, newest first.
	List(ctx context.Context) ([]incident.State, error)
}
