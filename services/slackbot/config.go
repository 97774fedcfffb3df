// Package slackbot is the Slack integration: a projector that runs the
// incident channel (create, invite, kickoff, updates, closing export), the
// inbound endpoints (Events API, interactivity, the /incident command),
// the :sss: reaction and the timekeeper that asks for status updates.
package slackbot

import (
	"fmt"
	"regexp"
	"time"
	// The zone database is built in: a timezone setting must not depend
	// on the host's files.
	_ "time/tzdata"

	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/config"
)

// Name is the module's name and its hikeshi.yaml section.
const Name = "slack"

// Config is the slack: section of hikeshi.yaml.
type Config struct {
	BotTokenEnv      string `yaml:"bot_token_env"`
	SigningSecretEnv string `yaml:"signing_secret_env"`
	// SocketMode receives events, interactions and slash commands over
	// Slack's Socket Mode instead of HTTP (no public ingress needed); it
	// needs an app-level token (xapp-…, scope connections:write).
	SocketMode  bool   `yaml:"socket_mode"`
	AppTokenEnv string `yaml:"app_token_env"`
	APIURL      string `yaml:"api_url"` // GovSlack or a test server; must end in /api/
	// WorkspaceURL is used for links to channels (https://acme.slack.com).
	WorkspaceURL string `yaml:"workspace_url"`

	ChannelTemplate string `yaml:"channel_template"`
	// Timezone (an IANA name such as Asia/Tokyo) dates {yyyymmdd} in
	// channel names; default UTC.
	Timezone             string `yaml:"timezone"`
	ConfidentialTemplate string `yaml:"confidential_template"`
	DrillPrefix          string `yaml:"drill_prefix"`

	// Services maps a service to its first-response team: Slack user ids
	// (U…/W…) and user group ids (S…).
	Services map[string]Team `yaml:"services"`
	// DefaultTeam is invited for services not listed.
	DefaultTeam        Team     `yaml:"default_team"`
	SecurityTeam       []string `yaml:"security_team"`
	Executives         []string `yaml:"executives"`
	ExecutivesSeverity string   `yaml:"executives_severity"` // invited at this severity or worse

	Announce        []string `yaml:"announce_channels"`
	SecurityChannel string   `yaml:"security_channel"`
	ArchiveOnClose  bool     `yaml:"archive_on_close"`

	Command  string `yaml:"command"`       // slash command, default /incident
	Reaction string `yaml:"reaction"`      // security reaction, default sss
	PinEmoji string `yaml:"note_reaction"` // adds the message as a note, default pushpin
	// EscalateShortcut is the callback id of the message shortcut that
	// escalates a message to the security team for triage; "-" turns it off.
	EscalateShortcut string `yaml:"escalate_shortcut"`
	// MapUsersByEmail records a Slack user's actions as the person of their
	// e-mail address (users.info, scope users:read.email), the identity
	// they have when they sign in to the hub.
	MapUsersByEmail bool `yaml:"map_users_by_email"`

	Timekeeper Timekeeper `yaml:"timekeeper"`

	// PostInterval spaces messages to one channel (Slack allows about one
	// per second).
	PostInterval time.Duration `yaml:"post_interval"`

	loc *time.Location // Timezone, loaded
}

// Team is a first-response team.
type Team struct {
	Members []string `yaml:"members"`
}

// Timekeeper configures the status nudges.
type Timekeeper struct {
	Interval   time.Duration            `yaml:"interval"`
	BySeverity map[string]time.Duration `yaml:"by_severity"`
	Check      time.Duration            `yaml:"check"` // how often timers are checked
	Disabled   bool                     `yaml:"disabled"`
}

func defaults() Config {
	return Config{
		BotTokenEnv:          "SLACK_BOT_TOKEN",
		SigningSecretEnv:     "SLACK_SIGNING_SECRET",
		AppTokenEnv:          "SLACK_APP_TOKEN",
		APIURL:               "https://slack.com/api/",
		ChannelTemplate:      "{service}-{yyyymmdd}i-{slug}",
		ConfidentialTemplate: "sec-{yyyymmdd}-{codename}",
		DrillPrefix:          "drill-",
		ExecutivesSeverity:   "SEV1",
		Command:              "/incident",
		Reaction:             "sss",
		PinEmoji:             "pushpin",
		EscalateShortcut:     "escalate",
		Timekeeper:           Timekeeper{Interval: 15 * time.Minute, Check: 30 * time.Second},
		PostInterval:         time.Second,
	}
}

var (
	userID  = regexp.MustCompile(`^[UW][A-Z0-9]{2,}$`)
	groupID = regexp.MustCompile(`^S[A-Z0-9]{2,}$`)
	chanID  = regexp.MustCompile(`^[CG][A-Z0-9]{2,}$`)
)

// Load reads and checks the section.
func Load(f *config.File) (Config, error) {
	c := defaults()
	if _, err := f.Section(Name, &c); err != nil {
		return c, err
	}
	err := c.validate()
	return c, err
}

func (c *Config) validate() error {
	loc, err := time.LoadLocation(c.Timezone)
	if err != nil || c.Timezone == "Local" {
		return fmt.Errorf("slack.timezone: %q is not a time zone; give an IANA name such as Asia/Tokyo or UTC", c.Timezone)
	}
	c.loc = loc
	if _, err := events.ParseSeverity(c.ExecutivesSeverity); err != nil {
		return fmt.Errorf("slack.executives_severity: %w", err)
	}
	for sev := range c.Timekeeper.BySeverity {
		if _, err := events.ParseSeverity(sev); err != nil {
			return fmt.Errorf("slack.timekeeper.by_severity: %w", err)
		}
	}
	for _, d := range append([]time.Duration{c.Timekeeper.Interval}, mapValues(c.Timekeeper.BySeverity)...) {
		if d < time.Second {
			return fmt.Errorf("slack.timekeeper: interval %s is shorter than a second", d)
		}
	}
	if c.Timekeeper.Check <= 0 {
		return fmt.Errorf("slack.timekeeper.check must be positive")
	}
	check := func(field string, ids []string, ok ...*regexp.Regexp) error {
		for _, id := range ids {
			good := false
			for _, re := range ok {
				good = good || re.MatchString(id)
			}
			if !good {
				return fmt.Errorf("slack.%s: %q is not a Slack id", field, id)
			}
		}
		return nil
	}
	for svc, t := range c.Services {
		if err := check("services."+svc, t.Members, userID, groupID); err != nil {
			return err
		}
	}
	for _, e := range []error{
		check("default_team", c.DefaultTeam.Members, userID, groupID),
		check("security_team", c.SecurityTeam, userID, groupID),
		check("executives", c.Executives, userID, groupID),
		check("announce_channels", c.Announce, chanID),
	} {
		if e != nil {
			return e
		}
	}
	if c.SecurityChannel != "" && !chanID.MatchString(c.SecurityChannel) {
		return fmt.Errorf("slack.security_channel: %q is not a channel id", c.SecurityChannel)
	}
	if c.Command == "" || c.Command[0] != '/' {
		return fmt.Errorf("slack.command: %q must start with /", c.Command)
	}
	if c.PostInterval < 0 {
		return fmt.Errorf("slack.post_interval must not be negative")
	}
	return nil
}

func mapValues[K comparable, V any](m map[K]V) []V {
	out := make([]V, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// location is the time zone of the dates in channel names.
func (c *Config) location() *time.Location {
	if c.loc == nil {
		return time.UTC
	}
	return c.loc
}

// interval is the timekeeper interval for a severity.
func (c *Config) interval(sev events.Severity) time.Duration {
	if d, ok := c.Timekeeper.BySeverity[string(sev)]; ok {
		return d
	}
	return c.Timekeeper.Interval
}
