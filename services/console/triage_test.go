package console_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/access"
	"github.com/hikeshi/hikeshi/services/hub"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// openTriage opens a triage item on the hub's TRIAGE stream, as the
// signals module does for an escalation, and returns its key.
func openTriage(t *testing.T, h *hub.Hub, ticket, title string) string {
	t.Helper()
	key := events.TriageKey("zendesk", ticket)
	env, err := events.New(key, &events.TriageOpened{Key: key, Source: "zendesk", Fingerprint: ticket, Title: title,
		Summary: "Customers see other customers' invoices", ReportedBy: "helpdesk", ReportedAt: time.Now(),
		CustomerImpact: "data exposure", Service: "billing", Severity: "high"}, events.Meta{ID: events.DeriveID("triage-opened", key), Actor: "signals"})
	if err != nil {
		t.Fatal(err)
	}
	data, _ := env.Marshal()
	m := nats.NewMsg(events.TriageSubject(key))
	m.Data = data
	if _, err := h.Bus().JS.PublishMsg(context.Background(), m, jetstream.WithExpectLastSequencePerSubject(0)); err != nil {
		t.Fatal(err)
	}
	return key
}

// lastTriage is the type and data of item k's last message.
func lastTriage(t *testing.T, h *hub.Hub, k string) (string, events.Data) {
	t.Helper()
	m, err := natsjs.LastTriage(context.Background(), h.Bus().JS, k)
	if err != nil {
		t.Fatal(err)
	}
	env, err := events.Unmarshal(m.Data)
	if err != nil {
		t.Fatal(err)
	}
	d, err := env.Decode()
	if err != nil {
		t.Fatal(err)
	}
	return env.Type, d
}

// TestTriageFromTheDashboard: the dashboard lists the open escalations;
// one is dismissed with a reason (required, said next to the field), one
// is accepted through the declare form filled from it, and each decision
// lands on the item as the Slack module's would; an item decided cannot
// be decided again.
func TestTriageFromTheDashboard(t *testing.T) {
	base, h := startHubBus(t, hub.Config{})
	leak := openTriage(t, h, "T-100", "Invoices of other customers shown")
	noise := openTriage(t, h, "T-101", "Printer offline")
	b := newBrowser(t, base)
	dash := b.get("/dashboard")
	if !strings.Contains(dash.Body, "Invoices of other customers shown") || !strings.Contains(dash.Body, "Printer offline") {
		t.Fatalf("triage queue:\n%s", dash.Body)
	}
	formKey := regexp.MustCompile(`action="/triage/` + noise + `/dismiss"[^>]*>\s*<input type="hidden" name="csrf" value="[^"]+"><input type="hidden" name="key" value="([^"]+)">`).FindStringSubmatch(dash.Body)
	if formKey == nil {
		t.Fatal("no dismiss form")
	}

	// Dismiss without a reason: refused, said next to the field.
	p := b.submit(dash, "/triage/"+noise+"/dismiss", url.Values{"reason": {" "}, "key": {formKey[1]}})
	if p.Status != http.StatusBadRequest || !strings.Contains(p.Body, `id="err-reason-`+noise+`" role="alert">Reason is required`) {
		t.Fatalf("dismiss without reason: %d", p.Status)
	}
	if typ, _ := lastTriage(t, h, noise); typ != events.TypeTriageOpened {
		t.Fatalf("a refused dismissal recorded %s", typ)
	}
	p = b.submit(dash, "/triage/"+noise+"/dismiss", url.Values{"reason": {"not a security matter"}, "key": {formKey[1]}})
	if p.Status != 200 || p.URL != "/dashboard" || strings.Contains(p.Body, "Printer offline") {
		t.Fatalf("dismissed: %d at %s", p.Status, p.URL)
	}
	typ, d := lastTriage(t, h, noise)
	if dis, ok := d.(*events.TriageDismissed); typ != events.TypeTriageDismissed || !ok || dis.Reason != "not a security matter" || dis.DismissedBy != access.LocalOperator().ID {
		t.Fatalf("dismissal recorded as %s %+v", typ, d)
	}

	// Accept: the declare form starts from the item.
	form := b.get("/declare?triage=" + leak)
	if !strings.Contains(form.Body, `value="Invoices of other customers shown"`) || !strings.Contains(form.Body, `value="billing"`) ||
		!strings.Contains(form.Body, `name="triage" value="`+leak+`"`) {
		t.Fatalf("declare form from the item:\n%s", form.Body)
	}
	key := regexp.MustCompile(`name="key" value="([^"]+)"`).FindStringSubmatch(form.Body)[1]
	p = b.submit(form, "/declare", url.Values{"title": {"Invoices of other customers shown"}, "service": {"billing"}, "severity": {"SEV1"},
		"confidential": {"on"}, "key": {key}, "triage": {leak}})
	if p.Status != 200 || p.URL != "/incidents/INC-1" {
		t.Fatalf("accepted: %d at %s\n%s", p.Status, p.URL, p.Body)
	}
	typ, d = lastTriage(t, h, leak)
	if acc, ok := d.(*events.TriageAccepted); typ != events.TypeTriageAccepted || !ok || acc.CaseNumber != "INC-1" {
		t.Fatalf("acceptance recorded as %s %+v", typ, d)
	}
	eventually(t, "the acceptance on the incident's timeline", func() bool {
		return strings.Contains(b.get("/incidents/INC-1").Body, "Declared from an escalation in the triage queue")
	})
	if strings.Contains(b.get("/dashboard").Body, `id="triage-`+leak+`"`) {
		t.Error("an accepted item is still in the queue")
	}

	// Decided items cannot be decided again.
	p = b.submit(dash, "/triage/"+leak+"/dismiss", url.Values{"reason": {"late"}, "key": {"another"}})
	if p.Status != http.StatusConflict || !strings.Contains(p.Body, "already decided") {
		t.Errorf("dismissing an accepted item: %d", p.Status)
	}
	p = b.submit(form, "/declare", url.Values{"title": {"Again"}, "service": {"billing"}, "severity": {"SEV1"}, "key": {"other"}, "triage": {leak}})
	if p.Status != http.StatusConflict || !strings.Contains(p.Body, "already decided meanwhile; nothing was declared") {
		t.Errorf("accepting an accepted item: %d", p.Status)
	}
	if n := incidentCount(t, base); n != 1 {
		t.Errorf("%d incidents", n)
	}
}
