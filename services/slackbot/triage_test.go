package slackbot

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/integrationtest"
	"github.com/nats-io/nats.go"
)

// openItem publishes a triage item as the signals module does.
func openItem(t *testing.T, r *rig, fingerprint, title string) string {
	t.Helper()
	k := events.TriageKey("escalation", fingerprint)
	id := events.DeriveID("triage-opened", k)
	env, err := events.New(k, &events.TriageOpened{Key: k, Source: "escalation", Fingerprint: fingerprint, Title: title,
		ReportedBy: "support: Erin", ReportedAt: time.Date(2026, 4, 2, 8, 2, 55, 0, time.UTC),
		CustomerImpact: "orders of other customers shown", Service: "orders", Severity: "critical"},
		events.Meta{ID: id, Actor: "signals", Time: r.clock.Now()})
	if err != nil {
		t.Fatal(err)
	}
	data, _ := env.Marshal()
	m := nats.NewMsg(events.TriageSubject(k))
	m.Data = data
	m.Header.Set(nats.MsgIdHdr, id)
	if _, err := r.h.Bus.JS.PublishMsg(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	return k
}

func dismissal(viewID, k, reason string) string {
	b, _ := json.Marshal(map[string]any{
		"type": "view_submission", "user": map[string]string{"id": "UBOB00001"},
		"view": map[string]any{"id": viewID, "callback_id": viewDismiss, "private_metadata": k,
			"state": map[string]any{"values": map[string]any{"reason": map[string]any{"reason": map[string]any{"type": "plain_text_input", "value": reason}}}}},
	})
	return string(b)
}

func (r *rig) triageTypes(k string) []string {
	r.t.Helper()
	var out []string
	for _, e := range integrationtest.Stream(r.t, r.h.Bus.JS, events.TriageStream) {
		if e.Subject == events.TriageSubject(k) {
			out = append(out, e.Type)
		}
	}
	return out
}

// TestTriageAcceptAndDismissFromSlack: each item is posted once to the
// security channel; Accept opens the declare form pre-filled and its
// submission declares one incident linked both ways; Dismiss records who
// and why; retries change nothing and a decided item takes no second
// decision.
func TestTriageAcceptAndDismissFromSlack(t *testing.T) {
	r := newRig(t, "")
	k1 := openItem(t, r, "ZD-1", "Customers see other customers' orders")
	k2 := openItem(t, r, "ZD-2", "Password reset mails not arriving")
	integrationtest.Eventually(t, "items posted", func() bool {
		return containing(r.messagesIn("CSECURITY1"), "Escalation for triage") == 2
	})
	r.restart()
	if v, ok := r.buttonValue("CSECURITY1", actionTriageAccept); !ok || (v != k1 && v != k2) {
		t.Fatalf("accept button %q %v", v, ok)
	}

	// Accept: the declare form, pre-filled from the item.
	if code, body := r.interact(blockAction(actionTriageAccept, k1, "trig-acc")); code != http.StatusOK {
		t.Fatalf("accept: %d %s", code, body)
	}
	views := r.openedViews()
	v := views[len(views)-1]
	if v.View.CallbackID != viewDeclare || v.View.PrivateMetadata != triageMeta+k1 ||
		v.initial("title") != "Customers see other customers' orders" || v.initial("service") != "orders" ||
		!strings.Contains(v.initial("summary"), "orders of other customers shown") {
		t.Fatalf("declare form %+v", v)
	}
	for range 2 { // the submission and Slack's retry of it
		if code, body := r.interact(submission("VTRIAGE01", triageMeta+k1, "Order history leak", "orders", "SEV1", "confidential")); code != http.StatusOK || body != "" {
			t.Fatalf("submission: %d %q", code, body)
		}
	}
	id := declaredFrom("VTRIAGE01")
	if n := r.h.Count(t, id, events.TypeDeclared); n != 1 {
		t.Fatalf("declared %d times", n)
	}
	if n := r.h.Count(t, id, events.TypeTriageAccepted); n != 1 {
		t.Fatalf("triage_accepted on the incident %d times", n)
	}
	if got := strings.Join(r.triageTypes(k1), ","); got != events.TypeTriageOpened+","+events.TypeTriageAccepted {
		t.Fatalf("item 1: %s", got)
	}
	// A second accept of the decided item declares nothing.
	code, body := r.interact(submission("VTRIAGE02", triageMeta+k1, "Order history leak", "orders", "SEV1"))
	if code != http.StatusOK || !strings.Contains(body, "already decided") {
		t.Fatalf("second accept: %d %q", code, body)
	}
	if n := r.h.Count(t, declaredFrom("VTRIAGE02"), events.TypeDeclared); n != 0 {
		t.Fatal("a decided item declared a second incident")
	}

	// Dismiss: a reason is required; the decision lands once.
	if code, _ := r.interact(blockAction(actionTriageDismiss, k2, "trig-dis")); code != http.StatusOK {
		t.Fatalf("dismiss button: %d", code)
	}
	if views := r.openedViews(); views[len(views)-1].View.CallbackID != viewDismiss {
		t.Fatalf("dismiss opened %+v", views[len(views)-1])
	}
	if _, body := r.interact(dismissal("VDISMISS1", k2, " ")); !strings.Contains(body, "errors") {
		t.Fatalf("empty reason: %q", body)
	}
	for range 2 {
		if code, body := r.interact(dismissal("VDISMISS2", k2, "known mail provider delay")); code != http.StatusOK || body != "" {
			t.Fatalf("dismissal: %d %q", code, body)
		}
	}
	if _, body := r.interact(dismissal("VDISMISS3", k2, "again")); !strings.Contains(body, "already decided") {
		t.Fatalf("second dismissal: %q", body)
	}
	if got := strings.Join(r.triageTypes(k2), ","); got != events.TypeTriageOpened+","+events.TypeTriageDismissed {
		t.Fatalf("item 2: %s", got)
	}
	integrationtest.Eventually(t, "decisions shown", func() bool {
		ms := r.messagesIn("CSECURITY1")
		return containing(ms, "Accepted by <@UALICE001>") == 1 && containing(ms, "Dismissed by <@UBOB00001>: known mail provider delay") == 1
	})
	if _, ok := r.buttonValue("CSECURITY1", actionTriageAccept); ok {
		t.Fatal("a decided item still has its buttons")
	}
	if n := containing(r.messagesIn("CSECURITY1"), "Escalation for triage"); n != 2 {
		t.Fatalf("%d item messages after a restart", n)
	}
}
