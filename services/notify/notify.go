package notify

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"time"

	"github.com/hikeshi/hikeshi/adapters/httpx"
	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/command"
	"github.com/hikeshi/hikeshi/services/incident"
	"github.com/hikeshi/hikeshi/services/integration"
	"github.com/hikeshi/hikeshi/services/module"
	"github.com/hikeshi/hikeshi/services/projection"
)

// Channels a notification goes through.
const (
	ChannelEmail   = "email"
	ChannelWebhook = "webhook"
	ChannelSlack   = "slack"
)

// Module is the row in the hub's module table.
var Module = module.Module{Name: Name, New: start}

func start(ctx context.Context, d module.Deps) (module.Parts, error) {
	cfg, secrets, err := Load(d.Config)
	if err != nil {
		return module.Parts{}, err
	}
	p, err := New(cfg, secrets, &d, Options{})
	if err != nil {
		return module.Parts{}, err
	}
	return module.Parts{Projectors: []projection.Projector{p.Projector()}}, nil
}

// Options are what tests replace.
type Options struct {
	// Transport is the retrying transport of webhooks (nil: defaults).
	Transport *httpx.Transport
	Now       func() time.Time
}

// Projector sends the notifications the rules ask for.
type Projector struct {
	cfg       Config
	secrets   Secrets
	env       *module.Deps
	templates map[string]*template
	mailer    *mailer
	http      *http.Client
	now       func() time.Time
}

// New builds the projector.
func New(cfg Config, secrets Secrets, env *module.Deps, o Options) (*Projector, error) {
	tpls, err := loadTemplates(cfg.Templates)
	if err != nil {
		return nil, err
	}
	p := &Projector{cfg: cfg, secrets: secrets, env: env, templates: tpls, now: o.Now}
	if p.now == nil {
		p.now = time.Now
	}
	if cfg.SMTP.Host != "" {
		from, err := mail.ParseAddress(cfg.SMTP.From)
		if err != nil {
			return nil, fmt.Errorf("notify.smtp.from: %w", err)
		}
		p.mailer = &mailer{cfg: cfg.SMTP, password: secrets.SMTPPassword, from: from}
	}
	t := o.Transport
	if t == nil {
		t = &httpx.Transport{MaxRetries: 6}
	}
	p.http = integration.Client("", t)
	return p, nil
}

// Projector is the projector on its durable consumer.
func (p *Projector) Projector() projection.Projector {
	return projection.Projector{Durable: Name, Handle: p.Handle}
}

// Handle sends what the rules ask for about one incident event.
func (p *Projector) Handle(ctx context.Context, e events.Stored) error {
	switch e.Type {
	case events.TypeDeclared, events.TypeSeverityChanged, events.TypeStatusUpdated, events.TypeClosed:
	default:
		return nil
	}
	d, err := e.Decode()
	if err != nil {
		return err
	}
	// The rules are matched against the incident as it stood right after
	// this event, not as it stands now: a redelivery long after decides
	// the same, and a mail about an escalation says what the escalation said.
	then, now, err := p.load(ctx, e)
	if err != nil {
		return err
	}
	trigger, to := triggerOf(d)
	for i := range p.cfg.Rules {
		rule := &p.cfg.Rules[i]
		if !rule.matches(then, trigger, to) {
			continue
		}
		report := newReport(rule.Name, trigger, p.env.PublicURL, then, e, d)
		for _, name := range rule.To {
			rcpt := p.cfg.Recipients[name]
			if !rcpt.allowed(then) {
				continue
			}
			if err := p.deliver(ctx, &now, rule, name, rcpt, report, e); err != nil {
				return err
			}
		}
	}
	return nil
}

// load folds the incident's events up to e (then) and all of them (now:
// the notifications already recorded).
func (p *Projector) load(ctx context.Context, e events.Stored) (then, now incident.State, err error) {
	all, err := p.env.Events.Load(ctx, e.Envelope.Subject, 0)
	if err != nil {
		return then, now, err
	}
	reached := false
	for _, s := range all {
		d, err := s.Decode()
		if err != nil {
			return then, now, err
		}
		if err := now.ApplyData(s.Envelope, d, s.Seq); err != nil {
			return then, now, err
		}
		if !reached {
			if err := then.ApplyData(s.Envelope, d, s.Seq); err != nil {
				return then, now, err
			}
			reached = s.ID == e.ID
		}
	}
	if !reached {
		return then, now, fmt.Errorf("notify: event %s not found on incident %s", e.ID, e.Envelope.Subject)
	}
	return then, now, nil
}

func triggerOf(d events.Data) (string, events.Status) {
	switch d := d.(type) {
	case *events.SeverityChanged:
		if d.To.Rank() < d.From.Rank() {
			return OnEscalated, ""
		}
		return OnSeverityChanged, ""
	case *events.StatusUpdated:
		return OnStatusUpdated, d.To
	case *events.IncidentClosed:
		return OnClosed, events.Closed
	}
	return OnDeclared, ""
}

// sendKey names one notification: a rule, a recipient, the event it is
// about. It keys the effects ledger and the recorded fact.
func sendKey(rule, recipient, causeID string) string {
	return "notify:" + rule + ":" + recipient + ":" + causeID
}

// deliver sends one notification unless it was sent already, and records
// it on the incident.
//
// Two records say a notification was sent: the effects ledger, written the
// moment the remote accepted it, and the fact on the incident, appended
// next. A redelivery checks the fact first (it survives a lost ledger),
// then the ledger (it survives a crash before the fact was appended).
func (p *Projector) deliver(ctx context.Context, recorded *incident.State, rule *Rule, name string, rcpt Recipient, r Report, e events.Stored) error {
	key := sendKey(rule.Name, name, e.ID)
	if recorded.Has(events.DeriveID("event", r.IncidentID, key)) {
		return nil
	}
	if rcpt.Slack != "" {
		return p.announce(ctx, recorded, rule, name, rcpt.Slack, key, r)
	}
	var quit func()
	defer func() {
		if quit != nil {
			quit()
		}
	}()
	fact, err := natsjs.Once(ctx, p.env.Effects, natsjs.EffectKey(Name, r.IncidentID, rule.Name, name, e.ID), func(ctx context.Context) (events.NotifySent, error) {
		fact := events.NotifySent{Rule: rule.Name, Trigger: r.Trigger, CauseID: e.ID, Outcome: events.NotifyAccepted}
		if rcpt.Email != "" {
			fact.Channel, fact.Recipient, fact.Template = ChannelEmail, rcpt.Email, rule.Template
			var err error
			quit, err = p.mail(ctx, rcpt.Email, key, r, rule.Template, &fact)
			return fact, err
		}
		fact.Channel, fact.Recipient = ChannelWebhook, name
		fact.MessageID = events.DeriveID("webhook", key)
		status, err := p.post(ctx, rcpt.Webhook, []byte(p.secrets.Webhooks[name]), newPayload(fact.MessageID, r))
		if err != nil {
			return fact, err
		}
		fact.Detail = fmt.Sprintf("HTTP %d", status)
		fact.Outcome, err = webhookOutcome(name, status)
		return fact, err
	})
	if err != nil {
		return err
	}
	if fact.Outcome == events.NotifyRefused {
		p.env.Logger.Warn("notification refused", "incident", r.IncidentID, "rule", rule.Name,
			"recipient", fact.Recipient, "detail", fact.Detail)
	}
	st, err := p.env.Commands.Execute(ctx, r.IncidentID, incident.RecordFact{Data: &fact}, command.Meta{Actor: Name, Key: key})
	if err != nil {
		return err
	}
	*recorded = st
	return nil
}

// mail renders and sends one mail. The send is recorded (by the caller's
// Once) as soon as the server answered 250, before QUIT.
func (p *Projector) mail(ctx context.Context, to, key string, r Report, tpl string, fact *events.NotifySent) (func(), error) {
	if p.mailer == nil {
		return nil, errors.New("notify: email recipient without notify.smtp")
	}
	out, err := p.templates[tpl].render(r)
	if err != nil {
		return nil, fmt.Errorf("%w: notify template %s: %v", projection.ErrPermanent, tpl, err)
	}
	fact.MessageID = "<" + events.DeriveID("mail", key) + "@" + domain(p.mailer.from) + ">"
	msg, err := message(p.mailer.from, to, fact.MessageID, p.now(), out)
	if err != nil {
		return nil, err
	}
	quit, err := p.mailer.send(ctx, to, msg)
	var refused refusedError
	if errors.As(err, &refused) {
		fact.Outcome, fact.Detail = events.NotifyRefused, refused.Error()
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	fact.Detail = "250 queued"
	return quit, nil
}
