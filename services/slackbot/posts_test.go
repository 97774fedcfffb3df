package slackbot

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/adapters/slacktest"
	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/incident"
)

// postedUnder returns the messages in channel ch whose metadata names
// effect key k.
func (r *rig) postedUnder(ch, k string) []slacktest.Message {
	var out []slacktest.Message
	for _, m := range r.slack.Channels()[ch].Messages {
		var md struct {
			EventType    string         `json:"event_type"`
			EventPayload map[string]any `json:"event_payload"`
		}
		if json.Unmarshal([]byte(m.Metadata), &md) == nil && md.EventType == metadataType && md.EventPayload["key"] == k {
			out = append(out, m)
		}
	}
	return out
}

// checkPostedOnce fails unless exactly one message in ch carries key k and
// the ledger recorded its ts.
func (r *rig) checkPostedOnce(ch, k string) string {
	r.t.Helper()
	ms := r.postedUnder(ch, k)
	if len(ms) != 1 {
		r.t.Fatalf("%d messages posted under %s, want 1", len(ms), k)
	}
	var ts string
	if ok, err := r.bot.effects.Get(context.Background(), k, &ts); err != nil || !ok || ts != ms[0].TS {
		r.t.Fatalf("ledger has ts %q (recorded %v, err %v) for %s, the message is %s", ts, ok, err, k, ms[0].TS)
	}
	return ts
}

func lastOfType(t *testing.T, r *rig, id, typ string) events.Stored {
	t.Helper()
	var found events.Stored
	for _, e := range r.h.Events(t, id) {
		if e.Type == typ {
			found = e
		}
	}
	if found.ID == "" {
		t.Fatalf("no %s", typ)
	}
	return found
}

// Slack posts the message and the answer is lost (a 5xx, a dropped
// connection): the next attempt finds the message instead of posting it
// again, for the kickoff, a status update and the closing summary.
func TestAcceptedPostWithLostAnswerIsNotRepeated(t *testing.T) {
	r := newRig(t, "")
	r.slack.Fail("chat.postMessage", slacktest.Fault{Status: 500, Accepted: true})
	st := r.h.Declare(t, incident.Declare{Title: "Search down", Service: "search", Severity: "SEV3", DeclaredBy: "UALICE001"})
	r.waitFor(st.ID, events.TypeSlackChannelLinked, 1)
	ch := mustLink(t, r, st.ID)
	kickoff := r.checkPostedOnce(ch, key(lastOfType(t, r, st.ID, events.TypeDeclared), "kickoff"))
	if pins := r.slack.Channels()[ch].Pins; len(pins) != 1 || pins[0] != kickoff {
		t.Fatalf("pins %v, want the kickoff %s", pins, kickoff)
	}

	r.slack.Fail("chat.postMessage", slacktest.Fault{Drop: true, Accepted: true})
	r.h.Do(t, st.ID, incident.UpdateStatus{Status: "resolved", Message: "index rebuilt"})
	r.waitPosted(st.ID)
	r.checkPostedOnce(ch, key(lastOfType(t, r, st.ID, events.TypeStatusUpdated), "post"))

	r.slack.Fail("chat.postMessage", slacktest.Fault{Status: 502, Accepted: true})
	r.h.Do(t, st.ID, incident.Close{Resolution: "rebuilt the index", LessonsLearned: "alert on index lag"})
	r.waitFor(st.ID, events.TypeSlackConversationArchived, 1)
	r.checkPostedOnce(ch, key(lastOfType(t, r, st.ID, events.TypeClosed), "post"))

	// Nothing else was posted twice either: kickoff, guidance, request,
	// announcement, status update, closing summary.
	seen := map[string]int{}
	for _, c := range r.slack.Channels() {
		for _, m := range c.Messages {
			if m.Metadata != "" {
				seen[m.Metadata]++
			}
		}
	}
	for md, n := range seen {
		if n != 1 {
			t.Errorf("%d messages with metadata %s", n, md)
		}
	}
	if len(seen) != 6 {
		t.Errorf("%d messages posted, want 6", len(seen))
	}
	looked := 0
	for _, c := range r.slack.Calls() {
		if c.Method == "conversations.history" && c.Params.Get("include_all_metadata") == "1" && c.Params.Get("oldest") != "" {
			looked++
		}
	}
	if looked != 3 {
		t.Errorf("%d look-ups, want one per lost answer", looked)
	}
}

// A crash after Slack took the message and before the ledger recorded it:
// the marker is there, the record is not. The redelivery looks the
// message up, records its ts and posts nothing.
func TestCrashBetweenPostAndRecordPostsOnce(t *testing.T) {
	r := newRig(t, "")
	st := r.h.Declare(t, incident.Declare{Title: "Search down", Service: "search", Severity: "SEV3", DeclaredBy: "UALICE001"})
	r.waitFor(st.ID, events.TypeSlackChannelLinked, 1)
	r.h.Do(t, st.ID, incident.UpdateStatus{Status: "identified", Message: "index rebuilt"})
	r.waitPosted(st.ID)
	r.stop()
	ch := mustLink(t, r, st.ID)
	k := key(lastOfType(t, r, st.ID, events.TypeStatusUpdated), "post")
	ts := r.checkPostedOnce(ch, k)

	ctx := context.Background()
	ledger, err := r.h.Bus.JS.KeyValue(ctx, natsjs.EffectsBucket)
	if err != nil {
		t.Fatal(err)
	}
	if err := ledger.Purge(ctx, k); err != nil {
		t.Fatal(err)
	}
	if _, err := r.bot.state.Get(ctx, pendingKey(k)); err != nil {
		t.Fatalf("the attempt left no marker: %v", err)
	}
	before := r.counts()
	r.h.Replay(t, st.ID, r.bot.Handle)
	after := r.counts()
	if after["chat.postMessage"] != before["chat.postMessage"] || after["conversations.history"] != before["conversations.history"]+1 {
		t.Fatalf("calls before %v, after %v: want one look-up and no post", before, after)
	}
	if got := r.checkPostedOnce(ch, k); got != ts {
		t.Fatalf("recorded %s, the message is %s", got, ts)
	}
}
