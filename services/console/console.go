// Package console is the web console: server-rendered pages for the
// incidents list, an incident with its live timeline and forms for every
// command, the declare form, the dashboard (open incidents, triage queue,
// follow-ups, flagged signals), insights and the signals list. Pages work
// without JavaScript; a small
// script of our own (static/console.js) follows the timeline over
// Server-Sent Events and sends forms with fetch. Commands go through the
// same command handler as the API, recorded as the signed-in caller.
package console

import (
	"context"
	"embed"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"sync"

	"github.com/hikeshi/hikeshi/services/history"
	"github.com/hikeshi/hikeshi/services/incident"
	"github.com/hikeshi/hikeshi/services/module"
	"github.com/hikeshi/hikeshi/services/readmodel"
	"github.com/nats-io/nats.go/jetstream"
)

//go:embed templates/*.html static/*
var files embed.FS

// Action is what a caller wants to do with an incident.
type Action int

const (
	Read    Action = iota // see an incident and its timeline
	Act                   // run a command on an incident
	Declare               // declare a new incident
)

// Caller is who is calling, as the hub's access rules know them.
type Caller interface {
	// Actor is recorded as the actor of the events the caller's commands
	// append.
	Actor() string
	// Name is shown on the pages.
	Name() string
	// Can reports whether the caller may take action on st (nil for an
	// action on no particular incident: Declare, and reading lists).
	Can(a Action, st *incident.State) bool
}

// Deps is what the console needs.
type Deps struct {
	// Commands is the hub's command handler, the API's own.
	Commands module.Commands
	Timeline readmodel.Store
	// JS reaches the triage queue (TRIAGE); nil: the dashboard shows none.
	JS jetstream.JetStream
	// History folds an incident as it stood at a past event: the incident
	// page's time slider. Nil: no slider.
	History *history.Cache
	// Signals is the signals module's GET /api/v1/signals, when it runs in
	// this process; the Signals page lists through it.
	Signals http.Handler
	// Followups is the GitHub module's GET /api/v1/followups, when it runs
	// in this process; the dashboard lists the overdue follow-ups through it.
	Followups http.Handler
	// Caller tells who sends a request; false when nobody is signed in.
	Caller func(*http.Request) (Caller, bool)
	// SignIn, when set, is where a request without a caller is sent, with
	// ?return= the page it asked for (the parameter the sign-in routes
	// send the person back to).
	SignIn string
	// SignOut, when set, is where the header's sign-out form posts (with
	// the session's CSRF token) for a caller signed in with a session.
	SignOut string
	// SessionCSRF, when set, returns the CSRF token of the caller's
	// sign-in session (false: no session). Forms then carry that token and
	// every POST is checked against it, so the session's own check passes
	// too; without a session, the console's double-submit cookie serves.
	SessionCSRF func(*http.Request) (string, bool)
	// Secure marks the console's cookies Secure (the hub is reached over
	// HTTPS).
	Secure bool
	Logger *slog.Logger
}

// maxForm bounds a form's body, as the API bounds its JSON.
const maxForm = 1 << 20

// Console serves the pages.
type Console struct {
	d     Deps
	mux   *http.ServeMux
	pages map[string]*template.Template
	// stopping is closed when the hub stops: live timelines end, so that
	// the server's shutdown does not wait for browsers to leave.
	stopping chan struct{}
	stop     sync.Once
	livesMu  sync.Mutex
	lives    map[*liveTimeline]struct{}
}

// New builds the console's routes.
func New(d Deps) *Console {
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	c := &Console{d: d, mux: http.NewServeMux(), pages: parsePages(), stopping: make(chan struct{}), lives: map[*liveTimeline]struct{}{}}
	static, _ := fs.Sub(files, "static")
	c.mux.Handle("GET /static/", http.StripPrefix("/static/", cacheable(http.FileServerFS(static))))
	c.page("GET /{$}", c.incidents)
	c.page("GET /incidents", c.incidents)
	c.page("GET /incidents/{id}", c.incident)
	c.page("POST /incidents/{id}/{command}", c.command)
	c.page("GET /incidents/{id}/live", c.live)
	c.page("GET /dashboard", c.dashboard)
	c.page("GET /signals", c.signals)
	c.page("GET /insights", c.insights)
	c.page("GET /insights.csv", c.insightsCSV)
	c.page("POST /triage/{key}/dismiss", c.dismiss)
	c.page("GET /declare", c.declareForm)
	c.mux.HandleFunc("GET "+SignedOut, c.signedOut)
	c.page("POST /declare", c.declare)
	c.page("/", func(w http.ResponseWriter, r *http.Request, who Caller) {
		c.fail(w, r, who, http.StatusNotFound, "No such page: "+r.URL.Path)
	})
	return c
}

// Run serves until ctx ends, then ends the live timelines (the browsers
// reconnect to the next process). The hub runs it beside the HTTP server.
func (c *Console) Run(ctx context.Context) error {
	<-ctx.Done()
	c.stop.Do(func() { close(c.stopping) })
	c.livesMu.Lock()
	defer c.livesMu.Unlock()
	for l := range c.lives {
		l.worker.Wake()
	}
	return nil
}

// ServeHTTP answers every page with headers that keep a page from running
// any script but the console's own, being framed or sniffed.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
		"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Frame-Options", "DENY")
	c.mux.ServeHTTP(w, r)
}

// page registers a handler that needs a caller, and, for a POST, a valid
// CSRF token.
func (c *Console) page(pattern string, h func(http.ResponseWriter, *http.Request, Caller)) {
	c.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		who, ok := c.d.Caller(r)
		if !ok {
			c.signIn(w, r)
			return
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, maxForm)
		}
		if r.Method == http.MethodPost && !c.csrfValid(r) {
			c.fail(w, r, who, http.StatusForbidden, "This form expired or was sent from another site, so nothing was done. Reload the page and send it again.")
			return
		}
		h(w, r, who)
	})
}

// signIn answers a request without a caller. A page is sent to sign in;
// the live timeline and the script's requests are answered 401 instead:
// they cannot follow the provider's pages, and each retry would restart a
// sign-in the person may be going through in the same browser.
func (c *Console) signIn(w http.ResponseWriter, r *http.Request) {
	const signedOut = "You are signed out: reload the page to sign in again."
	switch {
	case strings.Contains(r.Header.Get("Accept"), "text/event-stream"):
		http.Error(w, signedOut, http.StatusUnauthorized)
		return
	case wantsJSON(r):
		c.fail(w, r, nil, http.StatusUnauthorized, signedOut)
		return
	case c.d.SignIn != "" && r.Method == http.MethodGet:
		http.Redirect(w, r, c.d.SignIn+"?return="+template.URLQueryEscaper(r.URL.RequestURI()), http.StatusSeeOther)
		return
	}
	c.render(w, r, nil, http.StatusUnauthorized, "error", errorPage{Message: "Sign in to use the console. " +
		"A hub with an API token and no sign-in configured serves the console on loopback only, without a token."})
}

type errorPage struct{ Message string }

// SignedOut is the page the sign-out form returns to: it needs no caller,
// so that the browser is not sent straight back through sign-in (where
// the provider, still signed in, would sign the person in again).
const SignedOut = "/signed-out"

type signedOutPage struct{ SignIn string }

func (signedOutPage) title() string { return "Signed out" }

func (c *Console) signedOut(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, nil, http.StatusOK, "signedout", signedOutPage{SignIn: c.d.SignIn})
}

// fail answers with an error page, or a JSON error to the console's script.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, who Caller, status int, msg string) {
	if wantsJSON(r) {
		writeJSON(w, status, map[string]any{"error": map[string]string{"message": msg}})
		return
	}
	c.render(w, r, who, status, "error", errorPage{Message: msg})
}

// wantsJSON: the request comes from the console's script.
func wantsJSON(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "application/json")
}

func cacheable(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=300")
		h.ServeHTTP(w, r)
	})
}
