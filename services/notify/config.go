// Package notify tells stakeholders about incidents: rules in hikeshi.yaml
// pick recipients by severity, service, what happened, and the incident's
// confidential and drill flags; each recipient gets a mail (SMTP, plain
// text and HTML from templates) or a signed webhook, once, and every send
// is recorded on the incident as io.hikeshi.notify.sent.
package notify

import (
	"errors"
	"fmt"
	"net/mail"
	"net/url"
	"slices"
	"strings"

	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/config"
	"github.com/hikeshi/hikeshi/services/incident"
)

// Name is the module's configuration section and its projector's durable
// consumer. Fixed: renaming it would notify everyone of every incident again.
const Name = "notify"

// Triggers a rule can select: what happened to the incident.
const (
	OnDeclared        = "declared"
	OnSeverityChanged = "severity_changed" // any change, up or down
	OnEscalated       = "escalated"        // to a worse severity only
	OnStatusUpdated   = "status_updated"
	OnClosed          = "closed"
)

var triggers = []string{OnDeclared, OnSeverityChanged, OnEscalated, OnStatusUpdated, OnClosed}

// Config is the notify: section of hikeshi.yaml.
type Config struct {
	SMTP SMTP `yaml:"smtp"`
	// Templates overrides or adds mail templates by name; internal and
	// external are built in.
	Templates map[string]TemplateFiles `yaml:"templates"`
	// Recipients by name; rules refer to them.
	Recipients map[string]Recipient `yaml:"recipients"`
	Rules      []Rule               `yaml:"rules"`
}

// SMTP is the mail relay.
type SMTP struct {
	Host string `yaml:"host"`
	Port int    `yaml:"port"` // default 587 (465 with tls: tls)
	// From is the sender, e.g. "Hikeshi <incidents@acme.example>".
	From        string `yaml:"from"`
	Username    string `yaml:"username"`     // empty: no authentication
	PasswordEnv string `yaml:"password_env"` // the variable holding the password
	// TLS is starttls (default: the server must offer it), tls (implicit
	// TLS, port 465) or none (a relay on the same host or network).
	TLS string `yaml:"tls"`
}

// TemplateFiles are the files of one mail template (text/template syntax;
// the HTML one is escaped as html/template). Empty fields keep the
// built-in template's part.
type TemplateFiles struct {
	Subject string `yaml:"subject"` // one line, inline (not a path)
	Text    string `yaml:"text"`    // path of the plain-text body
	HTML    string `yaml:"html"`    // path of the HTML body
}

// Recipient is one mailbox, one webhook endpoint or one Slack channel.
type Recipient struct {
	Email     string `yaml:"email"`
	Webhook   string `yaml:"webhook"`    // URL the payload is POSTed to
	SecretEnv string `yaml:"secret_env"` // the variable holding the HMAC key
	// Slack is an announcement channel (an id, C…, or a name): the Slack
	// module posts there, asked by an io.hikeshi.slack.announcement_requested.
	Slack string `yaml:"slack"`
	// Security recipients may hear of confidential incidents (by codename
	// only); nobody else does.
	Security bool `yaml:"security"`
	// Drill recipients hear of drills; nobody else does.
	Drill bool `yaml:"drill"`
}

// Rule selects who is told about what.
type Rule struct {
	Name string `yaml:"name"`
	// Severity: incidents at or above it (SEV2 matches SEV1 and SEV2), by
	// the severity after the event; empty matches every severity.
	Severity string `yaml:"severity"`
	// Services the rule covers; empty covers every service.
	Services []string `yaml:"services"`
	// On lists the triggers (declared, severity_changed, escalated,
	// status_updated, closed).
	On []string `yaml:"on"`
	// Statuses narrows status_updated to moves into these statuses.
	Statuses []string `yaml:"statuses"`
	// Confidential and Drill, when set, match only incidents with (true)
	// or without (false) the flag. Whatever they say, confidential
	// incidents reach only security recipients and drills only drill
	// recipients.
	Confidential *bool `yaml:"confidential"`
	Drill        *bool `yaml:"drill"`
	// Template of the mails: internal (default) or external.
	Template string   `yaml:"template"`
	To       []string `yaml:"to"`

	minRank int
}

// Load reads and checks the section; secrets are read from the environment.
func Load(f *config.File) (Config, Secrets, error) {
	var c Config
	if _, err := f.Section(Name, &c); err != nil {
		return c, Secrets{}, err
	}
	s, err := c.check()
	return c, s, err
}

// Secrets are the credentials named by the configuration.
type Secrets struct {
	SMTPPassword string
	Webhooks     map[string]string // recipient name → HMAC key
}

func (c *Config) check() (Secrets, error) {
	s := Secrets{Webhooks: map[string]string{}}
	if len(c.Rules) == 0 {
		return s, errors.New("notify.rules: no rules; add at least one")
	}
	mail := false
	for name, r := range c.Recipients {
		where := "notify.recipients." + name
		kinds := 0
		for _, v := range []string{r.Email, r.Webhook, r.Slack} {
			if v != "" {
				kinds++
			}
		}
		switch {
		case kinds != 1:
			return s, fmt.Errorf("%s: set exactly one of email, webhook and slack", where)
		case r.Slack != "":
			if strings.ContainsAny(r.Slack, " #,") {
				return s, fmt.Errorf("%s.slack: want a channel id or name without #, got %q", where, r.Slack)
			}
		case r.Email != "":
			a, err := parseAddress(r.Email)
			if err != nil {
				return s, fmt.Errorf("%s.email: %v", where, err)
			}
			r.Email = a
			c.Recipients[name] = r
			mail = true
		default:
			u, err := url.Parse(r.Webhook)
			if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				return s, fmt.Errorf("%s.webhook: want an http(s) URL, got %q", where, r.Webhook)
			}
			secret, err := config.Secret(Name, "recipients."+name+".secret_env", r.SecretEnv)
			if err != nil {
				return s, err
			}
			s.Webhooks[name] = secret
		}
	}
	if mail {
		if err := c.SMTP.check(); err != nil {
			return s, err
		}
		if c.SMTP.Username != "" {
			pw, err := config.Secret(Name, "smtp.password_env", c.SMTP.PasswordEnv)
			if err != nil {
				return s, err
			}
			s.SMTPPassword = pw
		}
	}
	seen := map[string]bool{}
	for i := range c.Rules {
		r := &c.Rules[i]
		where := fmt.Sprintf("notify.rules[%d]", i)
		if r.Name == "" {
			return s, fmt.Errorf("%s: name the rule (it is recorded with every send)", where)
		}
		if seen[r.Name] {
			return s, fmt.Errorf("%s: rule name %q used twice", where, r.Name)
		}
		seen[r.Name] = true
		where = "notify.rules." + r.Name
		if r.Severity != "" {
			sev, err := events.ParseSeverity(r.Severity)
			if err != nil {
				return s, fmt.Errorf("%s.severity: %v", where, err)
			}
			r.minRank = sev.Rank()
		}
		if len(r.On) == 0 {
			return s, fmt.Errorf("%s.on: list what to notify about (%s)", where, strings.Join(triggers, ", "))
		}
		for _, on := range r.On {
			if !slices.Contains(triggers, on) {
				return s, fmt.Errorf("%s.on: %q is not one of %s", where, on, strings.Join(triggers, ", "))
			}
		}
		for _, st := range r.Statuses {
			if events.Status(st).Rank() == 0 || events.Status(st) == events.Closed {
				return s, fmt.Errorf("%s.statuses: %q is not one of investigating, identified, monitoring, resolved (closing is the trigger closed)", where, st)
			}
		}
		if len(r.Statuses) > 0 && !slices.Contains(r.On, OnStatusUpdated) {
			return s, fmt.Errorf("%s.statuses: only used with on: [status_updated]", where)
		}
		if r.Template == "" {
			r.Template = Internal
		}
		if _, builtin := builtins[r.Template]; !builtin {
			if _, ok := c.Templates[r.Template]; !ok {
				return s, fmt.Errorf("%s.template: no template %q (internal, external, or one under notify.templates)", where, r.Template)
			}
		}
		if len(r.To) == 0 {
			return s, fmt.Errorf("%s.to: no recipients", where)
		}
		for _, to := range r.To {
			if _, ok := c.Recipients[to]; !ok {
				return s, fmt.Errorf("%s.to: no recipient named %q under notify.recipients", where, to)
			}
		}
	}
	return s, nil
}

func (m *SMTP) check() error {
	if m.Host == "" {
		return errors.New("notify.smtp.host: required for email recipients")
	}
	switch m.TLS {
	case "":
		m.TLS = "starttls"
	case "starttls", "tls", "none":
	default:
		return fmt.Errorf("notify.smtp.tls: %q is not one of starttls, tls, none", m.TLS)
	}
	if m.Port == 0 {
		m.Port = 587
		if m.TLS == "tls" {
			m.Port = 465
		}
	}
	if _, err := mail.ParseAddress(m.From); err != nil {
		return fmt.Errorf("notify.smtp.from: %v", err)
	}
	return nil
}

// parseAddress accepts a bare address only: the recipient is recorded on
// the timeline, and a display name would only get in the way there.
func parseAddress(s string) (string, error) {
	a, err := mail.ParseAddress(s)
	if err != nil {
		return "", err
	}
	if a.Name != "" || a.Address != strings.TrimSpace(s) {
		return "", fmt.Errorf("%q: give the bare address", s)
	}
	return a.Address, nil
}

// matches reports whether the rule covers trigger on an incident whose
// state (after the event) is st; to is the new status of a status update.
func (r *Rule) matches(st incident.State, trigger string, to events.Status) bool {
	on := slices.Contains(r.On, trigger) || trigger == OnEscalated && slices.Contains(r.On, OnSeverityChanged)
	if !on {
		return false
	}
	if trigger == OnStatusUpdated && len(r.Statuses) > 0 && !slices.Contains(r.Statuses, string(to)) {
		return false
	}
	if r.minRank > 0 && st.Severity.Rank() > r.minRank {
		return false
	}
	if len(r.Services) > 0 && !slices.Contains(r.Services, st.Service) {
		return false
	}
	if r.Confidential != nil && *r.Confidential != st.Confidential {
		return false
	}
	if r.Drill != nil && *r.Drill != st.Drill {
		return false
	}
	return true
}

// allowed is the guard no rule overrides: confidential incidents reach
// security recipients only, drills reach drill recipients only.
func (r Recipient) allowed(st incident.State) bool {
	if st.Confidential && !r.Security {
		return false
	}
	if st.Drill && !r.Drill {
		return false
	}
	return true
}
