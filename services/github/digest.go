package github

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/integration"
	"github.com/nats-io/nats.go"
)

// Digest posts the follow-up list to a Slack channel once a week. The
// GitHub module does not talk to Slack: it puts the message on
// SLACK_OUTBOX and the Slack module posts it.
type Digest struct {
	// Channel is the Slack channel id (or name); empty turns the digest off.
	Channel string `yaml:"channel"`
	// Weekday and Hour (0-23) in Timezone: the digest goes out at the first
	// check at or after that hour on that day (later that day when the hub
	// was down at the hour).
	Weekday  string        `yaml:"weekday"`
	Hour     int           `yaml:"hour"`
	Timezone string        `yaml:"timezone"`
	Check    time.Duration `yaml:"check"`

	day time.Weekday
	loc *time.Location
}

func (d *Digest) check() error {
	if d.Channel == "" {
		return nil
	}
	if d.Weekday == "" {
		d.Weekday = "monday"
	}
	found := false
	for wd := time.Sunday; wd <= time.Saturday; wd++ {
		if strings.EqualFold(wd.String(), d.Weekday) {
			d.day, found = wd, true
		}
	}
	if !found {
		return fmt.Errorf("github.followups.digest.weekday: %q is not a day of the week", d.Weekday)
	}
	if d.Hour < 0 || d.Hour > 23 {
		return fmt.Errorf("github.followups.digest.hour: %d is not 0-23", d.Hour)
	}
	var err error
	if d.loc, err = time.LoadLocation(d.Timezone); err != nil {
		return fmt.Errorf("github.followups.digest.timezone: %w", err)
	}
	if d.Check <= 0 {
		d.Check = time.Minute
	}
	return nil
}

// RunDigest checks every Digest.Check whether the week's digest is due.
func (p *Projector) RunDigest(ctx context.Context) error {
	t := time.NewTicker(p.s.Followups.Digest.Check)
	defer t.Stop()
	for {
		if _, err := p.PostDigest(ctx, nowFunc()); err != nil && ctx.Err() == nil {
			p.env.Logger.Warn("followups digest not posted; retrying at the next check", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// PostDigest puts this week's digest on SLACK_OUTBOX when it is due and
// not posted yet, and returns the ISO week it posted for ("" when not
// due). The effects ledger, keyed by the ISO week, makes it once a week
// across restarts and replicas; the message id makes a repeat after a
// lost ledger write a duplicate the stream drops.
func (p *Projector) PostDigest(ctx context.Context, now time.Time) (string, error) {
	d := p.s.Followups.Digest
	if d.Channel == "" {
		return "", nil
	}
	local := now.In(d.loc)
	if local.Weekday() != d.day || local.Hour() < d.Hour {
		return "", nil
	}
	year, wk := local.ISOWeek()
	week := fmt.Sprintf("%d-W%02d", year, wk)
	_, err := natsjs.Once(ctx, p.env.Effects, natsjs.EffectKey(Name, "digest", week), func(ctx context.Context) (string, error) {
		if p.env.Incidents == nil {
			return "", errors.New("followups digest: no timeline store on this hub")
		}
		list, err := p.Followups(ctx, now)
		if err != nil {
			return "", err
		}
		return week, p.publish(ctx, week, &events.AnnouncementRequested{
			Channel: d.Channel, Text: digestText(week, list, p.env.PublicURL),
			Rule: "followups-digest", Trigger: "weekly", CauseID: week,
		})
	})
	return week, err
}

func (p *Projector) publish(ctx context.Context, week string, a *events.AnnouncementRequested) error {
	id := events.DeriveID("followups-digest", week, a.Channel)
	env, err := events.New(id, a, events.Meta{ID: id, Actor: Name, Time: nowFunc()})
	if err != nil {
		return err
	}
	data, err := env.Marshal()
	if err != nil {
		return err
	}
	m := nats.NewMsg(events.SlackOutboxPrefix + "." + id)
	m.Data = data
	m.Header.Set(nats.MsgIdHdr, id)
	m.Header.Set("Content-Type", "application/cloudevents+json")
	if _, err := p.env.JS.PublishMsg(ctx, m); err != nil {
		return fmt.Errorf("%w: followups digest: %v", natsjs.ErrUnavailable, err)
	}
	return nil
}

// digestText lists the follow-ups; titles are already codenames for
// confidential incidents.
func digestText(week string, list []Followup, publicURL string) string {
	if len(list) == 0 {
		return fmt.Sprintf(":white_check_mark: *CSIRT follow-ups, %s*: nothing to chase this week.", week)
	}
	var b strings.Builder
	fmt.Fprintf(&b, ":clipboard: *CSIRT follow-ups, %s*: %d incident(s)\n", week, len(list))
	for _, f := range list {
		fmt.Fprintf(&b, "• <%s|%s> %s (%s): %s", integration.TimelineURL(publicURL, f.ID), f.CaseNumber, f.Title, f.Severity, f.Explanation)
		if f.Postmortem != "" {
			fmt.Fprintf(&b, " <%s|postmortem>", f.Postmortem)
		}
		b.WriteByte('\n')
	}
	return strings.TrimRight(b.String(), "\n")
}
