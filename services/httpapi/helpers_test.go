package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/hub"
	"github.com/hikeshi/hikeshi/services/timeline"
)

// startHub runs a whole hub (embedded NATS, timeline projector, API) in a
// temporary data dir on a loopback port, and stops it when the test ends.
func startHub(t *testing.T, cfg hub.Config) (*hub.Hub, *client) {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	ctx, cancel := context.WithCancel(context.Background())
	h, err := hub.Start(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	t.Cleanup(func() {
		if h.Bus().Conn.IsConnected() {
			quiesce(t, h)
		}
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("hub run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("hub did not stop within 30s")
		}
	})
	return h, &client{t: t, base: "http://" + h.Addr(), token: cfg.Token, hc: &http.Client{Timeout: 30 * time.Second}}
}

type client struct {
	t     *testing.T
	base  string
	token string
	hc    *http.Client
}

type response struct {
	Status int
	Header http.Header
	Body   []byte
}

// req sends a request. body is sent as is when it is a string or []byte,
// JSON-encoded otherwise. hdr is name, value pairs; a JSON Content-Type and
// the client's bearer token are added unless hdr sets them.
func (c *client) req(method, path string, body any, hdr ...string) response {
	c.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			c.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	r, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if body != nil {
		r.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		r.Header.Set("Authorization", "Bearer "+c.token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == "" {
			r.Header.Del(hdr[i])
			continue
		}
		r.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := c.hc.Do(r)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		c.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return response{Status: res.StatusCode, Header: res.Header, Body: b}
}

func (c *client) post(path string, body any, hdr ...string) response {
	c.t.Helper()
	return c.req(http.MethodPost, path, body, hdr...)
}

func (c *client) get(path string, hdr ...string) response {
	c.t.Helper()
	return c.req(http.MethodGet, path, nil, hdr...)
}

// must checks the status and decodes the body into v (when non-nil).
func (r response) must(t *testing.T, status int, v any) response {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d; body %s", r.Status, status, r.Body)
	}
	if v != nil {
		if err := json.Unmarshal(r.Body, v); err != nil {
			t.Fatalf("decode %s: %v", r.Body, err)
		}
	}
	return r
}

type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Field   string `json:"field"`
	} `json:"error"`
}

// mustError checks that r is a JSON error with this status and code.
func (r response) mustError(t *testing.T, status int, code string) apiError {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d; body %s", r.Status, status, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("error Content-Type %q, want application/json", ct)
	}
	var e apiError
	dec := json.NewDecoder(bytes.NewReader(r.Body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		t.Fatalf("error body %s is not {\"error\":{\"code\",\"message\"}}: %v", r.Body, err)
	}
	if e.Error.Code == "" || e.Error.Message == "" {
		t.Fatalf("error body %s lacks code or message", r.Body)
	}
	if code != "" && e.Error.Code != code {
		t.Fatalf("error code %q, want %q (%s)", e.Error.Code, code, e.Error.Message)
	}
	return e
}

// Incident is the subset of the API's incident the tests look at.
type Incident struct {
	ID             string         `json:"id"`
	CaseNumber     string         `json:"case_number"`
	Title          string         `json:"title"`
	Service        string         `json:"service"`
	Severity       string         `json:"severity"`
	Status         string         `json:"status"`
	Summary        string         `json:"summary"`
	Commander      string         `json:"commander"`
	DeclaredBy     string         `json:"declared_by"`
	Confidential   bool           `json:"confidential"`
	Codename       string         `json:"codename"`
	Drill          bool           `json:"drill"`
	DeclaredAt     time.Time      `json:"declared_at"`
	UpdatedAt      time.Time      `json:"updated_at"`
	ClosedAt       *time.Time     `json:"closed_at"`
	Resolution     string         `json:"resolution"`
	LessonsLearned string         `json:"lessons_learned"`
	Notes          int            `json:"notes"`
	Version        uint64         `json:"version"`
	Events         int            `json:"events"`
	Links          map[string]any `json:"links"`
}

type Timeline struct {
	IncidentID string  `json:"incident_id"`
	CaseNumber string  `json:"case_number"`
	Version    uint64  `json:"version"`
	Events     []Entry `json:"events"`
}

type Entry struct {
	Seq       uint64          `json:"seq"`
	ID        string          `json:"id"`
	Type      string          `json:"type"`
	Time      time.Time       `json:"time"`
	Actor     string          `json:"actor"`
	ActorName string          `json:"actorname"`
	Via       string          `json:"via"`
	Data      json.RawMessage `json:"data"`
}

func (c *client) declare(body map[string]any, hdr ...string) Incident {
	c.t.Helper()
	var inc Incident
	c.post("/api/v1/incidents", body, hdr...).must(c.t, http.StatusCreated, &inc)
	return inc
}

func declareBody(title string) map[string]any {
	return map[string]any{"title": title, "service": "checkout", "severity": "SEV2"}
}

// eventually retries f until it returns nil or 10 seconds pass: the
// timeline store follows the stream asynchronously.
func eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// timeline waits until the incident's timeline reaches version and returns it.
func (c *client) timeline(ref string, version uint64) Timeline {
	c.t.Helper()
	var tl Timeline
	eventually(c.t, "timeline of "+ref, func() error {
		r := c.get("/api/v1/incidents/" + ref + "/timeline")
		if r.Status != http.StatusOK {
			return errors.New(string(r.Body))
		}
		tl = Timeline{}
		if err := json.Unmarshal(r.Body, &tl); err != nil {
			return err
		}
		if n := len(tl.Events); n == 0 || tl.Events[n-1].Seq < version {
			return errors.New("timeline not caught up")
		}
		return nil
	})
	return tl
}

// quiesce waits until the timeline projector has acknowledged every event,
// so that no delivery is in flight when the hub stops. (Watermill's NATS
// subscriber closes its output channel without waiting for a message
// handler that is still selecting on it; the race detector reports that.)
func quiesce(t *testing.T, h *hub.Hub) {
	t.Helper()
	eventually(t, "timeline projector idle", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		cons, err := h.Bus().JS.PushConsumer(ctx, events.IncidentStream, timeline.Name)
		if err != nil {
			return err
		}
		if info := cons.CachedInfo(); info.NumPending > 0 || info.NumAckPending > 0 {
			return fmt.Errorf("%d pending, %d awaiting ack", info.NumPending, info.NumAckPending)
		}
		return nil
	})
}
