package projector

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/adapters/natsjs/natstest"
	"github.com/hikeshi/hikeshi/adapters/postgres"
	"github.com/hikeshi/hikeshi/adapters/postgres/pgtest"
	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/config"
	"github.com/hikeshi/hikeshi/services/integrationtest"
	"github.com/hikeshi/hikeshi/services/module"
	"github.com/hikeshi/hikeshi/services/readmodel"
	"github.com/hikeshi/hikeshi/services/signals/ingest"
	"github.com/hikeshi/hikeshi/services/signals/signaltest"
	"github.com/nats-io/nats.go"
)

// The token, secrets and base configuration are signaltest's.
const (
	testToken = signaltest.Token
	baseYAML  = signaltest.BaseYAML
)

var setSecrets = signaltest.SetSecrets

// rig is the signal endpoints and the projector on a real embedded bus,
// the endpoints and the decisions list on a loopback server.
type rig struct {
	t   testing.TB
	bus *natstest.Bus
	env *module.Deps
	pub *natsjs.SignalPublisher
	in  *ingest.Handler
	p   *Runner
	srv *httptest.Server
}

type rigOpts struct {
	yaml string
	// store is the PostgreSQL URL of the state; empty: the data dir.
	store string
}

// section is the signals: section as the module reads it.
type section struct {
	Ingest    ingest.Config `yaml:",inline"`
	Projector Config        `yaml:",inline"`
}

// load reads the signals: section of f and builds the projector on env.
func load(f *config.File, env *module.Deps) (ingest.Config, ingest.Secrets, *Runner, error) {
	var c section
	if _, err := f.Section("signals", &c); err != nil {
		return c.Ingest, ingest.Secrets{}, nil, err
	}
	isec, err := c.Ingest.Load("signals")
	if err != nil {
		return c.Ingest, isec, nil, err
	}
	tok, err := c.Projector.Load("signals")
	if err != nil {
		return c.Ingest, isec, nil, err
	}
	p, err := New(c.Projector, tok, Env{JS: env.JS, Dial: env.Dial, Commands: env.Commands, Effects: env.Effects,
		Standby: env.Standby, Logger: env.Logger, DataDir: env.DataDir, DataDirID: env.DataDirID, Store: env.Store})
	return c.Ingest, isec, p, err
}

func newRig(t testing.TB, o rigOpts) *rig {
	t.Helper()
	ih := integrationtest.New(t, o.yaml)
	r := &rig{t: t, bus: ih.Bus, env: ih.Env}
	ih.Env.Store = o.store
	icfg, isec, p, err := load(ih.Env.Config, ih.Env)
	if err != nil {
		t.Fatal(err)
	}
	r.p = p
	r.pub = natsjs.NewSignalPublisher(ih.Env.JS)
	r.in = ingest.New(icfg, isec, r.pub, ingest.Deps{})
	mux := http.NewServeMux()
	for path, h := range r.routes() {
		mux.Handle(path, h)
	}
	r.srv = httptest.NewServer(mux)
	t.Cleanup(r.srv.Close)
	return r
}

// routes are the module's: the endpoints and the decisions list.
func (r *rig) routes() map[string]http.Handler {
	routes := r.in.Routes()
	// Behind the rig's APIAuth as it is when the list is asked for (a
	// test may change it after the rig starts).
	routes["GET "+ingest.PathGeneric] = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.env.APIAuth(http.HandlerFunc(r.p.ListSignals)).ServeHTTP(w, req)
	})
	return routes
}

func (r *rig) post(path string, body []byte, hdr map[string]string) (*http.Response, string) {
	r.t.Helper()
	return integrationtest.Post(r.t, r.srv.URL+path, body, hdr)
}

var auth = integrationtest.Bearer

// stored reads every signal on the stream.
func (r *rig) stored() []events.Signal {
	r.t.Helper()
	return integrationtest.Data[events.Signal](r.t, integrationtest.Stream(r.t, r.bus.JS, events.SignalStream))
}

func (r *rig) count() uint64 {
	r.t.Helper()
	return integrationtest.StreamLen(r.t, r.bus.JS, events.SignalStream)
}

// run runs the module's projector until the test ends.
func (r *rig) run() {
	r.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.p.Run(ctx) }()
	r.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			r.t.Errorf("projector: %v", err)
		}
	})
}

// state reads key from the projector's state file as committed, into v;
// false when the key was never written.
func (r *rig) state(key string, v any) bool {
	r.t.Helper()
	db, err := readmodel.OpenState(context.Background(), r.env.Store, filepath.Join(r.env.DataDir, StateFile))
	if err != nil {
		r.t.Fatal(err)
	}
	defer db.Close()
	b, ok, err := db.Get(context.Background(), key)
	if err != nil {
		r.t.Fatal(err)
	}
	if ok {
		if err := json.Unmarshal(b, v); err != nil {
			r.t.Fatal(err)
		}
	}
	return ok
}

// restart replaces the projector by a fresh one on the same bus and data
// dir (a new process: empty caches).
func (r *rig) restart() {
	r.t.Helper()
	_, _, p, err := load(r.env.Config, r.env)
	if err != nil {
		r.t.Fatal(err)
	}
	r.p = p
}

// publishLate stores sig as a copy that arrives after the stream's Msg-Id
// window would: under another Msg-Id.
func (r *rig) publishLate(sig events.Signal) {
	r.t.Helper()
	key := sig.Key()
	m := nats.NewMsg(events.SignalSubject(sig.Source, sig.Kind))
	var err error
	if m.Data, err = events.AppendSignal(nil, &sig, key, time.Now()); err != nil {
		r.t.Fatal(err)
	}
	m.Header.Set(nats.MsgIdHdr, key+"-late-"+time.Now().Format(time.RFC3339Nano))
	if _, err := r.bus.JS.PublishMsg(context.Background(), m); err != nil {
		r.t.Fatal(err)
	}
}

// escalateTwice delivers the same escalation twice and waits until the
// projector handled what was stored.
func (r *rig) escalateTwice(id string) {
	r.t.Helper()
	esc := []byte(`{"id":"` + id + `","title":"Customers charged twice","reported_by":"yuki.tanaka",` +
		`"reported_at":"2025-06-05T07:48:12Z","customer_impact":"Three tenants","service":"payments","severity":"medium"}`)
	for range 2 {
		resp, out := r.post(ingest.PathEscalations, esc, auth(testToken))
		must(r.t, resp.StatusCode == 202, "%d %s", resp.StatusCode, out)
	}
	r.run()
	r.waitHandled(1, 20*time.Second)
}

// waitHandled waits until the projector's consumer acknowledged n signals.
func (r *rig) waitHandled(n uint64, within time.Duration) {
	r.t.Helper()
	deadline := time.Now().Add(within)
	for {
		c, err := r.bus.JS.Consumer(context.Background(), events.SignalStream, Durable)
		if err == nil {
			if info, err := c.Info(context.Background()); err == nil && info.AckFloor.Stream >= n {
				return
			}
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("projector did not reach %d signals within %s", n, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "ingest", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func must(t testing.TB, cond bool, format string, a ...any) {
	t.Helper()
	if !cond {
		t.Fatalf(format, a...)
	}
}

// stateStore is a database the projector's state runs on.
type stateStore struct {
	name string
	// store is the rig's rigOpts.store.
	store func(t *testing.T) string
	// lose removes the state of r's stopped projector.
	lose func(t *testing.T, r *rig)
}

var stateStores = []stateStore{
	{
		name:  "sqlite",
		store: func(*testing.T) string { return "" },
		lose: func(t *testing.T, r *rig) {
			for _, f := range []string{StateFile, StateFile + "-wal", StateFile + "-shm"} {
				if err := os.Remove(filepath.Join(r.env.DataDir, f)); err != nil && !os.IsNotExist(err) {
					t.Fatal(err)
				}
			}
		},
	},
	{
		name:  "postgres",
		store: func(t *testing.T) string { return pgtest.Database(t) },
		lose: func(t *testing.T, r *rig) {
			if _, err := postgres.SetAsideState(context.Background(), r.env.Store); err != nil {
				t.Fatal(err)
			}
		},
	},
}

// eachStateStore runs test on each database the state runs on.
func eachStateStore(t *testing.T, test func(t *testing.T, b stateStore)) {
	for _, b := range stateStores {
		t.Run(b.name, func(t *testing.T) { test(t, b) })
	}
}

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
