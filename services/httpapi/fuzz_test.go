package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/adapters/natsjs/natstest"
	"github.com/hikeshi/hikeshi/adapters/sqlite"
	"github.com/hikeshi/hikeshi/services/command"
	"github.com/hikeshi/hikeshi/services/httpapi"
)

// newServer builds the API over a real embedded bus, without listening.
func newServer(tb testing.TB) *httpapi.Server {
	tb.Helper()
	ctx := context.Background()
	bus := natstest.Start(tb)
	cases, err := natsjs.NewCases(ctx, bus.JS, "INC")
	if err != nil {
		tb.Fatal(err)
	}
	answers, err := natsjs.NewAnswers(ctx, bus.JS)
	if err != nil {
		tb.Fatal(err)
	}
	tl, err := sqlite.Open(filepath.Join(tb.TempDir(), "timeline.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { tl.Close() })
	return httpapi.New(httpapi.Deps{Commands: command.New(bus.Store, cases), Timeline: tl, Events: bus.Store, Answers: answers})
}

// FuzzDeclareBody posts arbitrary bytes as the body of a declare and of a
// note: the answer is a 2xx incident or a JSON error, never a 5xx (but a
// 503 from the bus) and never a panic.
func FuzzDeclareBody(f *testing.F) {
	for _, seed := range []string{
		`{"title":"API down","service":"api","severity":"SEV1"}`,
		`{"title":"API down","service":"api","severity":"2","summary":"s","declared_by":"a","confidential":true,"drill":true}`,
		`{"title":"x","service":"a b","severity":"SEV2"}`,
		`{"title":42}`, `{"title":"x","extra":1}`, `{"text":"note"}`, `{"text":"\ud800"}`,
		`[]`, `"x"`, `null`, `{}`, ``, `{`, `{"title":"x"}{}`, "{\"title\":\"\xff\"}",
		`{"title":{"nested":[1,2,3]}}`, `{"confidential":"yes"}`, `{"severity":1e400}`,
	} {
		f.Add([]byte(seed))
	}
	srv := newServer(f)
	post := func(path string, body []byte) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.RemoteAddr = "127.0.0.1:40000" // the local operator of a hub without auth
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, r)
		return w
	}
	w := post("/api/v1/incidents", []byte(`{"title":"fuzz target","service":"fuzz","severity":"SEV4"}`))
	var inc struct {
		ID string `json:"id"`
	}
	if w.Code != http.StatusCreated || json.Unmarshal(w.Body.Bytes(), &inc) != nil {
		f.Fatalf("declare: %d %s", w.Code, w.Body)
	}
	check := func(t *testing.T, path string, body []byte, ok int) {
		w := post(path, body)
		switch {
		case w.Code == ok:
			var v struct {
				ID string `json:"id"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil || v.ID == "" {
				t.Fatalf("%s %q: %d with body %s", path, body, w.Code, w.Body)
			}
		case w.Code >= 500 && w.Code != http.StatusServiceUnavailable:
			t.Fatalf("%s %q: %d %s", path, body, w.Code, w.Body)
		case w.Code >= 200 && w.Code < 300:
			t.Fatalf("%s %q: unexpected %d", path, body, w.Code)
		default:
			var e struct {
				Error struct {
					Code    string `json:"code"`
					Message string `json:"message"`
				} `json:"error"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
				t.Fatalf("%s %q: %d with a non-JSON error %s", path, body, w.Code, w.Body)
			}
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		check(t, "/api/v1/incidents", body, http.StatusCreated)
		check(t, "/api/v1/incidents/"+inc.ID+"/notes", body, http.StatusOK)
	})
}
