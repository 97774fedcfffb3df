package slackbot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/hikeshi/hikeshi/adapters/httpx"
	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/adapters/slacksign"
	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/config"
	"github.com/hikeshi/hikeshi/services/module"
	"github.com/hikeshi/hikeshi/services/projection"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/slack-go/slack"
)

// Durable is the projector's consumer name; fixed forever.
const Durable = "slack"

// StateBucket holds what the Slack integration derives from the log: the
// channel → incident index and the open incidents' timers.
const StateBucket = "hikeshi_slack"

// Bot is the running integration.
type Bot struct {
	cfg       Config
	api       *slack.Client
	js        jetstream.JetStream
	commands  module.Commands
	effects   module.Effects
	state     jetstream.KeyValue
	archives  jetstream.ObjectStore
	pacer     *httpx.Pacer
	verifier  *slacksign.Verifier
	publicURL string
	log       *slog.Logger
	now       func() time.Time
	people    *people
}

// Deps is what New needs besides the configuration.
type Deps struct {
	JS            jetstream.JetStream
	Commands      module.Commands
	Effects       module.Effects
	Token         string
	SigningSecret string
	AppToken      string // Socket Mode only
	PublicURL     string
	Logger        *slog.Logger
	// Transport is the HTTP transport under the retrying one (tests use it
	// to count or slow requests); nil means http.DefaultTransport.
	Transport http.RoundTripper
	// Sleep replaces the waits of the retrying transport (benchmarks scale
	// time with it); nil means real waits.
	Sleep func(context.Context, time.Duration) error
	Now   func() time.Time
}

// Module is the row in the hub's module table.
var Module = module.Module{Name: Name, New: start}

func start(ctx context.Context, env module.Deps) (module.Parts, error) {
	cfg, err := Load(env.Config)
	if err != nil {
		return module.Parts{}, err
	}
	token, err := config.Secret(Name, "bot_token_env", cfg.BotTokenEnv)
	if err != nil {
		return module.Parts{}, err
	}
	// Socket Mode is authenticated by the app-level token; HTTP by the
	// signing secret. Only the transport in use needs its credential.
	var secret, appToken string
	if cfg.SocketMode {
		if appToken, err = config.Secret(Name, "app_token_env", cfg.AppTokenEnv); err != nil {
			return module.Parts{}, err
		}
		if !strings.HasPrefix(appToken, "xapp-") {
			return module.Parts{}, fmt.Errorf("slack.app_token_env: %s does not hold an app-level token (xapp-…)", cfg.AppTokenEnv)
		}
	} else if secret, err = config.Secret(Name, "signing_secret_env", cfg.SigningSecretEnv); err != nil {
		return module.Parts{}, err
	}
	b, err := New(ctx, cfg, Deps{
		JS: env.JS, Commands: env.Commands, Effects: env.Effects,
		Token: token, SigningSecret: secret, AppToken: appToken, PublicURL: env.PublicURL, Logger: env.Logger,
	})
	if err != nil {
		return module.Parts{}, err
	}
	return b.Parts(), nil
}

// New builds the integration.
func New(ctx context.Context, cfg Config, d Deps) (*Bot, error) {
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	replicas := 1
	if s, err := d.JS.Stream(ctx, events.IncidentStream); err == nil {
		replicas = s.CachedInfo().Config.Replicas
	}
	kv, err := d.JS.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      StateBucket,
		Description: "Slack integration: channel to incident index and timekeeper timers, derived from the incident log",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", StateBucket, err)
	}
	if err := ensureFlagStream(ctx, d.JS, replicas); err != nil {
		return nil, err
	}
	archives, err := d.JS.ObjectStore(ctx, natsjs.ArchivesBucket)
	if err != nil {
		return nil, fmt.Errorf("object store %s: %w", natsjs.ArchivesBucket, err)
	}
	api := newAPI(cfg, d)
	return &Bot{
		cfg: cfg, api: api, js: d.JS, commands: d.Commands, effects: d.Effects, state: kv, archives: archives,
		pacer: &httpx.Pacer{Interval: cfg.PostInterval}, verifier: &slacksign.Verifier{Secret: d.SigningSecret, Now: d.Now},
		publicURL: strings.TrimRight(d.PublicURL, "/"), log: d.Logger, now: d.Now,
		people: &people{api: api, now: d.Now, known: map[string]slackPerson{}},
	}, nil
}

// newAPI is the Web API client: the retrying transport under slack-go,
// with the app-level token for Socket Mode when there is one.
func newAPI(cfg Config, d Deps) *slack.Client {
	log := d.Logger
	if log == nil {
		log = slog.Default()
	}
	// Only a 429 is retried for chat.postMessage: after a 5xx or a broken
	// connection the message may be there, and send looks before posting.
	transport := &httpx.Transport{Base: d.Transport, Sleep: d.Sleep,
		RateLimitOnly: func(r *http.Request) bool { return path.Base(r.URL.Path) == "chat.postMessage" },
		OnWait: func(r *http.Request, status int, wait time.Duration) {
			log.Info("slack: waiting before retry", "method", strings.TrimPrefix(r.URL.Path, "/api/"), "status", status, "wait", wait)
		}}
	api := slack.New(d.Token,
		slack.OptionAPIURL(cfg.APIURL),
		slack.OptionAppLevelToken(d.AppToken),
		slack.OptionHTTPClient(&http.Client{Transport: &holdOff{next: transport, sleep: d.Sleep}, Timeout: 5 * time.Minute}))
	return api
}

// Parts is what the bot adds to the hub. In Socket Mode the HTTP routes
// are not mounted: Slack then sends everything over the socket, and an
// endpoint nobody calls is one less to defend.
func (b *Bot) Parts() module.Parts {
	p := module.Parts{
		Projectors: []projection.Projector{b.Projector(), b.FlagProjector(), b.OutboxProjector(), b.TriageProjector()},
	}
	if b.cfg.SocketMode {
		p.Background = append(p.Background, b.RunSocketMode)
	} else {
		p.Routes = map[string]http.Handler{
			"POST /slack/events":        http.HandlerFunc(b.ServeEvents),
			"POST /slack/interactivity": http.HandlerFunc(b.ServeInteractivity),
			"POST /slack/commands":      http.HandlerFunc(b.ServeCommand),
		}
	}
	if !b.cfg.Timekeeper.Disabled {
		p.Background = append(p.Background, b.RunTimekeeper)
	}
	return p
}

// Projector is the Slack projector on its durable consumer.
func (b *Bot) Projector() projection.Projector {
	return projection.Projector{Durable: Durable, Handle: b.Handle}
}

// slackError classifies a Web API error: the remote's definitive refusals
// are permanent (retrying cannot help), everything else is retried.
func slackError(what string, err error) error {
	if err == nil {
		return nil
	}
	var se slack.SlackErrorResponse
	if errors.As(err, &se) {
		switch se.Err {
		case "invalid_auth", "not_authed", "account_inactive", "token_revoked", "missing_scope",
			"channel_not_found", "is_archived", "not_in_channel", "restricted_action", "invalid_name_specials",
			"invalid_name_maxlength", "invalid_name_punctuation", "invalid_name", "invalid_blocks", "msg_too_long":
			return fmt.Errorf("%w: slack %s: %w", projection.ErrPermanent, what, se)
		}
	}
	return fmt.Errorf("slack %s: %w", what, err)
}
