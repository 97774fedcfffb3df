package github_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/github"
	"github.com/hikeshi/hikeshi/services/incident"
	"github.com/hikeshi/hikeshi/services/integrationtest"
	"github.com/hikeshi/hikeshi/services/projection"
)

// outbox returns the announcements on SLACK_OUTBOX.
func outbox(t *testing.T, h *integrationtest.Hub) []events.AnnouncementRequested {
	t.Helper()
	return integrationtest.Data[events.AnnouncementRequested](t, integrationtest.Stream(t, h.Bus.JS, events.SlackOutboxStream))
}

// TestDigestOncePerWeekAcrossRestarts drives the digest with an injected
// clock: nothing before the configured day and hour, one digest per ISO
// week however often it is checked and however often the hub restarts.
func TestDigestOncePerWeekAcrossRestarts(t *testing.T) {
	h, _, _ := setup(t, `  followups:
    open_days: 0
    digest: {channel: CCSIRT001, weekday: monday, hour: 9, timezone: Asia/Tokyo}
`)
	tl := h.WithTimeline(t)
	stop := h.Run(t, []projection.Projector{tl})
	defer stop()
	st := h.Declare(t, incident.Declare{Title: "Token leak", Service: "auth", Severity: "SEV2", Confidential: true})
	integrationtest.Eventually(t, "timeline", func() bool {
		id, err := h.Timeline.FindByCase(context.Background(), st.CaseNumber)
		return err == nil && id == st.ID
	})
	tokyo, _ := time.LoadLocation("Asia/Tokyo")
	// The first Monday after the incident was declared, at midnight.
	n := time.Now().In(tokyo).AddDate(0, 0, 1)
	for n.Weekday() != time.Monday {
		n = n.AddDate(0, 0, 1)
	}
	monday := time.Date(n.Year(), n.Month(), n.Day(), 0, 0, 0, 0, tokyo)
	y, w := monday.ISOWeek()
	week := fmt.Sprintf("%d-W%02d", y, w)
	y, w = monday.AddDate(0, 0, 7).ISOWeek()
	next := fmt.Sprintf("%d-W%02d", y, w)
	post := func(at time.Time) string {
		t.Helper()
		p, err := github.New(h.Env) // a fresh projector each time: a restart
		if err != nil {
			t.Fatal(err)
		}
		week, err := p.PostDigest(context.Background(), at)
		if err != nil {
			t.Fatal(err)
		}
		return week
	}
	for _, early := range []time.Time{monday.Add(-15 * time.Hour), monday.Add(8*time.Hour + 59*time.Minute), monday.Add(24 * time.Hour)} {
		if w := post(early); w != "" {
			t.Fatalf("due at %s: %s", early, w)
		}
	}
	for _, at := range []time.Time{monday.Add(9 * time.Hour), monday.Add(9*time.Hour + time.Minute), monday.Add(23 * time.Hour)} {
		if w := post(at); w != week {
			t.Fatalf("at %s: week %q", at, w)
		}
	}
	got := outbox(t, h)
	if len(got) != 1 {
		t.Fatalf("%d digests in %s", len(got), week)
	}
	d := got[0]
	if d.Channel != "CCSIRT001" || d.CauseID != week || !strings.Contains(d.Text, st.CaseNumber) ||
		!strings.Contains(d.Text, "open for") || strings.Contains(d.Text, "Token leak") {
		t.Fatalf("digest %+v", d)
	}
	if w := post(monday.Add(7*24*time.Hour + 10*time.Hour)); w != next || len(outbox(t, h)) != 2 {
		t.Fatalf("next week: %q, %d digests", w, len(outbox(t, h)))
	}
}
