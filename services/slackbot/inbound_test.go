package slackbot

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/hikeshi/hikeshi/adapters/slacksign"
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
	if n := len(r.slack.Channels()["CSECURITY1"].Messages); n != 1 {
		t.Fatalf("%d shares in the security channel, want 1", n)
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

func FuzzParsePayloads(f *testing.F) {
	f.Add(reaction("Ev1", "sss", "C1", "1.1"))
	f.Add([]byte(`{"type":"url_verification","challenge":"x"}`))
	f.Add([]byte(`payload=%7B%22type%22%3A%22block_actions%22%2C%22user%22%3A%7B%22id%22%3A%22U1%22%7D%7D`))
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
