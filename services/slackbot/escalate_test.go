package slackbot

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/integrationtest"
)

func messageAction(callback, trigger, ch, ts, user, text string) string {
	b, _ := json.Marshal(map[string]any{
		"type": "message_action", "callback_id": callback, "trigger_id": trigger, "message_ts": ts,
		"user": map[string]string{"id": "UERIN0001"}, "channel": map[string]string{"id": ch},
		"message": map[string]string{"type": "message", "ts": ts, "user": user, "text": text},
	})
	return string(b)
}

func escalation(viewID, meta, title, impact, service string) string {
	input := func(v string) map[string]any { return map[string]any{"type": "plain_text_input", "value": v} }
	b, _ := json.Marshal(map[string]any{
		"type": "view_submission", "user": map[string]string{"id": "UERIN0001"},
		"view": map[string]any{"id": viewID, "callback_id": viewEscalate, "private_metadata": meta,
			"state": map[string]any{"values": map[string]any{
				"title":   map[string]any{"title": input(title)},
				"impact":  map[string]any{"impact": input(impact)},
				"service": map[string]any{"service": input(service)},
				"details": map[string]any{"details": input("from the support channel")},
			}}},
	})
	return string(b)
}

// storedSignals reads every signal on the SIGNALS stream.
func (r *rig) storedSignals() []events.Signal {
	r.t.Helper()
	return integrationtest.Data[events.Signal](r.t, integrationtest.Stream(r.t, r.h.Bus.JS, events.SignalStream))
}

func TestEscalateShortcutStoresOneEscalation(t *testing.T) {
	r := newRig(t, "")
	r.ensureChannels("CSUPPORT01")
	text := "Customer ACME sees other tenants' orders\nticket #4411"
	ts := r.slack.AddMessage("CSUPPORT01", "UCAROL001", text, "")

	// Another app's shortcut opens nothing; ours opens the modal pre-filled.
	if code, body := r.interact(messageAction("other", "trig-o", "CSUPPORT01", ts, "UCAROL001", text)); code != http.StatusOK {
		t.Fatalf("other shortcut: %d %s", code, body)
	}
	if code, body := r.interact(messageAction("escalate", "trig-e", "CSUPPORT01", ts, "UCAROL001", text)); code != http.StatusOK {
		t.Fatalf("shortcut: %d %s", code, body)
	}
	views := r.openedViews()
	if len(views) != 1 || views[0].View.CallbackID != viewEscalate || views[0].Trigger != "trig-e" {
		t.Fatalf("opened views %+v, want the escalation modal once", views)
	}
	v := views[0]
	var meta escalateMeta
	if err := json.Unmarshal([]byte(v.View.PrivateMetadata), &meta); err != nil || meta.Link == "" || meta.TS != ts {
		t.Fatalf("private_metadata %q: %v", v.View.PrivateMetadata, err)
	}
	if v.initial("title") != "Customer ACME sees other tenants' orders" || !strings.Contains(v.initial("details"), meta.Link) ||
		!strings.Contains(v.initial("details"), "ticket #4411") {
		t.Fatalf("pre-filled title %q, details %q", v.initial("title"), v.initial("details"))
	}

	// No customer impact: the field says so, and nothing is stored.
	var answer struct {
		ResponseAction string            `json:"response_action"`
		Errors         map[string]string `json:"errors"`
	}
	code, body := r.interact(escalation("VESC00000", v.View.PrivateMetadata, "Orders leak", "", ""))
	if code != http.StatusOK || json.Unmarshal([]byte(body), &answer) != nil || answer.Errors["impact"] == "" {
		t.Fatalf("no impact: %d %s", code, body)
	}
	// A forged submission is refused before it is read.
	sub := escalation("VESC00001", v.View.PrivateMetadata, "Orders leak", "ACME sees other tenants' orders", "orders")
	if code := r.send("/slack/interactivity", []byte(url.Values{"payload": {sub}}.Encode()), r.clock.Now().Unix(), "v0=forged", nil); code != http.StatusUnauthorized {
		t.Fatalf("forged: %d", code)
	}
	if s := r.storedSignals(); len(s) != 0 {
		t.Fatalf("stored %+v before a valid submission", s)
	}

	// The submission and Slack's retry of it store one escalation.
	for range 2 {
		code, body := r.interact(sub)
		if code != http.StatusOK || !strings.Contains(body, `"response_action":"update"`) {
			t.Fatalf("submission: %d %s", code, body)
		}
	}
	sigs := r.storedSignals()
	if len(sigs) != 1 {
		t.Fatalf("%d signals stored, want 1", len(sigs))
	}
	s := sigs[0]
	if s.Source != "escalation" || s.Kind != "escalation" || s.Fingerprint != "slack:VESC00001" || s.CustomerImpact != "ACME sees other tenants' orders" ||
		s.Service != "orders" || s.ReportedBy != "<@UERIN0001>" || len(s.Links) != 1 || s.Links[0].URL != meta.Link ||
		s.GroupKey != "escalation/slack:VESC00001" || s.StartsAt.Unix() != meta.At {
		t.Fatalf("stored escalation %+v", s)
	}
}
