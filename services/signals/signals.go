// Package signals takes in what producers that are not people report —
// Alertmanager and Grafana alerts, AWS and GCP security findings, generic
// JSON, customer-support escalations — verifies each caller, stores every
// signal once on the SIGNALS stream before answering 202, and evaluates
// rules over the stored signals to drop, annotate, rate-limit and route
// them to incidents (one per group key while open) or alert tickets.
package signals

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/config"
	"github.com/hikeshi/hikeshi/services/httpapi"
	"github.com/hikeshi/hikeshi/services/hub"
	"github.com/hikeshi/hikeshi/services/signals/rules"
	"github.com/hikeshi/hikeshi/services/signals/tickets"
)

// Name is the module and its hikeshi.yaml section.
const Name = "signals"

// Durable is the signal projector's consumer name; never change it.
const Durable = "signals"

// Config is the signals: section.
type Config struct {
	// MaxBodyBytes bounds one delivery (default 1 MiB); larger is 413.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// TokenEnv names the variable holding the bearer token of the
	// Alertmanager, generic and escalation endpoints.
	TokenEnv string        `yaml:"token_env"`
	Grafana  GrafanaConfig `yaml:"grafana"`
	AWS      AWSConfig     `yaml:"aws"`
	GCPSCC   GCPConfig     `yaml:"gcp_scc"`
	// CountEvery appends an occurrence count to an incident every N
	// signals of its group (default 100), besides the first and status
	// changes.
	CountEvery int          `yaml:"count_every"`
	Rules      []rules.Rule `yaml:"rules"`
	// Default applies when no rule routes or drops a signal, and when a
	// rule fails to evaluate.
	Default rules.Rule `yaml:"default"`
	// Alert tickets go to GitHub issues or to JIRA, not both.
	GitHub *tickets.GitHub `yaml:"github"`
	JIRA   *tickets.Jira   `yaml:"jira"`
	// Decisions bounds the log of every signal's decision.
	Decisions DecisionsConfig `yaml:"decisions"`
}

// GrafanaConfig: bearer token, HMAC, or both (either verifies).
type GrafanaConfig struct {
	TokenEnv      string `yaml:"token_env"`
	HMACSecretEnv string `yaml:"hmac_secret_env"`
}

// AWSConfig: EventBridge API destinations send a shared secret in a
// header; SNS subscriptions are verified by signature and topic.
type AWSConfig struct {
	Header    string   `yaml:"header"` // default X-Hikeshi-Secret
	SecretEnv string   `yaml:"secret_env"`
	SNSTopics []string `yaml:"sns_topics"`
}

// GCPConfig: the Pub/Sub push subscription's OIDC token.
type GCPConfig struct {
	Audience       string   `yaml:"audience"`
	ServiceAccount string   `yaml:"service_account"`
	JWKSURL        string   `yaml:"jwks_url"` // default Google's
	Issuers        []string `yaml:"issuers"`  // default accounts.google.com
}

// Load reads the section and its secrets.
func Load(f *config.File) (Config, secrets, error) {
	var c Config
	var s secrets
	if _, err := f.Section(Name, &c); err != nil {
		return c, s, err
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 1 << 20
	}
	if c.CountEvery <= 0 {
		c.CountEvery = 100
	}
	c.Decisions.defaults()
	if c.AWS.Header == "" {
		c.AWS.Header = "X-Hikeshi-Secret"
	}
	if c.GCPSCC.JWKSURL == "" {
		c.GCPSCC.JWKSURL = "https://www.googleapis.com/oauth2/v3/certs"
	}
	if len(c.GCPSCC.Issuers) == 0 {
		c.GCPSCC.Issuers = []string{"https://accounts.google.com", "accounts.google.com"}
	}
	var err error
	get := func(field, env string) string {
		if env == "" || err != nil {
			return ""
		}
		var v string
		v, err = config.Secret(Name, field, env)
		return v
	}
	s.token = get("token_env", c.TokenEnv)
	s.grafanaToken = get("grafana.token_env", c.Grafana.TokenEnv)
	s.grafanaHMAC = get("grafana.hmac_secret_env", c.Grafana.HMACSecretEnv)
	s.awsSecret = get("aws.secret_env", c.AWS.SecretEnv)
	if c.GitHub != nil {
		s.github = get("github.token_env", c.GitHub.TokenEnv)
	}
	if c.JIRA != nil {
		s.jira = get("jira.token_env", c.JIRA.TokenEnv)
	}
	return c, s, err
}

// compileRules compiles the rules and refuses a configuration whose
// routes cannot be carried out. The hub and `hikeshi rules test` both
// check through it, so they report the same errors.
func (c *Config) compileRules() (*rules.Set, error) {
	if c.GitHub != nil && c.JIRA != nil {
		return nil, fmt.Errorf("signals: alert tickets go to github or jira, not both")
	}
	rs, err := rules.Compile(c.Rules, c.Default)
	if err != nil {
		return nil, err
	}
	if where := rs.Uses(rules.RouteTicket); where != "" && c.GitHub == nil && c.JIRA == nil {
		return nil, fmt.Errorf("%s: route ticket needs signals.github or signals.jira to keep the tickets in; configure one, or route elsewhere", where)
	}
	return rs, nil
}

type secrets struct {
	token, grafanaToken, grafanaHMAC, awsSecret, github, jira string
}

// Module is the row in the hub's module table.
// Its projector keeps its state in the data dir.
var Module = hub.Module{Name: Name, Start: start, WritesDataDir: true}

func start(ctx context.Context, env *hub.Env) (*hub.Parts, error) {
	cfg, sec, err := Load(env.Config)
	if err != nil {
		return nil, err
	}
	m, err := newModule(cfg, sec, env, deps{})
	if err != nil {
		return nil, err
	}
	if env.Metrics != nil {
		if err := m.register(env.Metrics); err != nil {
			return nil, err
		}
	}
	return m.parts(), nil
}

// deps are what tests replace: remote lookups and the clock.
type deps struct {
	certs   CertFetcher
	confirm func(ctx context.Context, u string) error
	client  *http.Client // JWKS, certificates, GitHub, JIRA
	now     func() time.Time
}

type module struct {
	cfg   Config
	sec   secrets
	env   *hub.Env
	pub   *natsjs.SignalPublisher
	sns   *snsVerifier
	oidc  *oidcVerifier
	rules *rules.Set
	proj  *projector
	now   func() time.Time

	received, stored atomic.Int64
}

func newModule(cfg Config, sec secrets, env *hub.Env, d deps) (*module, error) {
	if d.client == nil {
		d.client = &http.Client{Timeout: 10 * time.Second}
	}
	if d.now == nil {
		d.now = time.Now
	}
	log := env.Logger
	if log == nil {
		log = slog.Default()
	}
	if d.certs == nil {
		d.certs = (&httpCerts{client: d.client, log: log, cache: map[string]*x509.Certificate{}}).fetch
	}
	if d.confirm == nil {
		d.confirm = visit(d.client)
	}
	rs, err := cfg.compileRules()
	if err != nil {
		return nil, err
	}
	m := &module{
		cfg: cfg, sec: sec, env: env, now: d.now, rules: rs,
		pub:  natsjs.NewSignalPublisher(env.Bus.JS),
		sns:  &snsVerifier{topics: cfg.AWS.SNSTopics, fetch: d.certs, confirm: d.confirm, maxAge: time.Hour, now: d.now},
		oidc: newOIDCVerifier(cfg.GCPSCC, d.client, d.now, log),
	}
	if m.proj, err = newProjector(m, d); err != nil {
		return nil, err
	}
	m.proj.st.retain = cfg.Decisions
	return m, nil
}

func (m *module) count(received, stored int) {
	m.received.Add(int64(received))
	m.stored.Add(int64(stored))
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

func (m *module) parts() *hub.Parts {
	return &hub.Parts{
		Routes:     m.routes(),
		Background: []func(context.Context) error{m.proj.run},
	}
}

func (m *module) routes() map[string]http.Handler {
	routes := map[string]http.Handler{"GET " + PathGeneric: http.HandlerFunc(m.listSignals)}
	// An endpoint whose credentials are not configured is not mounted:
	// an unauthenticated ingest must never exist by omission.
	if m.sec.token != "" {
		routes["POST "+PathAlertmanager] = m.simple(func(r *http.Request, _ []byte) error { return bearer(r, m.sec.token) },
			withHint(PathAlertmanager, func(b []byte) ([]events.Signal, error) { return parseAlertmanager(b, "alertmanager") }))
		routes["POST "+PathGeneric] = m.simple(func(r *http.Request, _ []byte) error { return bearer(r, m.sec.token) },
			withHint(PathGeneric, parseGeneric))
		routes["POST "+PathEscalations] = m.simple(func(r *http.Request, _ []byte) error { return bearer(r, m.sec.token) },
			withHint(PathEscalations, parseEscalation))
	}
	if m.sec.grafanaToken != "" || m.sec.grafanaHMAC != "" {
		routes["POST "+PathGrafana] = m.simple(m.verifyGrafana,
			withHint(PathGrafana, func(b []byte) ([]events.Signal, error) { return parseAlertmanager(b, "grafana") }))
	}
	if m.sec.awsSecret != "" || len(m.cfg.AWS.SNSTopics) > 0 {
		routes["POST "+PathAWS] = http.HandlerFunc(m.aws)
	}
	if m.cfg.GCPSCC.Audience != "" && m.cfg.GCPSCC.ServiceAccount != "" {
		routes["POST "+PathGCPSCC] = m.simple(func(r *http.Request, _ []byte) error { return m.oidc.verify(r.Context(), r) },
			withHint(PathGCPSCC, parseSCC))
	}
	return routes
}

// simple is an endpoint that verifies the caller, then parses and stores.
func (m *module) simple(verify func(*http.Request, []byte) error, parse func([]byte) ([]events.Signal, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := readBody(w, r, m.cfg.MaxBodyBytes)
		if !ok {
			return
		}
		if err := verify(r, body); err != nil {
			fail(w, err)
			return
		}
		if !httpapi.JSONContent(r) {
			unsupportedMedia(w, r)
			return
		}
		sigs, err := parse(body)
		if err != nil {
			fail(w, err)
			return
		}
		m.store(w, r, sigs)
	})
}

func (m *module) verifyGrafana(r *http.Request, body []byte) error {
	if m.sec.grafanaHMAC != "" && r.Header.Get(grafanaSignatureHeader) != "" {
		return grafanaHMAC(r, body, m.sec.grafanaHMAC, 5*time.Minute, m.now())
	}
	if m.sec.grafanaToken != "" {
		return bearer(r, m.sec.grafanaToken)
	}
	return denied("missing %s header", grafanaSignatureHeader)
}

// aws serves EventBridge API destinations (header secret) and SNS HTTP
// subscriptions (signature), told apart by SNS's message type header.
func (m *module) aws(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r, m.cfg.MaxBodyBytes)
	if !ok {
		return
	}
	typ := r.Header.Get("x-amz-sns-message-type")
	if typ == "" {
		if err := headerSecret(r, m.cfg.AWS.Header, m.sec.awsSecret); err != nil {
			fail(w, err)
			return
		}
		if !httpapi.JSONContent(r) {
			unsupportedMedia(w, r)
			return
		}
		sigs, err := withHint(PathAWS, parseEventBridge)(body)
		if err != nil {
			fail(w, err)
			return
		}
		m.store(w, r, sigs)
		return
	}
	if len(m.cfg.AWS.SNSTopics) == 0 {
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
	if err := m.sns.verify(r.Context(), &msg); err != nil {
		fail(w, err)
		return
	}
	if !httpapi.JSONContent(r) && !snsContent(r) {
		unsupportedMedia(w, r)
		return
	}
	switch msg.Type {
	case "SubscriptionConfirmation":
		if err := m.sns.confirm(r.Context(), msg.SubscribeURL); err != nil {
			m.env.Logger.Warn("SNS subscription confirmation failed", "topic", msg.TopicArn, "err", err)
			reply(w, http.StatusBadGateway, "confirm_failed", "could not confirm the subscription; SNS sends it again, the cause is in the hub's log")
			return
		}
		m.env.Logger.Info("SNS subscription confirmed", "topic", msg.TopicArn)
		w.WriteHeader(http.StatusOK)
	case "UnsubscribeConfirmation":
		m.env.Logger.Warn("SNS subscription ended", "topic", msg.TopicArn)
		w.WriteHeader(http.StatusOK)
	case "Notification":
		sigs, err := parseEventBridge([]byte(msg.Message))
		if err != nil {
			fail(w, fmt.Errorf("Message: %w", err))
			return
		}
		m.store(w, r, sigs)
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

func init() { hub.Register(Module) }
