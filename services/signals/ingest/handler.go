// Package ingest takes in what producers that are not people report: it
// verifies each caller (bearer token, HMAC, shared secret, SNS signature,
// OIDC token), parses the sender's payload into signals and stores each
// once on the SIGNALS stream before answering 202.
package ingest

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/config"
	"github.com/hikeshi/hikeshi/services/httpjson"
)

// Config is the part of the signals: section that configures the
// endpoints and how each verifies its caller.
type Config struct {
	// MaxBodyBytes bounds one delivery (default 1 MiB); larger is 413.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// TokenEnv names the variable holding the bearer token of the
	// Alertmanager, generic and escalation endpoints.
	TokenEnv string  `yaml:"token_env"`
	Grafana  Grafana `yaml:"grafana"`
	AWS      AWS     `yaml:"aws"`
	GCPSCC   GCP     `yaml:"gcp_scc"`
}

// Grafana: bearer token, HMAC, or both (either verifies).
type Grafana struct {
	TokenEnv      string `yaml:"token_env"`
	HMACSecretEnv string `yaml:"hmac_secret_env"`
}

// AWS: EventBridge API destinations send a shared secret in a
// header; SNS subscriptions are verified by signature and topic.
type AWS struct {
	Header    string   `yaml:"header"` // default X-Hikeshi-Secret
	SecretEnv string   `yaml:"secret_env"`
	SNSTopics []string `yaml:"sns_topics"`
}

// GCP: the Pub/Sub push subscription's OIDC token.
type GCP struct {
	Audience       string   `yaml:"audience"`
	ServiceAccount string   `yaml:"service_account"`
	JWKSURL        string   `yaml:"jwks_url"` // default Google's
	Issuers        []string `yaml:"issuers"`  // default accounts.google.com
}

// Secrets are the endpoints' credentials, read from the environment.
type Secrets struct {
	Token, GrafanaToken, GrafanaHMAC, AWSSecret string
}

// Load sets the defaults and reads the secrets of section's endpoints.
func (c *Config) Load(section string) (Secrets, error) {
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 1 << 20
	}
	if c.AWS.Header == "" {
		c.AWS.Header = "X-Hikeshi-Secret"
	}
	if c.GCPSCC.JWKSURL == "" {
		c.GCPSCC.JWKSURL = "https://www.googleapis.com/oauth2/v3/certs"
	}
	if len(c.GCPSCC.Issuers) == 0 {
		c.GCPSCC.Issuers = []string{"https://accounts.google.com", "accounts.google.com"}
	}
	var s Secrets
	var err error
	get := func(field, env string) string {
		if env == "" || err != nil {
			return ""
		}
		var v string
		v, err = config.Secret(section, field, env)
		return v
	}
	s.Token = get("token_env", c.TokenEnv)
	s.GrafanaToken = get("grafana.token_env", c.Grafana.TokenEnv)
	s.GrafanaHMAC = get("grafana.hmac_secret_env", c.Grafana.HMACSecretEnv)
	s.AWSSecret = get("aws.secret_env", c.AWS.SecretEnv)
	return s, err
}

// Route paths.
const (
	PathAlertmanager = "/api/v1/signals/alertmanager"
	PathGrafana      = "/api/v1/signals/grafana"
	PathAWS          = "/api/v1/signals/aws"
	PathGCPSCC       = "/api/v1/signals/gcp-scc"
	PathGeneric      = "/api/v1/signals"
	PathEscalations  = "/api/v1/escalations"
)

// Deps are what the endpoints reach out with; tests replace them.
type Deps struct {
	Client *http.Client // JWKS and SNS certificates; default 10 s timeout
	Now    func() time.Time
	Logger *slog.Logger
	// Certs fetches SNS signing certificates; default over Client.
	Certs CertFetcher
	// Confirm visits an SNS SubscribeURL; default over Client.
	Confirm func(ctx context.Context, u string) error
}

// Handler serves the signal endpoints: it verifies each caller, parses
// what it sent and stores the signals before answering 202.
type Handler struct {
	cfg  Config
	sec  Secrets
	pub  *natsjs.SignalPublisher
	sns  *snsVerifier
	oidc *oidcVerifier
	now  func() time.Time
	log  *slog.Logger

	received, stored atomic.Int64
}

// New is the endpoints of cfg, storing through pub.
func New(cfg Config, sec Secrets, pub *natsjs.SignalPublisher, d Deps) *Handler {
	if d.Client == nil {
		d.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	if d.Certs == nil {
		d.Certs = (&httpCerts{client: d.Client, log: d.Logger, cache: map[string]*x509.Certificate{}}).fetch
	}
	if d.Confirm == nil {
		d.Confirm = visit(d.Client)
	}
	return &Handler{cfg: cfg, sec: sec, pub: pub, now: d.Now, log: d.Logger,
		sns:  &snsVerifier{topics: cfg.AWS.SNSTopics, fetch: d.Certs, confirm: d.Confirm, maxAge: time.Hour, now: d.Now},
		oidc: newOIDCVerifier(cfg.GCPSCC, d.Client, d.Now, d.Logger),
	}
}

// Counts are the signals in accepted deliveries, and of those the ones
// stored for the first time.
func (h *Handler) Counts() (received, stored int64) { return h.received.Load(), h.stored.Load() }

// Routes are the endpoints whose credentials are configured, by
// "METHOD path".
func (h *Handler) Routes() map[string]http.Handler {
	routes := map[string]http.Handler{}
	// An endpoint whose credentials are not configured is not mounted:
	// an unauthenticated ingest must never exist by omission.
	if h.sec.Token != "" {
		routes["POST "+PathAlertmanager] = h.simple(func(r *http.Request, _ []byte) error { return bearer(r, h.sec.Token) },
			withHint(PathAlertmanager, func(b []byte) ([]events.Signal, error) { return parseAlertmanager(b, "alertmanager") }))
		routes["POST "+PathGeneric] = h.simple(func(r *http.Request, _ []byte) error { return bearer(r, h.sec.Token) },
			withHint(PathGeneric, parseGeneric))
		routes["POST "+PathEscalations] = h.simple(func(r *http.Request, _ []byte) error { return bearer(r, h.sec.Token) },
			withHint(PathEscalations, parseEscalation))
	}
	if h.sec.GrafanaToken != "" || h.sec.GrafanaHMAC != "" {
		routes["POST "+PathGrafana] = h.simple(h.verifyGrafana,
			withHint(PathGrafana, func(b []byte) ([]events.Signal, error) { return parseAlertmanager(b, "grafana") }))
	}
	if h.sec.AWSSecret != "" || len(h.cfg.AWS.SNSTopics) > 0 {
		routes["POST "+PathAWS] = http.HandlerFunc(h.aws)
	}
	if h.cfg.GCPSCC.Audience != "" && h.cfg.GCPSCC.ServiceAccount != "" {
		routes["POST "+PathGCPSCC] = h.simple(func(r *http.Request, _ []byte) error { return h.oidc.verify(r.Context(), r) },
			withHint(PathGCPSCC, parseSCC))
	}
	return routes
}

// simple is an endpoint that verifies the caller, then parses and stores.
func (h *Handler) simple(verify func(*http.Request, []byte) error, parse func([]byte) ([]events.Signal, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := readBody(w, r, h.cfg.MaxBodyBytes)
		if !ok {
			return
		}
		if err := verify(r, body); err != nil {
			fail(w, err)
			return
		}
		if !httpjson.JSONContent(r) {
			unsupportedMedia(w, r)
			return
		}
		sigs, err := parse(body)
		if err != nil {
			fail(w, err)
			return
		}
		h.store(w, r, sigs)
	})
}

func (h *Handler) verifyGrafana(r *http.Request, body []byte) error {
	if h.sec.GrafanaHMAC != "" && r.Header.Get(grafanaSignatureHeader) != "" {
		return grafanaHMAC(r, body, h.sec.GrafanaHMAC, 5*time.Minute, h.now())
	}
	if h.sec.GrafanaToken != "" {
		return bearer(r, h.sec.GrafanaToken)
	}
	return denied("missing %s header", grafanaSignatureHeader)
}

// aws serves EventBridge API destinations (header secret) and SNS HTTP
// subscriptions (signature), told apart by SNS's message type header.
func (h *Handler) aws(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r, h.cfg.MaxBodyBytes)
	if !ok {
		return
	}
	typ := r.Header.Get("x-amz-sns-message-type")
	if typ == "" {
		if err := headerSecret(r, h.cfg.AWS.Header, h.sec.AWSSecret); err != nil {
			fail(w, err)
			return
		}
		if !httpjson.JSONContent(r) {
			unsupportedMedia(w, r)
			return
		}
		sigs, err := withHint(PathAWS, parseEventBridge)(body)
		if err != nil {
			fail(w, err)
			return
		}
		h.store(w, r, sigs)
		return
	}
	if len(h.cfg.AWS.SNSTopics) == 0 {
		fail(w, denied("no SNS topic is allowed"))
		return
	}
	var msg snsMessage
	if err := decode(body, &msg, false); err != nil {
		fail(w, denied("not an SNS message"))
		return
	}
	if msg.Type != typ {
		fail(w, denied("x-amz-sns-message-type %q does not match Type %q", typ, msg.Type))
		return
	}
	if err := h.sns.verify(r.Context(), &msg); err != nil {
		fail(w, err)
		return
	}
	if !httpjson.JSONContent(r) && !snsContent(r) {
		unsupportedMedia(w, r)
		return
	}
	switch msg.Type {
	case "SubscriptionConfirmation":
		if err := h.sns.confirm(r.Context(), msg.SubscribeURL); err != nil {
			h.log.Warn("SNS subscription confirmation failed", "topic", msg.TopicArn, "err", err)
			reply(w, http.StatusBadGateway, "confirm_failed", "could not confirm the subscription; SNS sends it again, the cause is in the hub's log")
			return
		}
		h.log.Info("SNS subscription confirmed", "topic", msg.TopicArn)
		w.WriteHeader(http.StatusOK)
	case "UnsubscribeConfirmation":
		h.log.Warn("SNS subscription ended", "topic", msg.TopicArn)
		w.WriteHeader(http.StatusOK)
	case "Notification":
		sigs, err := parseEventBridge([]byte(msg.Message))
		if err != nil {
			fail(w, fmt.Errorf("Message: %w", err))
			return
		}
		h.store(w, r, sigs)
	default:
		fail(w, bad("Type %q is not handled", msg.Type))
	}
}

// unsupportedMedia answers 415 as the API does.
func unsupportedMedia(w http.ResponseWriter, r *http.Request) {
	reply(w, http.StatusUnsupportedMediaType, "unsupported_media_type",
		fmt.Sprintf("Content-Type must be application/json, not %q", r.Header.Get("Content-Type")))
}

// snsContent: SNS posts its JSON messages as text/plain.
func snsContent(r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == "text/plain"
}

// store stores sigs and answers 202, or fails.
func (h *Handler) store(w http.ResponseWriter, r *http.Request, sigs []events.Signal) {
	for i := range sigs {
		if err := validate(&sigs[i]); err != nil {
			fail(w, bad("signals[%d]: %v", i, err))
			return
		}
	}
	n, err := h.pub.Put(r.Context(), sigs)
	if err != nil {
		fail(w, err)
		return
	}
	h.received.Add(int64(len(sigs)))
	h.stored.Add(int64(n))
	w.Header()["Content-Type"] = jsonType
	w.WriteHeader(http.StatusAccepted)
	// The accepted shape, written without reflection: it is every answer.
	b := make([]byte, 0, 48)
	b = append(b, `{"accepted":`...)
	b = strconv.AppendInt(b, int64(len(sigs)), 10)
	b = append(b, `,"new":`...)
	b = strconv.AppendInt(b, int64(n), 10)
	_, _ = w.Write(append(b, "}\n"...))
}
