package hub_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/hikeshi/hikeshi/services/hub"
	"github.com/hikeshi/hikeshi/services/incident"
	"github.com/hikeshi/hikeshi/services/module"
)

// A module gets from the hub everything its Deps promise, a logger tagged
// with its name, and a route for API clients behind the API's token.
func TestModuleDeps(t *testing.T) {
	var got module.Deps
	probe := module.Module{Name: "probe", New: func(ctx context.Context, d module.Deps) (module.Parts, error) {
		got = d
		d.Logger.Info("probe started")
		return module.Parts{Routes: map[string]http.Handler{
			"GET /api/v1/probe": d.APIAuth(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if _, err := d.Commands.Get(r.Context(), "no-such-incident"); !errors.Is(err, incident.ErrNotFound) {
					t.Errorf("Commands.Get of an unknown incident: %v", err)
				}
				w.WriteHeader(http.StatusNoContent)
			})),
		}}, nil
	}}
	var logs lockedBuffer // the hub logs from its goroutines too
	h := runHub(t, hub.Config{Token: "api-token", Targets: []string{hub.TargetAPI, "probe"}, Modules: []module.Module{probe},
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})

	for name, missing := range map[string]bool{
		"Config": got.Config == nil, "Commands": got.Commands == nil, "Effects": got.Effects == nil,
		"Events": got.Events == nil, "Incidents": got.Incidents == nil, "JS": got.JS == nil, "Dial": got.Dial == nil,
		"Metrics": got.Metrics == nil, "APIAuth": got.APIAuth == nil, "Standby": got.Standby == nil,
		"PublicURL": got.PublicURL == "", "DataDir": got.DataDir == "", "DataDirID": got.DataDirID == "",
	} {
		if missing {
			t.Errorf("Deps.%s not set", name)
		}
	}
	if list, err := got.Incidents.List(t.Context()); err != nil || len(list) != 0 {
		t.Errorf("Incidents.List on a new hub = %v, %v", list, err)
	}
	if out := logs.String(); !strings.Contains(out, `msg="probe started" module=probe`) {
		t.Errorf("the module's log line is not tagged with its name:\n%s", out)
	}
	for token, want := range map[string]int{"": http.StatusUnauthorized, "wrong": http.StatusUnauthorized, "api-token": http.StatusNoContent} {
		req, _ := http.NewRequest(http.MethodGet, "http://"+h.Addr()+"/api/v1/probe", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("token %q: status %d, want %d", token, resp.StatusCode, want)
		}
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
