package slackbot

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/hikeshi/hikeshi/adapters/slacksign"
	"github.com/hikeshi/hikeshi/adapters/slacktest"
	"github.com/hikeshi/hikeshi/services/integrationtest"
)

func (r *rig) send(path string, body []byte, ts int64, sig string, hdr map[string]string) int {
	req := httptest.NewRequest("POST", path, bytes.NewReader(body))
	stamp := strconv.FormatInt(ts, 10)
	if sig == "" {
		sig = slacksign.Sign(secret, stamp, body)
	}
	req.Header.Set(slacksign.HeaderTimestamp, stamp)
	req.Header.Set(slacksign.HeaderSignature, sig)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	r.bot.Parts().Routes["POST "+path].ServeHTTP(w, req)
	return w.Code
}

func reaction(eventID, reaction, ch, ts string) []byte {
	return []byte(`{"type":"event_callback","event_id":"` + eventID + `","event":{"type":"reaction_added","user":"UDAVE0001","reaction":"` +
		reaction + `","item_user":"UCAROL001","item":{"type":"message","channel":"` + ch + `","ts":"` + ts + `"}}}`)
}

func TestSSSSharedOncePerMessageAndForgeriesAppendNothing(t *testing.T) {
	r := newRig(t, "")
	r.ensureChannels("CSUPPORT01")
	ts := r.slack.AddMessage("CSUPPORT01", "UCAROL001", "customers see password reset mails they never asked for", "")
	now := r.clock.Now().Unix()
	body := reaction("Ev001", "sss", "CSUPPORT01", ts)
	for i, c := range []struct {
		body []byte
		ts   int64
		sig  string
		want int
	}{
		{body, now, "v0=" + string(bytes.Repeat([]byte("0"), 64)), http.StatusUnauthorized},
		{body, now - 301, "", http.StatusUnauthorized},
		{[]byte(`{"type":`), now, "", http.StatusBadRequest},
		{body, now, "", http.StatusOK},
		{body, now, "", http.StatusOK},                                       // Slack's retry of the same event
		{reaction("Ev002", "sss", "CSUPPORT01", ts), now, "", http.StatusOK}, // someone else reacts too
	} {
		if got := r.send("/slack/events", c.body, c.ts, c.sig, map[string]string{"X-Slack-Retry-Num": strconv.Itoa(i)}); got != c.want {
			t.Errorf("request %d: status %d, want %d", i, got, c.want)
		}
	}
	r.flagsDrained()
	if n := len(r.slack.Channels()["CSECURITY1"].Messages); n != 1 {
		t.Fatalf("%d shares in the security channel, want 1", n)
	}
	if n := r.slack.Count("chat.getPermalink"); n != 1 {
		t.Fatalf("%d permalink look-ups, want 1", n)
	}
	// url_verification answers the challenge only when signed.
	ch := []byte(`{"type":"url_verification","challenge":"abc"}`)
	if got := r.send("/slack/events", ch, now, "", nil); got != http.StatusOK {
		t.Fatalf("url_verification: %d", got)
	}
	if got := r.send("/slack/commands", []byte("command=%2Fincident&text=help&user_id=U1&trigger_id=t1"), now, "v0=bad", nil); got != http.StatusUnauthorized {
		t.Fatalf("forged command: %d", got)
	}
}

// flagsDrained waits until the share projector has handled every stored
// flag.
func (r *rig) flagsDrained() {
	r.t.Helper()
	integrationtest.Eventually(r.t, "flags shared", func() bool {
		return integrationtest.CaughtUp(r.h.Bus.JS, FlagStream, FlagDurable, ">")
	})
}

// The reaction is acknowledged once stored; a process that dies before
// sharing it shares it when it starts again, once.
func TestSSSAcknowledgedBeforeTheShareAndSharedAfterARestart(t *testing.T) {
	r := newRig(t, "")
	r.ensureChannels("CSUPPORT01")
	ts := r.slack.AddMessage("CSUPPORT01", "UCAROL001", "an unknown admin logged in from abroad", "")
	r.stop() // the projectors are down: only the endpoint runs
	r.slack.Fail("chat.postMessage", slacktest.Fault{Status: 429, RetryAfter: 30})
	for _, id := range []string{"EvA", "EvA", "EvB"} {
		if got := r.send("/slack/events", reaction(id, "sss", "CSUPPORT01", ts), r.clock.Now().Unix(), "", nil); got != http.StatusOK {
			t.Fatalf("%s: %d", id, got)
		}
	}
	if n := len(r.slack.Calls()); n != 0 {
		t.Fatalf("the endpoint called Slack %d times before answering", n)
	}
	s, err := r.h.Bus.JS.Stream(context.Background(), FlagStream)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := s.Info(context.Background()); err != nil || info.State.Msgs != 1 {
		t.Fatalf("stored flags: %+v %v, want 1", info, err)
	}
	r.start()
	r.flagsDrained()
	msgs := r.slack.Channels()["CSECURITY1"].Messages
	if len(msgs) != 1 || !strings.Contains(msgs[0].Text, "an unknown admin logged in") || !strings.Contains(msgs[0].Text, "<@UDAVE0001>") {
		t.Fatalf("security channel: %+v", msgs)
	}
	// A later reaction, after the share, is refused by the stream and shares nothing.
	r.send("/slack/events", reaction("EvC", "sss", "CSUPPORT01", ts), r.clock.Now().Unix(), "", nil)
	r.flagsDrained()
	if n := len(r.slack.Channels()["CSECURITY1"].Messages); n != 1 {
		t.Fatalf("%d shares", n)
	}
}

func FuzzParsePayloads(f *testing.F) {
	f.Add(reaction("Ev1", "sss", "C1", "1.1"))
	f.Add([]byte(`{"type":"url_verification","challenge":"x"}`))
	f.Add([]byte(`payload=%7B%22type%22%3A%22block_actions%22%2C%22user%22%3A%7B%22id%22%3A%22U1%22%7D%7D`))
	f.Add([]byte(`{"type":"message_action","callback_id":"escalate","user":{"id":"U1"},"message":{"ts":"1.1","text":"x"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		env, ev, err := parseEvent(b)
		if err == nil && env.Type == "event_callback" && ev != nil && (ev.Item.Channel == "" || ev.User == "") {
			t.Fatalf("accepted an incomplete reaction: %+v", ev)
		}
		if cb, err := parseInteraction(b); err == nil && cb.User.ID == "" {
			t.Fatalf("accepted an interaction without a user")
		}
	})
}
