package ingest

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/adapters/natsjs/natstest"
	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/config"
	"github.com/hikeshi/hikeshi/services/integrationtest"
	"github.com/hikeshi/hikeshi/services/signals/signaltest"
)

// The token, secrets and base configuration are signaltest's.
const (
	testToken = signaltest.Token
	baseYAML  = signaltest.BaseYAML
)

var setSecrets = signaltest.SetSecrets

// rig is the endpoints on a real embedded bus, on a loopback server.
type rig struct {
	t    testing.TB
	bus  *natstest.Bus
	pub  *natsjs.SignalPublisher
	h    *Handler
	srv  *httptest.Server
	snsK *rsa.PrivateKey
}

type rigOpts struct {
	yaml string
	deps Deps
}

func newRig(t testing.TB, o rigOpts) *rig {
	t.Helper()
	f, err := config.Parse("hikeshi.yaml", []byte(o.yaml))
	if err != nil {
		t.Fatal(err)
	}
	var cfg Config
	if _, err := f.Section("signals", &cfg); err != nil {
		t.Fatal(err)
	}
	sec, err := cfg.Load("signals")
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, bus: natstest.Start(t)}
	if o.deps.Certs == nil {
		if r.snsK, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			t.Fatal(err)
		}
		o.deps.Certs = func(_ context.Context, u string) (*x509.Certificate, error) {
			return &x509.Certificate{PublicKey: &r.snsK.PublicKey}, nil
		}
	}
	r.pub = natsjs.NewSignalPublisher(r.bus.JS)
	r.h = New(cfg, sec, r.pub, o.deps)
	mux := http.NewServeMux()
	for p, h := range r.h.Routes() {
		mux.Handle(p, h)
	}
	r.srv = httptest.NewServer(mux)
	t.Cleanup(r.srv.Close)
	return r
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

// sigFor is signal i of a storm over groups groups.
func sigFor(i, groups int, status string) events.Signal {
	g := i % groups
	return events.Signal{Source: "alertmanager", Kind: "alert", Fingerprint: fmt.Sprintf("fp-%d", i), Status: status,
		Title: fmt.Sprintf("Disk full on shard %d", g), Severity: "high", Service: "search",
		StartsAt: time.Unix(1750000000, 0).UTC(), GroupKey: fmt.Sprintf("group-%d", g)}
}

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
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
