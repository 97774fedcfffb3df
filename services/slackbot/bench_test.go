package slackbot

import (
	"context"
	goflag "flag"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/adapters/slacktest"
	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/incident"
)

// A 100-incident burst drains in minutes at Slack's real rate tiers; the
// benchmark runs the fake Slack's clock, the Retry-After waits and the
// per-channel pacing slackScale times faster and reports both the measured
// and the implied real-time figure.
var (
	slackScale = goflag.Float64("slack-scale", 60, "time compression of the Slack burst benchmark (1 = real time)")
	slackBurst = goflag.Int("slack-burst", 100, "incidents declared at once in the Slack burst benchmark")
)

// publishedTiers are Slack's documented limits for the methods the bot
// calls (Tier 2 ≈ 20/min, Tier 3 ≈ 50/min, Tier 4 ≈ 100/min;
// chat.postMessage about one message per second per channel).
var publishedTiers = map[string]slacktest.Tier{
	"conversations.create":     {PerMinute: 20},
	"conversations.setTopic":   {PerMinute: 20},
	"conversations.setPurpose": {PerMinute: 20},
	"conversations.list":       {PerMinute: 20},
	"conversations.archive":    {PerMinute: 20},
	"usergroups.users.list":    {PerMinute: 20},
	"pins.add":                 {PerMinute: 20},
	"conversations.invite":     {PerMinute: 50},
	"conversations.history":    {PerMinute: 50},
	"conversations.replies":    {PerMinute: 50},
	"chat.update":              {PerMinute: 50},
	"chat.getPermalink":        {PerMinute: 100},
	"chat.postMessage":         {PerMinute: 1, Window: time.Second, PerChannel: true},
}

// BenchmarkSlackIncidentLife counts the Web API calls of one incident's
// life (declared, severity, commander, two status updates, a note, closed).
func BenchmarkSlackIncidentLife(b *testing.B) {
	calls := 0
	for range b.N {
		r := newRig(b, "")
		before := len(r.slack.Calls())
		r.life(incident.Declare{Title: "Card payments failing", Service: "payments", Severity: "SEV2", DeclaredBy: "UALICE001"}, func(string) {})
		calls = len(r.slack.Calls()) - before
		r.stop()
	}
	b.ReportMetric(float64(calls), "calls/incident-life")
}

// BenchmarkSlackBurstDrain declares -slack-burst incidents at once against
// a fake Slack that enforces the published tiers with 429 + Retry-After,
// and measures how long the projector takes until every incident has its
// channel, kickoff, pin, invitations and announcement.
func BenchmarkSlackBurstDrain(b *testing.B) {
	scale, n := *slackScale, *slackBurst
	if scale <= 0 || n <= 0 {
		b.Fatal("-slack-scale and -slack-burst must be positive")
	}
	var drain time.Duration
	var calls, limited int
	for range b.N {
		sleep := func(ctx context.Context, d time.Duration) error {
			t := time.NewTimer(time.Duration(float64(d) / scale))
			defer t.Stop()
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-t.C:
				return nil
			}
		}
		r := newRigWith(b, "", sleep)
		start := time.Now()
		r.slack.Clock(func() time.Time { return start.Add(time.Duration(float64(time.Since(start)) * scale)) })
		for m, t := range publishedTiers {
			r.slack.Limit(m, t)
		}
		r.stop()
		r.cfg.PostInterval = time.Duration(float64(time.Second) / scale)
		r.start()

		b.ResetTimer()
		t0 := time.Now()
		ids := make([]string, n)
		for i := range n {
			ids[i] = r.h.Declare(b, incident.Declare{Title: fmt.Sprintf("Burst incident %d", i), Service: "payments",
				Severity: "SEV2", DeclaredBy: "UALICE001"}).ID
		}
		deadline := time.Now().Add(time.Duration(float64(time.Duration(n)*10*time.Second)/scale) + time.Minute)
		for pending := ids; len(pending) > 0; {
			if time.Now().After(deadline) {
				b.Fatalf("%d of %d incidents still without a channel after %s", len(pending), n, time.Since(t0))
			}
			var still []string
			for _, id := range pending {
				// The record is written after the announcement, just
				// before the channel_linked event.
				if rec, ok, err := r.bot.record(context.Background(), id); err != nil || !ok || rec.KickoffTS == "" {
					still = append(still, id)
				}
			}
			pending = still
			if len(pending) > 0 {
				time.Sleep(50 * time.Millisecond)
			}
		}
		drain = time.Since(t0)
		b.StopTimer()
		r.waitFor(ids[n-1], events.TypeSlackChannelLinked, 1)
		calls, limited = 0, 0
		for _, c := range r.slack.Calls() {
			calls++
			if c.Status == http.StatusTooManyRequests {
				limited++
			}
		}
		r.stop()
	}
	b.ReportMetric(drain.Seconds(), "s-drain-measured")
	b.ReportMetric(drain.Seconds()*scale, "s-drain-real-time")
	b.ReportMetric(float64(calls)/float64(n), "calls/declaration")
	b.ReportMetric(float64(limited), "429s")
	b.Logf("%d incidents at scale %.0f×: drained in %s measured, %s at real tiers; %d calls (%d answered 429)",
		n, scale, drain.Round(time.Millisecond), time.Duration(float64(drain)*scale).Round(time.Second), calls, limited)
}
