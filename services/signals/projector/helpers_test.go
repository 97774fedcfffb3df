package signals

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/adapters/natsjs/natstest"
	"github.com/hikeshi/hikeshi/adapters/sqlite"
	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/hub"
	"github.com/hikeshi/hikeshi/services/integrationtest"
	"github.com/hikeshi/hikeshi/services/signals/ingest"
	"github.com/nats-io/nats.go"
)

const testToken = "s3cret-token"

const baseYAML = `
signals:
  token_env: SIG_TOKEN
  grafana:
    hmac_secret_env: SIG_GRAFANA_HMAC
  aws:
    secret_env: SIG_AWS_SECRET
    sns_topics: ["arn:aws:sns:us-west-2:123456789012:MyTopic"]
`

func setSecrets(t *testing.T) {
	t.Setenv("SIG_TOKEN", testToken)
	t.Setenv("SIG_GRAFANA_HMAC", "grafana-hmac")
	t.Setenv("SIG_AWS_SECRET", "aws-secret")
}

// rig is a module on a real embedded bus, its routes on a loopback server.
type rig struct {
	t   testing.TB
	bus *natstest.Bus
	env *hub.Env
	m   *module
	srv *httptest.Server
}

type rigOpts struct {
	yaml string
	deps deps
}

func newRig(t testing.TB, o rigOpts) *rig {
	t.Helper()
	ih := integrationtest.New(t, o.yaml)
	b, env, file := ih.Bus, ih.Env, ih.Env.Config
	cfg, sec, err := Load(file)
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, bus: b, env: env}
	if r.m, err = newModule(cfg, sec, env, o.deps); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	for p, h := range r.m.parts().Routes {
		mux.Handle(p, h)
	}
	r.srv = httptest.NewServer(mux)
	t.Cleanup(r.srv.Close)
	return r
}

func (r *rig) post(path string, body []byte, hdr map[string]string) (*http.Response, string) {
	r.t.Helper()
	req, err := http.NewRequest(http.MethodPost, r.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		r.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := r.srv.Client().Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func auth(token string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + token}
}

// stored reads every signal on the stream.
func (r *rig) stored() []events.Signal {
	r.t.Helper()
	return integrationtest.Data[events.Signal](r.t, integrationtest.Stream(r.t, r.bus.JS, events.SignalStream))
}

func (r *rig) count() uint64 {
	r.t.Helper()
	s, err := r.bus.JS.Stream(context.Background(), events.SignalStream)
	if err != nil {
		r.t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		r.t.Fatal(err)
	}
	return info.State.Msgs
}

// run runs the module's projector until the test ends.
func (r *rig) run() {
	r.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.m.proj.run(ctx) }()
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
	db, err := sqlite.OpenState(filepath.Join(r.env.DataDir, StateFile))
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

// restart replaces the module by a fresh one on the same bus and data dir
// (a new process: empty caches).
func (r *rig) restart() {
	r.t.Helper()
	cfg, sec, err := Load(r.env.Config)
	if err != nil {
		r.t.Fatal(err)
	}
	if r.m, err = newModule(cfg, sec, r.env, deps{}); err != nil {
		r.t.Fatal(err)
	}
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
	b, err := os.ReadFile(filepath.Join("ingest", "testdata", name))
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
