package slackbot

import (
	"net/http"
	"testing"

	"github.com/hikeshi/hikeshi/adapters/slacktest"
	"github.com/hikeshi/hikeshi/events"
)

// TestSlackUsersAreRecordedAsThemselves: with map_users_by_email, a
// slash command, a modal and a reaction are recorded as the person of the
// Slack user's e-mail (their name, and the Slack id as via), never as the
// bot; a user Slack cannot describe is still recorded by Slack id.
func TestSlackUsersAreRecordedAsThemselves(t *testing.T) {
	r := newRig(t, "  map_users_by_email: true\n")
	r.slack.AddUser(slacktest.User{ID: "UBOB00001", Name: "bob", RealName: "Bob Builder", Email: "Bob@Example.com"})
	r.slack.AddUser(slacktest.User{ID: "UALICE001", Name: "alice", RealName: "Alice Liddell", Email: "alice@example.com"})
	r.slack.AddUser(slacktest.User{ID: "UDAVE0001", Name: "dave", RealName: "Dave Null"}) // no e-mail visible
	st, ch := r.incidentChannel("Search is slow")

	r.slash("UBOB00001", ch, "note the cache is cold", "trig-who-1")
	ts := r.slack.AddMessage(ch, "UCAROL001", "the index rebuild started at 10:02", "")
	if code, body := r.call("/slack/events", reaction("EvWho1", "pushpin", ch, ts)); code != http.StatusOK {
		t.Fatalf("reaction: %d %s", code, body)
	}
	r.slash("UNOBODY01", ch, "note from a stranger", "trig-who-2")
	code, body := r.interact(submission("VWHO00001", "", "Checkout down", "payments", "SEV2"))
	if code != http.StatusOK {
		t.Fatalf("modal: %d %s", code, body)
	}

	want := []struct{ actor, name, via string }{
		{"person:bob@example.com", "Bob Builder", "slack:UBOB00001"},
		{"UDAVE0001", "Dave Null", ""},
		{"UNOBODY01", "", ""},
	}
	var notes []events.Stored
	for _, e := range r.h.Events(t, st.ID) {
		if e.Type == events.TypeNoteAdded {
			notes = append(notes, e)
		}
	}
	if len(notes) != len(want) {
		t.Fatalf("%d notes, want %d", len(notes), len(want))
	}
	for i, w := range want {
		if e := notes[i]; e.Actor != w.actor || e.ActorName != w.name || e.Via != w.via {
			t.Errorf("note %d: actor %q name %q via %q; want %+v", i, e.Actor, e.ActorName, e.Via, w)
		}
	}
	var declared *events.Stored
	for _, e := range r.h.Events(t, declaredFrom("VWHO00001")) {
		if e.Type == events.TypeDeclared {
			declared = &e
		}
	}
	if declared == nil || declared.Actor != "person:alice@example.com" || declared.ActorName != "Alice Liddell" || declared.Via != "slack:UALICE001" {
		t.Fatalf("modal declaration recorded as %+v", declared)
	}
}
