package slackbot

import (
	"context"
	"fmt"
	"net/http"
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

// recordPostmortem appends what the GitHub module records when the
// postmortem pull request is open.
func (r *rig) recordPostmortem(id string, n int) string {
	name := fmt.Sprintf("acme/postmortems#%d", n)
	r.h.Do(r.t, id, incident.RecordLink{Type: events.TypeGitHubPostmortemOpened,
		Linked: events.Linked{System: "github", Ref: fmt.Sprint(n), Name: name, URL: fmt.Sprintf("https://github.example/acme/postmortems/pull/%d", n)}})
	return name
}

// closeArchived closes incident id and waits until its channel is archived.
func (r *rig) closeArchived(id string) {
	r.h.Do(r.t, id, incident.UpdateStatus{Status: "resolved"})
	r.h.Do(r.t, id, incident.Close{Resolution: "fixed"})
	r.waitFor(id, events.TypeSlackConversationArchived, 1)
	ch := linkOf(r.t, r, id).Ref
	integrationtest.Eventually(r.t, "channel archived", func() bool { return r.slack.Channels()[ch].Archived })
}

// replies returns the thread replies in channel ch.
func (r *rig) replies(ch string) []slacktest.Message {
	var out []slacktest.Message
	for _, m := range r.messagesIn(ch) {
		out = append(out, m.Replies...)
	}
	return out
}

// TestPostmortemLinkAfterArchiveIsPosted: the GitHub module opens the
// postmortem on close, so its link arrives after archive_on_close archived
// the channel, where Slack refuses it (is_archived). It goes to the thread
// of the incident's announcement instead, once, even when Slack's answer to
// the reply is lost and the projector restarts; a confidential incident's
// goes to the security channel under its codename; a link that arrives
// before the close is posted in the channel.
func TestPostmortemLinkAfterArchiveIsPosted(t *testing.T) {
	r := newRig(t, "")
	decl := incident.Declare{Title: "Card payments failing", Service: "payments", Severity: "SEV2", DeclaredBy: "UALICE001"}
	st := r.life(decl, func(string) {})
	ch := linkOf(t, r, st.ID).Ref
	r.slack.Fail("chat.postMessage", slacktest.Fault{Status: http.StatusInternalServerError, Accepted: true})
	pm := r.recordPostmortem(st.ID, 7)
	integrationtest.Eventually(t, "the link in the announcement's thread", func() bool {
		return containing(r.replies("CANNOUNCE1"), pm) == 1
	})
	r.restart()
	r.h.Replay(t, st.ID, r.bot.Handle)
	if n := containing(r.replies("CANNOUNCE1"), pm); n != 1 || containing(r.messagesIn("CANNOUNCE1"), pm) != 0 {
		t.Fatalf("link in %d replies after a lost answer and a redelivery, want 1 (and no top-level post)", n)
	}
	if containing(r.messagesIn(ch), pm) != 0 || containing(r.messagesIn("CSECURITY1"), pm) != 0 {
		t.Fatalf("link posted where it does not belong")
	}

	conf := r.h.Declare(t, incident.Declare{Title: "Credential stuffing", Service: "identity", Severity: "SEV2", DeclaredBy: "UALICE001", Confidential: true})
	r.waitFor(conf.ID, events.TypeSlackChannelLinked, 1)
	r.closeArchived(conf.ID)
	cst, _ := r.h.Env.Commands.Get(context.Background(), conf.ID)
	pm = r.recordPostmortem(conf.ID, 8)
	integrationtest.Eventually(t, "the confidential link in the security channel", func() bool {
		return containing(r.messagesIn("CSECURITY1"), pm) == 1
	})
	for _, m := range r.messagesIn("CSECURITY1") {
		if strings.Contains(m.Text, "Credential") || !strings.Contains(m.Text, cst.Codename) {
			t.Errorf("security channel message %q: want the codename, never the title", m.Text)
		}
	}
	if containing(r.replies("CANNOUNCE1"), pm) != 0 || containing(r.messagesIn("CANNOUNCE1"), pm) != 0 {
		t.Errorf("confidential postmortem announced")
	}

	early := r.h.Declare(t, decl)
	r.waitFor(early.ID, events.TypeSlackChannelLinked, 1)
	pm = r.recordPostmortem(early.ID, 9)
	ch = linkOf(t, r, early.ID).Ref
	integrationtest.Eventually(t, "the link in the open channel", func() bool { return containing(r.messagesIn(ch), pm) == 1 })
	r.closeArchived(early.ID)
	if containing(r.replies("CANNOUNCE1"), pm) != 0 {
		t.Errorf("a link already in the channel was posted again in the announcement thread")
	}
}

// TestPostmortemLinkWhenArchivedByHand: a channel someone archived in
// Slack (the bot's record still says open) answers is_archived; the link
// goes to the announcement's thread instead of being dead-lettered.
func TestPostmortemLinkWhenArchivedByHand(t *testing.T) {
	r := newRig(t, "")
	st := r.h.Declare(t, incident.Declare{Title: "Search is slow", Service: "search", Severity: "SEV3", DeclaredBy: "UALICE001"})
	r.waitFor(st.ID, events.TypeSlackChannelLinked, 1)
	c := r.slack.Channels()[linkOf(t, r, st.ID).Ref]
	c.Archived = true
	r.slack.PutChannel(c)
	pm := r.recordPostmortem(st.ID, 11)
	integrationtest.Eventually(t, "the link in the announcement's thread", func() bool {
		return containing(r.replies("CANNOUNCE1"), pm) == 1
	})
}

// TestDrillPostmortemStaysInside: a drill's link after the archive goes to
// no stakeholder channel, and the projector moves on without an error.
func TestDrillPostmortemStaysInside(t *testing.T) {
	r := newRig(t, "")
	st := r.h.Declare(t, incident.Declare{Title: "Game day", Service: "payments", Severity: "SEV2", DeclaredBy: "UALICE001", Drill: true})
	r.waitFor(st.ID, events.TypeSlackChannelLinked, 1)
	r.closeArchived(st.ID)
	r.stop()
	pm := r.recordPostmortem(st.ID, 12)
	r.h.Replay(t, st.ID, r.bot.Handle)
	for _, ch := range []string{"CANNOUNCE1", "CSECURITY1"} {
		if containing(r.messagesIn(ch), pm)+containing(r.replies(ch), pm) != 0 {
			t.Errorf("drill postmortem posted in %s", ch)
		}
	}
}
