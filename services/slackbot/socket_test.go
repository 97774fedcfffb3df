package slackbot

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/adapters/slacktest"
	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/integrationtest"
)

// socketRig runs the bot in Socket Mode against the fake Slack's
// WebSocket; the returned function stops the loop and reports whether it
// returned.
func socketRig(t *testing.T) (*rig, func() bool) {
	t.Helper()
	r := newRig(t, "  socket_mode: true\n")
	parts := r.bot.Parts()
	if len(parts.Routes) != 0 || len(parts.Background) != 2 {
		t.Fatalf("socket mode parts: %d routes, %d loops; want no route, timekeeper and socket", len(parts.Routes), len(parts.Background))
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.bot.RunSocketMode(ctx) }()
	stop := sync.OnceValue(func() bool {
		cancel()
		select {
		case <-done:
			return true
		case <-time.After(10 * time.Second):
			return false
		}
	})
	t.Cleanup(func() { stop() })
	integrationtest.Eventually(t, "socket connected", func() bool { return r.slack.Connected() == 1 })
	return r, stop
}

// push sends an envelope and returns its acknowledgement's payload.
func push(t *testing.T, r *rig, id, typ string, payload []byte, retry int) json.RawMessage {
	t.Helper()
	if err := r.slack.Push(slacktest.Envelope{EnvelopeID: id, Type: typ, Payload: payload,
		AcceptsResponsePayload: typ != "events_api", RetryAttempt: retry}); err != nil {
		t.Fatal(err)
	}
	a, ok := r.slack.WaitAck(id, 5*time.Second)
	if !ok {
		t.Fatalf("envelope %s (%s) not acknowledged", id, typ)
	}
	return a.Payload
}

func slashPayload(text, channel, trigger string) []byte {
	b, _ := json.Marshal(map[string]string{"command": "/incident", "text": text, "user_id": "UALICE001",
		"channel_id": channel, "trigger_id": trigger, "team_id": "T0000TEST"})
	return b
}

func TestSocketModeUsesTheSameHandlersOnceEach(t *testing.T) {
	r, stop := socketRig(t)

	// events_api: the :sss: reaction, then Slack's redelivery of it.
	r.ensureChannels("CSUPPORT01")
	ts := r.slack.AddMessage("CSUPPORT01", "UCAROL001", "a customer got someone else's invoice", "")
	ev := reaction("EvSock1", "sss", "CSUPPORT01", ts)
	if a := push(t, r, "env-1", "events_api", ev, 0); len(a) != 0 {
		t.Fatalf("events_api ack carries %s", a)
	}
	push(t, r, "env-1r", "events_api", ev, 1)
	r.flagsDrained()
	if msgs := r.slack.Channels()["CSECURITY1"].Messages; len(msgs) != 1 || !strings.Contains(msgs[0].Text, "someone else's invoice") {
		t.Fatalf("security channel: %+v, want one share", msgs)
	}

	// The pushpin in an incident channel, delivered twice.
	st, ch := r.incidentChannel("Invoices go to the wrong customer")
	pinned := r.slack.AddMessage(ch, "UCAROL001", "the mailer cache was keyed by tenant name", "")
	pin := reaction("EvSockPin", "pushpin", ch, pinned)
	push(t, r, "env-2", "events_api", pin, 0)
	push(t, r, "env-2r", "events_api", pin, 2)
	if n := r.h.Count(t, st.ID, events.TypeNoteAdded); n != 1 {
		t.Fatalf("%d notes from one pinned message, want 1", n)
	}

	// slash_commands: the ephemeral answer is the ack's payload; a
	// redelivered command (same trigger) runs once.
	var answer struct {
		ResponseType string `json:"response_type"`
		Text         string `json:"text"`
	}
	if err := json.Unmarshal(push(t, r, "env-3", "slash_commands", slashPayload("help", ch, "trig-s1"), 0), &answer); err != nil ||
		answer.ResponseType != "ephemeral" || !strings.Contains(answer.Text, "postmortem") {
		t.Fatalf("help answer %+v %v", answer, err)
	}
	note := slashPayload("note customers were told at 11:00", ch, "trig-s2")
	push(t, r, "env-4", "slash_commands", note, 0)
	push(t, r, "env-4r", "slash_commands", note, 1)
	if n := r.h.Count(t, st.ID, events.TypeNoteAdded); n != 2 {
		t.Fatalf("%d notes after the redelivered command, want 2", n)
	}

	// interactive: a view_submission's field error is the ack's payload.
	var errs struct {
		ResponseAction string            `json:"response_action"`
		Errors         map[string]string `json:"errors"`
	}
	if err := json.Unmarshal(push(t, r, "env-5", "interactive", []byte(submission("VSOCK0001", "", "", "payments", "SEV2")), 0), &errs); err != nil ||
		errs.ResponseAction != "errors" || errs.Errors["title"] == "" {
		t.Fatalf("view_submission answer %+v %v", errs, err)
	}
	sub := []byte(submission("VSOCK0002", "", "Checkout fails", "payments", "SEV2"))
	push(t, r, "env-6", "interactive", sub, 0)
	push(t, r, "env-6r", "interactive", sub, 1)
	if n := r.h.Count(t, declaredFrom("VSOCK0002"), events.TypeDeclared); n != 1 {
		t.Fatalf("declared %d times, want 1", n)
	}

	// A malformed envelope is acknowledged (redelivery cannot fix it) and changes nothing.
	push(t, r, "env-7", "slash_commands", []byte(`"not an object"`), 0)

	// The socket drops: the client opens a new connection and goes on.
	r.slack.DropSockets()
	integrationtest.Eventually(t, "reconnected", func() bool { return r.slack.SocketOpens() == 2 && r.slack.Connected() == 1 })
	push(t, r, "env-8", "slash_commands", slashPayload("note still going after the reconnect", ch, "trig-s3"), 0)
	if n := r.h.Count(t, st.ID, events.TypeNoteAdded); n != 3 {
		t.Fatalf("%d notes after the reconnect, want 3", n)
	}

	if !stop() {
		t.Fatal("the socket loop did not stop with its context")
	}
	integrationtest.Eventually(t, "socket closed", func() bool { return r.slack.Connected() == 0 })
}

// A bot token cannot open a socket: the loop keeps trying (and stops on
// shutdown) rather than ending the hub.
func TestSocketModeRefusedTokenKeepsTheLoopAlive(t *testing.T) {
	r := newRig(t, "  socket_mode: true\n")
	b := *r.bot // the rig's bot has an app token; this copy has none
	b.api = newAPI(r.cfg, Deps{Token: "xoxb-test"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.RunSocketMode(ctx) }()
	integrationtest.Eventually(t, "refused", func() bool {
		for _, c := range r.slack.Calls() {
			if c.Method == "apps.connections.open" && c.Error == "not_allowed_token_type" {
				return true
			}
		}
		return false
	})
	select {
	case err := <-done:
		t.Fatalf("the loop ended: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the loop did not stop with its context")
	}
}

// An envelope that cannot be stored is not acknowledged, as HTTP would
// answer 503; Slack's redelivery, once the store is back, shares it once.
func TestSocketModeLeavesUnstoredEnvelopesUnacknowledged(t *testing.T) {
	r, _ := socketRig(t)
	r.ensureChannels("CSUPPORT01")
	ts := r.slack.AddMessage("CSUPPORT01", "UCAROL001", "admin password posted in #general", "")
	ctx := context.Background()
	if err := r.h.Bus.JS.DeleteStream(ctx, FlagStream); err != nil {
		t.Fatal(err)
	}
	ev := reaction("EvSockDown", "sss", "CSUPPORT01", ts)
	if err := r.slack.Push(slacktest.Envelope{EnvelopeID: "env-down", Type: "events_api", Payload: ev}); err != nil {
		t.Fatal(err)
	}
	if a, ok := r.slack.WaitAck("env-down", 3*time.Second); ok {
		t.Fatalf("acknowledged %+v although nothing was stored", a)
	}
	if err := ensureFlagStream(ctx, r.h.Bus.JS, 1); err != nil {
		t.Fatal(err)
	}
	r.restart() // the share projector's consumer went with the stream
	push(t, r, "env-down-r1", "events_api", ev, 1)
	push(t, r, "env-down-r2", "events_api", ev, 2)
	r.flagsDrained()
	if msgs := r.slack.Channels()["CSECURITY1"].Messages; len(msgs) != 1 {
		t.Fatalf("%d shares, want 1", len(msgs))
	}
}
