// Package httpapi is the JSON API under /api/v1, plus health, readiness and
// metrics endpoints.
package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/services/access"
	"github.com/hikeshi/hikeshi/services/command"
	"github.com/hikeshi/hikeshi/services/history"
	"github.com/hikeshi/hikeshi/services/httpjson"
	"github.com/hikeshi/hikeshi/services/incident"
	"github.com/hikeshi/hikeshi/services/readmodel"
	"github.com/hikeshi/hikeshi/services/telemetry"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// MaxBody is the largest request body accepted.
const MaxBody = 1 << 20

// Deps is what the API needs.
type Deps struct {
	Commands *command.Handler
	Timeline readmodel.Store
	// TimelineCheckpoint names the timeline store's checkpoint; when set,
	// reads of an incident come from the store whenever it holds every
	// event on the stream.
	TimelineCheckpoint string
	Events             *natsjs.Store
	Answers            *natsjs.Answers
	Metrics            *telemetry.Metrics
	// Token, when set, is required as a bearer token on /api/v1. Auth,
	// when set, replaces it (it knows Token too).
	Token string
	// Auth finds out who calls; nil: Token, or without one the local
	// operator (see access.Authenticator).
	Auth *access.Authenticator
	// Tokens manages API tokens (/api/v1/tokens); nil: not offered.
	Tokens *access.Tokens
	// ShowCodenames lists a confidential incident to those who may not
	// read it, under its codename and nothing else; default: hidden.
	ShowCodenames bool
	// Ready checks the bus and the store.
	Ready func(context.Context) error
	// Timeouts of the HTTP server; unset ones take DefaultTimeouts.
	Timeouts Timeouts
	// Standby lists the parts waiting for a lease held by another process
	// (part → what it waits for); /readyz shows them and stays 200.
	Standby func() map[string]string
}

// Server serves the API.
type Server struct {
	d        Deps
	mux      *http.ServeMux
	timeouts Timeouts
	live     *broadcaster // GET /api/v1/events, see sse.go
	history  *history.Cache
}

// New builds the routes.
func New(d Deps) *Server {
	if d.Auth == nil {
		d.Auth = access.ForToken(d.Token)
	}
	s := &Server{d: d, mux: http.NewServeMux(), timeouts: d.Timeouts.withDefaults(), live: newBroadcaster(d.Events),
		history: history.New(d.Events, 0, 0)}
	s.live.lookup = s.incidentAccess
	s.route("POST /api/v1/incidents", access.Responder, s.declare)
	s.route("GET /api/v1/incidents", access.Viewer, s.list)
	s.route("GET /api/v1/incidents/{id}", access.Viewer, s.get)
	s.route("POST /api/v1/incidents/{id}/severity", access.Responder, s.severity)
	s.route("POST /api/v1/incidents/{id}/status", access.Responder, s.status)
	s.route("POST /api/v1/incidents/{id}/commander", access.Responder, s.commander)
	s.route("POST /api/v1/incidents/{id}/notes", access.Responder, s.note)
	s.route("POST /api/v1/incidents/{id}/close", access.Responder, s.close)
	s.route("GET /api/v1/incidents/{id}/timeline", access.Viewer, s.timeline)
	s.factRoutes()
	s.route("GET /api/v1/events", access.Viewer, s.tail)
	s.route("GET /api/v1/whoami", access.None, s.whoami)
	if d.Tokens != nil {
		s.route("POST /api/v1/tokens", access.Admin, s.createToken)
		s.route("GET /api/v1/tokens", access.Admin, s.listTokens)
		s.route("DELETE /api/v1/tokens/{id}", access.Admin, s.revokeToken)
		s.route("GET /api/v1/access/events", access.Admin, s.accessEvents)
	}
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	s.mux.HandleFunc("GET /readyz", s.ready)
	if d.Metrics != nil {
		d.Metrics.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "hikeshi_live_streams", Help: "Open streams of GET /api/v1/events.",
		}, func() float64 { return float64(s.live.subscribers()) }))
		s.mux.Handle("GET /metrics", promhttp.HandlerFor(d.Metrics.Registry, promhttp.HandlerOpts{}))
	}
	s.mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		if _, err := s.d.Auth.Authenticate(r); err != nil {
			writeError(w, r, err)
			return
		}
		if allow := s.allowed(r); len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			writeError(w, r, newErr(http.StatusMethodNotAllowed, "method_not_allowed", r.Method+" is not allowed on "+r.URL.Path+"; allowed: "+strings.Join(allow, ", ")))
			return
		}
		writeError(w, r, newErr(http.StatusNotFound, "no_route", "no such endpoint: "+r.Method+" "+r.URL.Path))
	})
	return s
}

// ServeHTTP serves every route. No answer is to be sniffed into another
// type than the one it declares (a JSON error echoing input as HTML).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	s.mux.ServeHTTP(w, r)
}

// allowed lists the methods some route serves r's path with. The catch-all
// /api/ route matches every method, so the mux never answers 405 itself.
func (s *Server) allowed(r *http.Request) []string {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := &http.Request{Method: m, URL: r.URL, Host: r.Host, Header: http.Header{}}
		if _, pattern := s.mux.Handler(probe); pattern != "/api/" && pattern != "" {
			allow = append(allow, m)
		}
	}
	return allow
}

// Mount adds a route that authenticates its caller itself (a webhook that
// checks a signature or shared secret), outside the bearer-token check. Its
// request count and latency are still measured.
func (s *Server) Mount(pattern string, h http.Handler) {
	s.measured(pattern, func(rec *statusRecorder, r *http.Request) { h.ServeHTTP(rec, r) })
}

// measured registers h under pattern, counting requests and latency.
func (s *Server) measured(pattern string, h func(*statusRecorder, *http.Request)) {
	var took prometheus.Observer // looked up once, not per request
	if s.d.Metrics != nil {
		took = s.d.Metrics.HTTPDurations.WithLabelValues(pattern)
	}
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		defer func() {
			if s.d.Metrics != nil {
				s.d.Metrics.HTTPRequests.WithLabelValues(pattern, strconv.Itoa(rec.status)).Inc()
				took.Observe(time.Since(start).Seconds())
			}
		}()
		h(rec, r)
	})
}

type handler func(w http.ResponseWriter, r *http.Request) error

// route wraps a handler with authentication, the least role the route
// needs, metrics, body limits and idempotency. The caller's identity is in
// the request's context (access.From). Need-to-know of one incident is the
// handler's to check (see visible).
func (s *Server) route(pattern string, need access.Role, h handler) {
	s.measured(pattern, func(rec *statusRecorder, r *http.Request) {
		r, ok := authorise(s.d.Auth, rec, r, need)
		if !ok {
			return
		}
		if r.Method == http.MethodPost {
			s.post(rec, r, h)
			return
		}
		if err := h(rec, r); err != nil {
			writeError(rec, r, err)
		}
	})
}

type ctxKey int

const bodyKey ctxKey = iota

// post reads and checks the body once, then answers through the
// idempotency layer when the client sent an Idempotency-Key.
func (s *Server) post(w *statusRecorder, r *http.Request, h handler) {
	if !httpjson.JSONContent(r) {
		writeError(w, r, newErr(http.StatusUnsupportedMediaType, "unsupported_media_type", "Content-Type must be application/json"))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, r, newErr(http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("request body exceeds %d bytes", MaxBody)))
			return
		}
		writeError(w, r, newErr(http.StatusBadRequest, "bad_body", "cannot read request body"))
		return
	}
	r = r.WithContext(context.WithValue(r.Context(), bodyKey, body))
	key := r.Header.Get("Idempotency-Key")
	if key == "" || s.d.Answers == nil {
		if err := h(w, r); err != nil {
			writeError(w, r, err)
		}
		return
	}
	if len(key) > 255 {
		writeError(w, r, newErr(http.StatusBadRequest, "invalid_header", "Idempotency-Key is longer than 255 characters"))
		return
	}
	s.idempotent(w, r, key, body, h)
}

func (s *Server) idempotent(w *statusRecorder, r *http.Request, key string, body []byte, h handler) {
	// Keys are the caller's own: two callers (two tokens, or two people
	// signed in with cookies) never see each other's answers.
	caller, _ := access.From(r.Context())
	kvKey := natsjs.Key(caller.ID, r.Method, r.URL.Path, key)
	reqHash := fmt.Sprintf("%x", sha256.Sum256(body))
	replay := func(a natsjs.Answer) {
		if a.RequestHash != reqHash {
			writeError(w, r, newErr(http.StatusUnprocessableEntity, "idempotency_key_reused", "this Idempotency-Key was already used with a different request body"))
			return
		}
		// The stored body went through json.Marshal, which dropped the
		// newline writeJSON ends every body with: put it back so that a
		// replay is byte for byte the first answer.
		body := a.Body
		if !bytes.HasSuffix(body, []byte("\n")) {
			body = append(body, '\n')
		}
		w.Header().Set("Idempotent-Replayed", "true")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(a.Status)
		_, _ = w.Write(body)
	}
	if a, ok, err := s.d.Answers.Get(r.Context(), kvKey); err != nil {
		writeError(w, r, err)
		return
	} else if ok {
		replay(a)
		return
	}
	buf := &bufferedWriter{header: http.Header{}, status: http.StatusOK}
	r = r.WithContext(context.WithValue(r.Context(), idemKey, kvKey))
	if err := h(buf, r); err != nil {
		writeError(buf, r, err)
	}
	if buf.status >= 500 {
		buf.flush(w) // not remembered: the client should retry
		return
	}
	first, err := s.d.Answers.Remember(r.Context(), kvKey, natsjs.Answer{RequestHash: reqHash, Status: buf.status, Body: buf.body.Bytes()})
	if err != nil {
		// The command is stored (its id derives from the key), only the
		// answer is not: a retry recomputes the same result.
		buf.flush(w)
		return
	}
	if !bytes.Equal(first.Body, buf.body.Bytes()) || first.Status != buf.status {
		replay(first)
		return
	}
	buf.flush(w)
}

const idemKey ctxKey = bodyKey + 1

// decode strictly decodes the request body into v, naming the bad field.
func decode(r *http.Request, v any) error {
	body, _ := r.Context().Value(bodyKey).([]byte)
	if len(bytes.TrimSpace(body)) == 0 {
		return newErr(http.StatusBadRequest, "bad_json", "request body is empty; send a JSON object")
	}
	if !utf8.Valid(body) {
		// encoding/json would silently replace the bad bytes with U+FFFD.
		return newErr(http.StatusBadRequest, "bad_json", "request body is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		var se *json.SyntaxError
		switch {
		case errors.As(err, &te) && te.Field == "":
			return newErr(http.StatusBadRequest, "bad_json", "request body must be a JSON object")
		case errors.As(err, &te):
			e := newErr(http.StatusBadRequest, "invalid_field", fmt.Sprintf("%s: must be a %s", te.Field, te.Type))
			e.Field = te.Field
			return e
		case errors.As(err, &se):
			return newErr(http.StatusBadRequest, "bad_json", fmt.Sprintf("malformed JSON at byte %d: %v", se.Offset, se))
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			e := newErr(http.StatusBadRequest, "unknown_field", fmt.Sprintf("%s: unknown field", f))
			e.Field = f
			return e
		}
		return newErr(http.StatusBadRequest, "bad_json", "malformed JSON: "+err.Error())
	}
	if dec.More() {
		return newErr(http.StatusBadRequest, "bad_json", "trailing data after the JSON object")
	}
	return nil
}

// meta collects who asks and how: actor, idempotency and If-Match.
func meta(r *http.Request) (command.Meta, error) {
	m := command.Meta{CorrelationID: r.Header.Get("X-Correlation-Id")}
	m.Actor, m.ActorName, m.Via = actor(r)
	m.Key, _ = r.Context().Value(idemKey).(string)
	if im := strings.Trim(strings.TrimPrefix(strings.TrimSpace(r.Header.Get("If-Match")), "W/"), `"`); im != "" {
		v, err := strconv.ParseUint(im, 10, 64)
		if err != nil || v == 0 {
			return m, newErr(http.StatusBadRequest, "invalid_header", "If-Match must be the incident version, e.g. \"12\"")
		}
		m.ExpectVersion = v
	}
	return m, nil
}

// actor is who the request speaks for: the authenticated identity, or,
// for an identity allowed to act for others (act-as), the person named by
// X-Hikeshi-Actor, recorded with the identity it came through (via).
func actor(r *http.Request) (id, name, via string) {
	caller, ok := access.From(r.Context())
	if !ok {
		return "api", "", "" // not reached: every route authenticates
	}
	if a := strings.TrimSpace(r.Header.Get("X-Hikeshi-Actor")); a != "" && len(a) <= incident.MaxName && caller.Has(access.ScopeActAs) {
		return a, a, caller.ID
	}
	return caller.ID, caller.Name, ""
}

// incidentID accepts an incident id or a case number such as INC-42.
func (s *Server) incidentID(r *http.Request) (string, error) {
	return s.d.Commands.Resolve(r.Context(), r.PathValue("id"))
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) { r.status = code; r.ResponseWriter.WriteHeader(code) }

// Unwrap lets http.ResponseController reach the connection's deadlines.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// bufferedWriter holds a response until its idempotency record is saved.
type bufferedWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedWriter) Header() http.Header         { return b.header }
func (b *bufferedWriter) Write(p []byte) (int, error) { return b.body.Write(p) }
func (b *bufferedWriter) WriteHeader(code int)        { b.status = code }

func (b *bufferedWriter) flush(w http.ResponseWriter) {
	for k, v := range b.header {
		w.Header()[k] = v
	}
	w.WriteHeader(b.status)
	_, _ = w.Write(b.body.Bytes())
}
