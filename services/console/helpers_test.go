package console_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/services/hub"
	"github.com/hikeshi/hikeshi/services/incident"
)

// startHub runs a whole hub (embedded NATS, timeline projector, API and
// console) in a temporary data dir on a loopback port; it returns its base
// URL.
func startHub(t testing.TB, cfg hub.Config) string {
	t.Helper()
	base, _ := startHubBus(t, cfg)
	return base
}

// startHubBus is startHub, with the hub (and its bus) too. It listens on
// cfg.Listen when set, else on a loopback port of its own.
func startHubBus(t testing.TB, cfg hub.Config) (string, *hub.Hub) {
	t.Helper()
	cfg.DataDir = t.TempDir()
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	h, err := hub.Start(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("hub did not stop within 30s")
		}
	})
	return "http://" + h.Addr(), h
}

// browser is a plain HTTP client with cookies, as a browser without
// JavaScript is.
type browser struct {
	t    *testing.T
	base string
	hc   *http.Client
}

func newBrowser(t *testing.T, base string) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, base: base, hc: &http.Client{Jar: jar, Timeout: 30 * time.Second}}
}

type page struct {
	Status int
	Header http.Header
	Body   string
	URL    string
}

func (b *browser) do(r *http.Request) page {
	b.t.Helper()
	res, err := b.hc.Do(r)
	if err != nil {
		b.t.Fatalf("%s %s: %v", r.Method, r.URL, err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return page{Status: res.StatusCode, Header: res.Header, Body: string(body), URL: res.Request.URL.Path}
}

func (b *browser) get(path string) page {
	b.t.Helper()
	r, _ := http.NewRequest(http.MethodGet, b.base+path, nil)
	return b.do(r)
}

// submit posts a form with the CSRF token of the page it came from.
func (b *browser) submit(from page, action string, form url.Values) page {
	b.t.Helper()
	form.Set("csrf", csrfOf(b.t, from))
	r, _ := http.NewRequest(http.MethodPost, b.base+action, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(r)
}

var csrfMeta = regexp.MustCompile(`<meta name="csrf-token" content="([^"]+)">`)

func csrfOf(t *testing.T, p page) string {
	t.Helper()
	m := csrfMeta.FindStringSubmatch(p.Body)
	if m == nil {
		t.Fatalf("no CSRF token on the page:\n%s", p.Body)
	}
	return m[1]
}

// api calls the JSON API as another client would.
func api(t *testing.T, base, method, path string, body any, hdr ...string) incident.State {
	t.Helper()
	raw, _ := json.Marshal(body)
	r, _ := http.NewRequest(method, base+path, strings.NewReader(string(raw)))
	r.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	if res.StatusCode >= 300 {
		t.Fatalf("%s %s: %d %s", method, path, res.StatusCode, out)
	}
	var st incident.State
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// eventually waits up to 10s for cond.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
