package slackbot

import (
	"strings"
	"testing"

	"github.com/hikeshi/hikeshi/adapters/slacktest"
	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/incident"
	"github.com/hikeshi/hikeshi/services/integrationtest"
)

// messagesIn returns the texts posted to channel ch.
func (r *rig) messagesIn(ch string) []slacktest.Message {
	return r.slack.Channels()[ch].Messages
}

func containing(ms []slacktest.Message, s string) int {
	n := 0
	for _, m := range ms {
		if strings.Contains(m.Text, s) || strings.Contains(m.Blocks, s) {
			n++
		}
	}
	return n
}

// TestSlashPostmortemAppendsOneRequest: /incident postmortem appends the
// request for the GitHub module once per invocation, answers the caller
// only, and the pull request's link, once recorded, is posted once.
func TestSlashPostmortemAppendsOneRequest(t *testing.T) {
	r := newRig(t, "")
	st, ch := r.incidentChannel("Search is slow")
	for range 2 { // Slack's retry of the same invocation
		got := r.slash("UBOB00001", ch, "postmortem", "trig-pm-1")
		if !strings.Contains(got, "Postmortem requested") {
			t.Fatalf("answer %q", got)
		}
	}
	if n := r.h.Count(t, st.ID, events.TypeGitHubPostmortemRequested); n != 1 {
		t.Fatalf("%d requests after a retried command, want 1", n)
	}
	var req *events.PostmortemRequested
	for _, e := range r.h.Events(t, st.ID) {
		if e.Type == events.TypeGitHubPostmortemRequested {
			d, _ := e.Decode()
			req = d.(*events.PostmortemRequested)
			if e.Actor != "UBOB00001" {
				t.Errorf("actor %q", e.Actor)
			}
		}
	}
	if req.RequestedBy != "UBOB00001" || req.Via != "slack" {
		t.Fatalf("request %+v", req)
	}
	if got := r.slash("UBOB00001", "CNOTINCIDENT", "postmortem", "trig-pm-2"); !strings.Contains(got, "not an incident channel") {
		t.Fatalf("outside an incident channel: %q", got)
	}
	// What the GitHub module records when the pull request is open.
	r.h.Do(t, st.ID, incident.RecordLink{Type: events.TypeGitHubPostmortemOpened,
		Linked: events.Linked{System: "github", Ref: "7", Name: "acme/postmortems#7", URL: "https://github.example/acme/postmortems/pull/7"}})
	integrationtest.Eventually(t, "the link posted", func() bool {
		return containing(r.messagesIn(ch), "acme/postmortems#7") == 1
	})
	r.restart()
	r.h.Replay(t, st.ID, r.bot.Handle)
	if n := containing(r.messagesIn(ch), "acme/postmortems#7"); n != 1 {
		t.Fatalf("link posted %d times after a redelivery", n)
	}
	if got := r.slash("UBOB00001", ch, "postmortem", "trig-pm-3"); !strings.Contains(got, "pull/7") {
		t.Fatalf("asked again once open: %q", got)
	}
}
