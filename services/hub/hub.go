// Package hub wires the parts of Hikeshi together: which targets run,
// embedded or external NATS, which projectors are registered.
package hub

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/access"
	"github.com/hikeshi/hikeshi/services/access/signin"
	"github.com/hikeshi/hikeshi/services/command"
	"github.com/hikeshi/hikeshi/services/config"
	"github.com/hikeshi/hikeshi/services/console"
	"github.com/hikeshi/hikeshi/services/history"
	"github.com/hikeshi/hikeshi/services/httpapi"
	"github.com/hikeshi/hikeshi/services/incident"
	"github.com/hikeshi/hikeshi/services/module"
	"github.com/hikeshi/hikeshi/services/projection"
	"github.com/hikeshi/hikeshi/services/readmodel"
	"github.com/hikeshi/hikeshi/services/telemetry"
	"github.com/hikeshi/hikeshi/services/timeline"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"
)

// Targets a hub process can run.
const (
	TargetAPI      = "api"
	TargetTimeline = "timeline"
)

// AllTargets is what a single-binary hub runs by default.
var AllTargets = []string{TargetAPI, TargetTimeline}

// Config is the hub's configuration; every field has a flag and an
// environment variable (see cmd/hikeshi).
type Config struct {
	DataDir    string
	Listen     string
	NATSURL    string // empty: embedded server under DataDir
	NATSListen string // embedded server's client port, empty: in-process only
	// NATSAuth is how clients of NATSListen log in; required beyond
	// loopback, enforced wherever configured.
	NATSAuth   natsjs.Auth
	SyncAlways bool
	Replicas   int
	Targets    []string
	Token      string
	CasePrefix string
	// PublicURL is where people reach the hub (links in messages);
	// default http://<Listen>.
	PublicURL string
	// HTTPTimeouts bound slow clients; unset ones take httpapi's defaults.
	HTTPTimeouts httpapi.Timeouts
	// Store is where the timeline store lives: a postgres:// URL, or
	// empty for SQLite under DataDir (TimelinePath).
	Store string
	// File is hikeshi.yaml; nil means no file (every module off).
	File *config.File
	// Modules are the optional parts this binary has (cmd/hikeshi's
	// table); one runs when File has its section or Targets names it.
	Modules []module.Module
	Logger  *slog.Logger

	// NodeName names this replica among hubs sharing one bus: its timeline
	// reads through a consumer of its own (see replica.go). Empty for a
	// single hub.
	NodeName string
	// NodeRetireAfter is how long the server keeps a named replica's
	// timeline consumer with no reader (default DefaultNodeRetireAfter).
	NodeRetireAfter time.Duration
}

// Defaults fills unset fields.
func (c *Config) Defaults() {
	if c.DataDir == "" {
		c.DataDir = "./hikeshi-data"
	}
	if c.Listen == "" {
		c.Listen = "127.0.0.1:8080"
	}
	if c.File == nil {
		c.File = config.Empty()
	}
	if len(c.Targets) == 0 {
		c.Targets = append([]string(nil), AllTargets...)
		for _, m := range c.Modules {
			if c.File.Has(m.Name) {
				c.Targets = append(c.Targets, m.Name)
			}
		}
	}
	if c.PublicURL == "" {
		c.PublicURL = "http://" + c.Listen
	}
	if c.CasePrefix == "" {
		c.CasePrefix = "INC"
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.NodeRetireAfter <= 0 {
		c.NodeRetireAfter = DefaultNodeRetireAfter
	}
}

// Validate rejects configurations that would be unsafe or cannot work.
func (c *Config) Validate() error {
	known := append([]string(nil), AllTargets...)
	for _, m := range c.moduleNames() {
		if slices.Contains(known, m) {
			return fmt.Errorf("module %q is listed twice, or named like a built-in target", m)
		}
		known = append(known, m)
	}
	for _, t := range c.Targets {
		if !slices.Contains(known, t) {
			return fmt.Errorf("unknown target %q (known: %s)", t, strings.Join(known, ", "))
		}
	}
	if c.Store != "" && !readmodel.IsURL(c.Store) {
		return fmt.Errorf("--store %q: give a postgres://user@host/db URL, or none for SQLite in the data dir", c.Store)
	}
	if err := c.File.CheckSections(append(c.moduleNames(), access.Section, EvidenceSection)); err != nil {
		return err
	}
	if _, err := c.Evidence(); err != nil {
		return err
	}
	if _, _, err := access.LoadConfig(c.File); err != nil {
		return err
	}
	if c.runs(TargetAPI) && !c.authConfigured() && !loopback(c.Listen) {
		return fmt.Errorf("refusing to listen on %s without authentication: add an auth section to hikeshi.yaml "+
			"(auth.oidc for people signing in; API tokens from `hikeshi token create`), or set --token or HIKESHI_TOKEN, "+
			"or listen on a loopback address", c.Listen)
	}
	if err := c.validateNATSListen(); err != nil {
		return err
	}
	if err := ValidNodeName(c.NodeName); err != nil {
		return err
	}
	if !caseNumberPrefix(c.CasePrefix) {
		return fmt.Errorf("case prefix %q must be letters and digits, starting with a letter", c.CasePrefix)
	}
	return nil
}

// validateNATSListen refuses an embedded NATS port open to the network
// without a login: anyone reaching it could read every incident, append
// events and delete streams.
func (c *Config) validateNATSListen() error {
	a := c.NATSAuth
	if a != (natsjs.Auth{}) && (c.NATSURL != "" || c.NATSListen == "") {
		return errors.New("NATS login, access and TLS settings (--nats-user, --nats-nkey, --nats-access, --nats-tls-*) apply to the embedded server's --nats-listen port: " +
			"set --nats-listen, or configure them on the NATS server of --nats")
	}
	if err := a.Validate(); err != nil {
		return err
	}
	if c.NATSListen != "" && c.NATSURL == "" && !a.Configured() && !loopback(c.NATSListen) {
		return fmt.Errorf("refusing to expose NATS on %s without authentication: set --nats-user with HIKESHI_NATS_PASSWORD, or --nats-nkey, "+
			"or listen on a loopback address", c.NATSListen)
	}
	return nil
}

func caseNumberPrefix(p string) bool {
	for i, r := range p {
		letter := r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z'
		if !letter && (i == 0 || r < '0' || r > '9') {
			return false
		}
	}
	return p != ""
}

func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// authConfigured: callers must authenticate (a token or an auth section);
// otherwise a loopback hub serves its one local operator.
func (c *Config) authConfigured() bool { return c.Token != "" || c.File.Has(access.Section) }

func (c *Config) runs(target string) bool { return slices.Contains(c.Targets, target) }

func (c *Config) writesDataDir() bool {
	if c.runs(TargetTimeline) && c.Store == "" {
		return true
	}
	for _, m := range c.Modules {
		if m.WritesDataDir && c.runs(m.Name) {
			return true
		}
	}
	return false
}

// TimelinePath is the SQLite file under the data dir.
func (c *Config) TimelinePath() string { return filepath.Join(c.DataDir, "timeline.db") }

// Bus is a connection to JetStream, embedded or external.
type Bus struct {
	Server *server.Server // nil when external
	url    string
	login  []nats.Option // the hub's own login to an embedded server with auth
	Conn   *nats.Conn
	JS     jetstream.JetStream
	Events *natsjs.Store
}

// OpenBus starts the embedded server when no URL is given, connects, and
// ensures the streams exist.
func OpenBus(ctx context.Context, c *Config) (*Bus, error) {
	b := &Bus{url: c.NATSURL}
	if c.NATSURL == "" {
		if err := os.MkdirAll(c.DataDir, 0o750); err != nil {
			return nil, fmt.Errorf("data dir: %w", err)
		}
		ec := natsjs.EmbeddedConfig{
			StoreDir: filepath.Join(c.DataDir, "nats"), Listen: c.NATSListen, SyncAlways: c.SyncAlways,
			Auth: c.NATSAuth, Protected: append([]string{c.timelineDurable()}, c.moduleNames()...),
		}
		if c.NATSAuth.Configured() {
			// A new password at every start, known only to this process.
			ec.HubPassword = rand.Text()
			b.login = []nats.Option{nats.UserInfo(natsjs.HubUser, ec.HubPassword), nats.CustomInboxPrefix(natsjs.HubInbox)}
		}
		ns, err := natsjs.StartEmbedded(ec)
		if err != nil {
			return nil, err
		}
		b.Server = ns
	}
	var err error
	if b.Conn, err = b.Dial("hikeshi"); err != nil {
		b.Close()
		return nil, err
	}
	if b.JS, err = jetstream.New(b.Conn); err != nil {
		b.Close()
		return nil, err
	}
	warnReplicas(c, b.Conn)
	if err := ensureTopology(ctx, b.JS, c.Replicas); err != nil {
		b.Close()
		return nil, fmt.Errorf("%w (is NATS reachable and JetStream enabled?)", err)
	}
	if b.Events, err = natsjs.NewStore(ctx, b.JS); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

// clusterFormingWait is how long a hub waits at start for a JetStream
// cluster that is still forming.
const clusterFormingWait = time.Minute

// ensureTopology creates the streams and buckets, waiting while a
// JetStream cluster is still forming (nodes started together with the
// hubs, a peer not yet back), so that an operator need not order the
// starts.
func ensureTopology(ctx context.Context, js jetstream.JetStream, replicas int) error {
	deadline := time.Now().Add(clusterFormingWait)
	for {
		err := natsjs.EnsureTopology(ctx, js, natsjs.Topology{Replicas: replicas})
		if err == nil || ctx.Err() != nil || !natsjs.ClusterForming(err) || time.Now().After(deadline) {
			return err
		}
		slog.Warn("waiting for the JetStream cluster to take the streams", "err", err)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Second):
		}
	}
}

// Dial opens another connection to the same bus.
func (b *Bus) Dial(name string) (*nats.Conn, error) {
	return natsjs.Connect(b.Server, b.url, name, b.login...)
}

// Close closes the connection and stops an embedded server.
func (b *Bus) Close() {
	if b.Conn != nil {
		b.Conn.Close()
	}
	if b.Server != nil {
		b.Server.Shutdown()
		b.Server.WaitForShutdown()
	}
}

// Ready reports an error when the bus cannot take writes.
func (b *Bus) Ready(ctx context.Context) error {
	if !b.Conn.IsConnected() {
		return errors.New("nats: not connected")
	}
	if _, err := b.JS.AccountInfo(ctx); err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	return nil
}

// Hub is a running hub.
type Hub struct {
	cfg      Config
	bus      *Bus
	timeline readmodel.Store
	runner   *projection.Runner
	commands *command.Handler
	http     *http.Server
	ln       net.Listener
	lock     *DataDirLock
	standby  module.Standby
	closed   sync.Once
	loops    []func(context.Context) error
}

// Start opens everything the configured targets need and begins serving.
// Run then blocks until ctx ends.
func Start(ctx context.Context, cfg Config) (*Hub, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	// The data dir is exclusive to the process that writes it: the embedded
	// NATS store, the timeline store, or a module's files. An api-only
	// process in split mode only reads the timeline (SQLite allows that
	// beside the writer).
	h, err := open(ctx, cfg, cfg.NATSURL == "" || cfg.writesDataDir())
	if err != nil {
		return nil, err
	}
	if err := h.start(ctx, telemetry.New()); err != nil {
		h.Close()
		return nil, err
	}
	return h, nil
}

// Open opens what the hub's parts need (the data dir, locked, the bus and
// the timeline store) and starts none of them: for a command that runs one
// part by itself while no hub runs (see ModuleParts). Close releases it.
func Open(ctx context.Context, cfg Config) (*Hub, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return open(ctx, cfg, true)
}

func open(ctx context.Context, cfg Config, lock bool) (*Hub, error) {
	h := &Hub{cfg: cfg}
	var err error
	if lock {
		if h.lock, err = LockDataDir(cfg.DataDir); err != nil {
			return nil, err
		}
	} else if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	if h.bus, err = OpenBus(ctx, &h.cfg); err != nil {
		h.Close()
		return nil, err
	}
	if h.timeline, err = readmodel.Open(ctx, cfg.Store, cfg.TimelinePath()); err != nil {
		h.Close()
		return nil, err
	}
	return h, nil
}

func (h *Hub) start(ctx context.Context, metrics *telemetry.Metrics) error {
	cfg := h.cfg
	commands, deps, err := h.services(ctx, metrics)
	if err != nil {
		return err
	}
	h.commands = commands
	routes := map[string]http.Handler{}
	guard, err := h.access(ctx, routes)
	if err != nil {
		return err
	}
	deps.APIAuth, deps.ShowCodenames = httpapi.RequireCaller(guard.Auth), guard.ShowCodenames
	var projectors []projection.Projector
	if cfg.runs(TargetTimeline) {
		projectors = append(projectors, h.timelineProjection())
		sign, err := h.checkpointWriter()
		if err != nil {
			return err
		}
		h.loops = append(h.loops, sign)
	}
	for _, m := range cfg.Modules {
		if !cfg.runs(m.Name) {
			continue
		}
		deps.Logger = cfg.Logger.With("module", m.Name)
		parts, err := m.New(ctx, deps)
		if err != nil {
			return fmt.Errorf("%s: %w", m.Name, err)
		}
		projectors = append(projectors, parts.Projectors...)
		for pattern, handler := range parts.Routes {
			routes[pattern] = handler
		}
		h.loops = append(h.loops, parts.Background...)
	}
	if len(projectors) > 0 {
		h.runner, err = projection.New(ctx, projection.Config{Dial: h.bus.Dial, JS: h.bus.JS, Logger: cfg.Logger, Metrics: metrics}, projectors)
		if err != nil {
			return err
		}
		names := make([]telemetry.Consumer, 0, len(projectors))
		for _, p := range projectors {
			metrics.Projector(p.Durable)
			names = append(names, telemetry.Consumer{Stream: p.Stream, Durable: p.Durable})
		}
		metrics.WatchLag(h.bus.JS, names...)
	}
	if !cfg.runs(TargetAPI) {
		if len(routes) > 0 {
			return errors.New("modules with inbound endpoints need the api target")
		}
		return nil
	}
	answers, err := natsjs.NewAnswers(ctx, h.bus.JS)
	if err != nil {
		return err
	}
	api := httpapi.New(httpapi.Deps{
		Commands:           commands,
		Timeline:           h.timeline,
		TimelineCheckpoint: timeline.Name,
		Events:             h.bus.Events,
		Answers:            answers,
		Metrics:            metrics,
		Token:              cfg.Token,
		Timeouts:           cfg.HTTPTimeouts,
		Ready: func(ctx context.Context) error {
			if err := h.bus.Ready(ctx); err != nil {
				return err
			}
			return h.timeline.Ping(ctx)
		},
		Standby: h.standby.Waiting,

		// Who may call, and what they see of confidential incidents.
		Auth: guard.Auth, Tokens: guard.Auth.Tokens, ShowCodenames: guard.ShowCodenames,
	})
	for pattern, handler := range routes {
		api.Mount(pattern, handler)
	}
	con := h.console(commands, routes, guard, api.History())
	api.Mount("/", con)
	h.loops = append(h.loops, con.Run)
	h.loops = append(h.loops, api.Live)
	if h.ln, err = net.Listen("tcp", cfg.Listen); err != nil {
		return fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	h.http = api.HTTPServer()
	return nil
}

// access sets up who may call: API tokens, the --token service token,
// people signing in with OIDC (whose routes it adds), and the local
// operator when no auth is configured.
func (h *Hub) access(ctx context.Context, routes map[string]http.Handler) (*access.Guard, error) {
	cfg, _, err := access.LoadConfig(h.cfg.File)
	if err != nil {
		return nil, err
	}
	store, err := natsjs.NewAccess(ctx, h.bus.JS)
	if err != nil {
		return nil, err
	}
	g := &access.Guard{Auth: &access.Authenticator{Legacy: h.cfg.Token, Tokens: access.NewTokens(store)}, ShowCodenames: cfg.ShowCodenames}
	if !h.cfg.authConfigured() {
		local := access.LocalOperator()
		g.Auth.Local = &local
	}
	if cfg.OIDC == nil || !h.cfg.runs(TargetAPI) {
		return g, nil
	}
	if err := recordRoleMapping(ctx, store, cfg.OIDC.Roles); err != nil {
		return nil, err
	}
	secret, err := config.Secret("auth.oidc", "client_secret_env", cfg.OIDC.ClientSecretEnv)
	if err != nil {
		return nil, err
	}
	sessions, err := natsjs.NewSessions(ctx, h.bus.JS)
	if err != nil {
		return nil, err
	}
	si, err := signin.New(ctx, *cfg.OIDC, secret, h.cfg.PublicURL, sessions, h.cfg.Logger)
	if err != nil {
		return nil, err
	}
	g.Auth.Sessions = si
	maps.Copy(routes, si.Routes())
	return g, nil
}

// recordRoleMapping records the configured group → role mapping on the
// access stream when it differs from the last one recorded.
func recordRoleMapping(ctx context.Context, store *natsjs.Access, mapping map[string]string) error {
	var last events.RoleMappingChanged
	env, ok, err := store.LastAccess(ctx, events.RoleMappingID, "role_mapping_changed")
	if err != nil {
		return err
	}
	if ok {
		if err := json.Unmarshal(env.Data, &last); err != nil {
			return fmt.Errorf("last role mapping: %w", err)
		}
		if maps.Equal(last.Mapping, mapping) {
			return nil
		}
	}
	// The id derives from the change, so replicas starting together with
	// the same configuration record it once.
	change := &events.RoleMappingChanged{Mapping: mapping, Previous: last.Mapping}
	key, err := json.Marshal(change) // maps marshal with sorted keys
	if err != nil {
		return err
	}
	hub := access.Identity{ID: "hub", Name: "hub configuration"}
	return access.Record(ctx, store, hub, events.RoleMappingID, change, string(key))
}

// console is the web console at /, with the signals module's list and the
// GitHub module's follow-ups when they run here. Its callers are the API's:
// signed-in people, token holders, and the local operator of a hub without
// auth on loopback.
func (h *Hub) console(commands module.Commands, routes map[string]http.Handler, guard *access.Guard, past *history.Cache) *console.Console {
	d := console.Deps{Commands: commands, Timeline: h.timeline, JS: h.bus.JS, History: past,
		Caller: func(r *http.Request) (console.Caller, bool) {
			id, err := guard.Auth.Authenticate(r)
			if err != nil || id.Role == access.None {
				return nil, false
			}
			return consoleCaller{id}, true
		},
		Signals: routes["GET /api/v1/signals"], Followups: routes["GET /api/v1/followups"],
		Secure: strings.HasPrefix(h.cfg.PublicURL, "https://"), Logger: h.cfg.Logger}
	if si, ok := guard.Auth.Sessions.(*signin.SignIn); ok {
		d.SignIn, d.SignOut, d.SessionCSRF = signin.PathLogin, signin.PathLogout, si.CSRF
	}
	return console.New(d)
}

// consoleCaller is an identity as the console asks about it.
type consoleCaller struct{ id access.Identity }

func (c consoleCaller) Actor() string { return c.id.ID }
func (c consoleCaller) Name() string  { return c.id.Name }

func (c consoleCaller) Can(a console.Action, st *incident.State) bool {
	var inc *access.Incident
	if st != nil {
		acc := access.IncidentOf(*st)
		inc = &acc
	}
	return access.Can(c.id, map[console.Action]access.Action{
		console.Read: access.Read, console.Act: access.Act, console.Declare: access.Declare}[a], inc)
}

// Addr is where the API listens ("" when the api target does not run).
func (h *Hub) Addr() string {
	if h.ln == nil {
		return ""
	}
	return h.ln.Addr().String()
}

// Bus exposes the bus connection.
func (h *Hub) Bus() *Bus { return h.bus }

// Run serves until ctx ends, then shuts down in order: stop taking
// requests, stop projectors, close the store, stop the bus.
func (h *Hub) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	if h.http != nil {
		g.Go(func() error {
			if err := h.http.Serve(h.ln); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		})
	}
	if h.runner != nil {
		g.Go(func() error { return h.runner.Run(ctx) })
	}
	for _, loop := range h.loops {
		g.Go(func() error { return loop(ctx) })
	}
	g.Go(func() error {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if h.http != nil {
			_ = h.http.Shutdown(sctx)
		}
		if h.runner != nil {
			_ = h.runner.Close()
		}
		return nil
	})
	err := g.Wait()
	h.Close()
	return err
}

// Close releases everything Start opened; later calls do nothing.
func (h *Hub) Close() { h.closed.Do(h.close) }

func (h *Hub) close() {
	if h.runner != nil {
		_ = h.runner.Close()
	}
	if h.timeline != nil {
		_ = h.timeline.Close()
	}
	if h.commands != nil {
		// The snapshots written behind the last commands, so that the next
		// start loads those incidents without reading their events.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := h.commands.Flush(ctx); err != nil {
			slog.Warn("incident snapshots not all stored at shutdown; the next loads read the events after the older ones", "err", err)
		}
		cancel()
	}
	if h.bus != nil {
		h.bus.Close()
	}
	if h.lock != nil {
		h.lock.Release()
	}
}

// Targets lists the parts this hub runs.
func (h *Hub) Targets() []string { return h.cfg.Targets }
