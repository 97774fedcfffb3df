// Package integrationtest runs an integration module against a real
// embedded JetStream bus, with the hub's command handler, effects ledger and
// projection runner, so that a test drives incidents through the API's own
// commands and watches what the module did outside.
package integrationtest

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/adapters/natsjs/natstest"
	"github.com/hikeshi/hikeshi/adapters/sqlite"
	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/access"
	"github.com/hikeshi/hikeshi/services/command"
	"github.com/hikeshi/hikeshi/services/config"
	"github.com/hikeshi/hikeshi/services/httpapi"
	"github.com/hikeshi/hikeshi/services/incident"
	"github.com/hikeshi/hikeshi/services/integration"
	"github.com/hikeshi/hikeshi/services/module"
	"github.com/hikeshi/hikeshi/services/projection"
	"github.com/hikeshi/hikeshi/services/readmodel"
	"github.com/hikeshi/hikeshi/services/timeline"
	"github.com/nats-io/nats.go/jetstream"
)

// Hub is a bus and the dependencies a module receives from the hub.
type Hub struct {
	Bus *natstest.Bus
	Env *module.Deps
	// Timeline is the store WithTimeline opened (nil before).
	Timeline readmodel.Store
	// declared are the incidents Declare declared, in order (Mask).
	declared []incident.State
}

// New starts a bus and builds the Deps of a module whose configuration is
// yamlText. Its routes for API clients take no token until RequireToken.
func New(t testing.TB, yamlText string) *Hub {
	t.Helper()
	ctx := context.Background()
	b := natstest.Start(t)
	cases, err := natsjs.NewCases(ctx, b.JS, "INC")
	if err != nil {
		t.Fatal(err)
	}
	effects, err := natsjs.NewEffects(ctx, b.JS)
	if err != nil {
		t.Fatal(err)
	}
	file, err := config.Parse("hikeshi.yaml", []byte(yamlText))
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = slog.Default()
	}
	return &Hub{Bus: b, Env: &module.Deps{
		Config:    file,
		Commands:  command.New(b.Store, cases),
		Effects:   effects,
		Events:    b.Store,
		JS:        b.JS,
		Dial:      b.Dial,
		Logger:    logger,
		APIAuth:   httpapi.RequireCaller(access.ForToken("")),
		PublicURL: "https://hikeshi.example.test",
		DataDir:   t.TempDir(),
	}}
}

// RequireToken makes the module's routes for API clients take token, as
// the hub's API does with --token and no other auth.
func (h *Hub) RequireToken(token string) {
	h.Env.APIAuth = httpapi.RequireCaller(access.ForToken(token))
}

// Start starts module m and returns its parts.
func (h *Hub) Start(t testing.TB, m module.Module) module.Parts {
	t.Helper()
	parts, err := m.New(context.Background(), *h.Env)
	if err != nil {
		t.Fatalf("start %s: %v", m.Name, err)
	}
	return parts
}

// Run runs projectors on their durable consumers until the returned stop
// function is called (a process that stops, and may start again).
func (h *Hub) Run(t testing.TB, projectors []projection.Projector) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r, err := projection.New(ctx, projection.Config{Dial: h.Bus.Dial, JS: h.Bus.JS, Logger: h.Env.Logger, AckWait: 20 * time.Second}, projectors)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var stopped bool
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("runner: %v", err)
		}
	}
	t.Cleanup(stop)
	return stop
}

// Declare declares an incident as alice would through the API.
func (h *Hub) Declare(t testing.TB, c incident.Declare) incident.State {
	t.Helper()
	if c.DeclaredBy == "" {
		c.DeclaredBy = "alice"
	}
	st, err := h.Env.Commands.Declare(context.Background(), c, command.Meta{Actor: c.DeclaredBy})
	if err != nil {
		t.Fatal(err)
	}
	h.declared = append(h.declared, st)
	return st
}

// Do runs a command on incident id.
func (h *Hub) Do(t testing.TB, id string, c incident.Command) incident.State {
	t.Helper()
	st, err := h.Env.Commands.Execute(context.Background(), id, c, command.Meta{Actor: "bob"})
	if err != nil {
		t.Fatalf("%T: %v", c, err)
	}
	return st
}

// Events loads every stored event of incident id.
func (h *Hub) Events(t testing.TB, id string) []events.Stored {
	t.Helper()
	stored, err := h.Bus.Store.Load(context.Background(), id, 0)
	if err != nil {
		t.Fatal(err)
	}
	return stored
}

// Count returns how many events of type typ incident id has.
func (h *Hub) Count(t testing.TB, id, typ string) int {
	t.Helper()
	n := 0
	for _, e := range h.Events(t, id) {
		if e.Type == typ {
			n++
		}
	}
	return n
}

// Replay hands every stored event of incident id to handle, in order, as a
// projector that starts over from the beginning would see them.
func (h *Hub) Replay(t testing.TB, id string, handle func(context.Context, events.Stored) error) {
	t.Helper()
	for _, e := range h.Events(t, id) {
		if err := handle(context.Background(), e); err != nil {
			t.Fatalf("replay seq %d %s: %v", e.Seq, e.Type, err)
		}
	}
}

// ShortSearchLag shortens the waits between the searches after a lost
// create (integration.SearchLag) until t ends: the fakes' search indexes
// trail their writes by a number of searches, not by time.
func ShortSearchLag(t testing.TB) {
	lag := integration.SearchLag
	integration.SearchLag = []time.Duration{0, 10 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond}
	t.Cleanup(func() { integration.SearchLag = lag })
}

// Eventually polls cond until it holds or the deadline passes.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ForgetEffects empties the effects ledger, as if the process had crashed
// after every side effect and before recording any of them: a projector
// replayed after this must find its earlier work remotely, not redo it.
func (h *Hub) ForgetEffects(t testing.TB) {
	t.Helper()
	ctx := context.Background()
	kv, err := h.Bus.JS.KeyValue(ctx, natsjs.EffectsBucket)
	if err != nil {
		t.Fatal(err)
	}
	lister, err := kv.ListKeys(ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	for k := range lister.Keys() {
		if err := kv.Purge(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
}

// WithTimeline opens a timeline store for the modules that read it and
// returns its projector, to run next to theirs.
func (h *Hub) WithTimeline(t testing.TB) projection.Projector {
	t.Helper()
	store, err := sqlite.Open(filepath.Join(t.TempDir(), "timeline.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	h.Timeline, h.Env.Incidents = store, timeline.Incidents{Store: store}
	return timeline.New(store).Projection()
}

// Stream reads every message of the named stream, in order, as stored
// events.
func Stream(t testing.TB, js jetstream.JetStream, name string) []events.Stored {
	t.Helper()
	ctx := context.Background()
	s, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []events.Stored
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		e, err := natsjs.DecodeRaw(m.Subject, m.Sequence, m.Data)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

// Data decodes each event's data, which must be a *T.
func Data[T any](t testing.TB, es []events.Stored) []T {
	t.Helper()
	out := make([]T, 0, len(es))
	for _, e := range es {
		d, err := e.Decode()
		if err != nil {
			t.Fatal(err)
		}
		v, ok := any(d).(*T)
		if !ok {
			t.Fatalf("%s holds %T, not %T", e.Subject, d, v)
		}
		out = append(out, *v)
	}
	return out
}
