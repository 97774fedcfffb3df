package slackbot

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/incident"
	"github.com/hikeshi/hikeshi/services/integrationtest"
)

// sentText is every piece of text a call handed Slack: plain parameters,
// and the strings inside the JSON ones (blocks, metadata).
func sentText(params map[string][]string) map[string]string {
	out := map[string]string{}
	for k, vs := range params {
		for _, v := range vs {
			var j any
			if (k == "blocks" || k == "metadata") && json.Unmarshal([]byte(v), &j) == nil {
				for i, s := range jsonStrings(j) {
					out[fmt.Sprintf("%s[%d]", k, i)] = s
				}
				continue
			}
			out[k] = v
		}
	}
	return out
}

func jsonStrings(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, e := range v {
			out = append(out, jsonStrings(e)...)
		}
		return out
	case map[string]any:
		var out []string
		for _, e := range v {
			out = append(out, jsonStrings(e)...)
		}
		return out
	}
	return nil
}

// TestControlCharactersNeverReachSlack: a title with CR/LF and free text
// with terminal escapes, through a whole incident, a triage item and an
// announcement: no channel name, topic, purpose, message or block
// carries them; messages keep their line breaks.
func TestControlCharactersNeverReachSlack(t *testing.T) {
	r := newRig(t, "")
	note := integrationtest.HostileNote
	st := r.h.Declare(t, incident.Declare{Title: integrationtest.HostileTitle, Service: "payments", Severity: "SEV2",
		DeclaredBy: "UALICE001", Summary: "seen by\r\n" + note})
	r.waitFor(st.ID, events.TypeSlackChannelLinked, 1)
	for _, c := range []incident.Command{
		incident.ChangeSeverity{Severity: "SEV1", Reason: note},
		incident.UpdateStatus{Status: "resolved", Message: note},
		incident.AddNote{Text: note},
	} {
		r.h.Do(t, st.ID, c)
		r.waitPosted(st.ID)
	}
	r.h.Do(t, st.ID, incident.RecordFact{Data: &events.AnnouncementRequested{
		Channel: "CANNOUNCE1", Text: "status page: " + note, Rule: "status", Trigger: "declared", CauseID: "x"}})
	r.waitFor(st.ID, events.TypeNotifySent, 1)
	r.h.Do(t, st.ID, incident.Close{Resolution: note})
	r.waitFor(st.ID, events.TypeSlackConversationArchived, 1)
	openItem(t, r, "fp-hostile", integrationtest.HostileTitle+" "+note)
	integrationtest.Eventually(t, "the triage item posted", func() bool { return len(r.slack.Channels()["CSECURITY1"].Messages) == 1 })

	for _, c := range r.slack.Calls() {
		for field, s := range sentText(c.Params) {
			multiline := c.Method == "chat.postMessage" || c.Method == "chat.update"
			integrationtest.CheckClean(t, c.Method+" "+field, s, multiline)
			if strings.Contains(s, "Disk full\nBcc") {
				t.Errorf("%s %s: the title spans two lines: %q", c.Method, field, s)
			}
		}
	}
	ch, ok := r.slack.ChannelByName("payments-" + st.DeclaredAt.UTC().Format("20060102") + "i-disk-full-bcc-x-example-com")
	if !ok {
		t.Fatalf("no channel named from the one-line title; have %v", r.slack.Channels())
	}
	if !strings.HasPrefix(ch.Purpose, "INC-1: "+integrationtest.SafeTitle+" (") {
		t.Errorf("purpose %q", ch.Purpose)
	}
	notes := 0
	for _, m := range ch.Messages {
		if strings.Contains(m.Text, integrationtest.SafeNote) {
			notes++
		}
	}
	if notes < 4 {
		t.Errorf("%d messages keep the note's words, want at least 4 (severity, status, note, closing)", notes)
	}
}
