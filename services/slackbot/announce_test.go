package slackbot

import (
	"context"
	"testing"

	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/incident"
	"github.com/hikeshi/hikeshi/services/integrationtest"
	"github.com/nats-io/nats.go"
)

// TestAnnouncementsArePostedOnceAndRecorded: a requested announcement on
// an incident is posted once and recorded in the notification ledger; a
// channel Slack refuses is recorded as refused, not retried.
func TestAnnouncementsArePostedOnceAndRecorded(t *testing.T) {
	r := newRig(t, "")
	st, _ := r.incidentChannel("Search is slow")
	r.ensureChannels("CSTATUS01")
	r.h.Do(t, st.ID, incident.RecordFact{Data: &events.AnnouncementRequested{
		Channel: "CSTATUS01", Text: "INC-1 Search is slow escalated", Rule: "status", Recipient: "status-room", Trigger: "escalated", CauseID: "cause-1"}})
	r.h.Do(t, st.ID, incident.RecordFact{Data: &events.AnnouncementRequested{
		Channel: "CGONE0001", Text: "INC-1 Search is slow escalated", Rule: "status", Recipient: "gone", Trigger: "escalated", CauseID: "cause-1"}})
	r.waitFor(st.ID, events.TypeNotifySent, 2)
	r.restart()
	r.h.Replay(t, st.ID, r.bot.Handle)
	if n := containing(r.messagesIn("CSTATUS01"), "Search is slow escalated"); n != 1 {
		t.Fatalf("announcement posted %d times", n)
	}
	if n := r.h.Count(t, st.ID, events.TypeNotifySent); n != 2 {
		t.Fatalf("%d ledger entries after a redelivery, want 2", n)
	}
	outcomes := map[string]events.NotifySent{}
	for _, e := range r.h.Events(t, st.ID) {
		if e.Type == events.TypeNotifySent {
			d, _ := e.Decode()
			f := d.(*events.NotifySent)
			outcomes[f.Recipient] = *f
		}
	}
	if ok := outcomes["CSTATUS01"]; ok.Outcome != events.NotifyAccepted || ok.Channel != "slack" || ok.MessageID == "" || ok.CauseID != "cause-1" || ok.Rule != "status" {
		t.Errorf("posted: %+v", ok)
	}
	if bad := outcomes["CGONE0001"]; bad.Outcome != events.NotifyRefused {
		t.Errorf("unknown channel: %+v", bad)
	}
}

// publishOutbox puts an announcement about no incident on SLACK_OUTBOX.
func publishOutbox(t *testing.T, r *rig, id string, a *events.AnnouncementRequested) {
	t.Helper()
	env, err := events.New(id, a, events.Meta{ID: id, Actor: "github", Time: r.clock.Now()})
	if err != nil {
		t.Fatal(err)
	}
	data, err := env.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	m := nats.NewMsg(events.SlackOutboxPrefix + "." + id)
	m.Data = data
	m.Header.Set(nats.MsgIdHdr, id)
	if _, err := r.h.Bus.JS.PublishMsg(context.Background(), m); err != nil {
		t.Fatal(err)
	}
}

func TestOutboxAnnouncementPostedOnce(t *testing.T) {
	r := newRig(t, "")
	r.ensureChannels("CCSIRT001")
	id := events.DeriveID("digest", "2026-W47")
	a := &events.AnnouncementRequested{Channel: "CCSIRT001", Text: "Follow-ups this week: 2", Rule: "followups-digest", Trigger: "weekly", CauseID: "2026-W47"}
	publishOutbox(t, r, id, a)
	integrationtest.Eventually(t, "digest posted", func() bool { return containing(r.messagesIn("CCSIRT001"), "Follow-ups this week") == 1 })
	r.restart()
	// The same request again, past the stream's duplicate window: the
	// ledger still knows it was posted.
	env, err := events.New(id, a, events.Meta{ID: id, Actor: "github", Time: r.clock.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.bot.handleOutbox(context.Background(), events.Stored{Envelope: env}); err != nil {
		t.Fatal(err)
	}
	if n := containing(r.messagesIn("CCSIRT001"), "Follow-ups this week"); n != 1 {
		t.Fatalf("digest posted %d times", n)
	}
}
