package notify_test

import (
	"strings"
	"testing"

	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/incident"
	"github.com/hikeshi/hikeshi/services/integrationtest"
	"github.com/hikeshi/hikeshi/services/notify"
	"github.com/hikeshi/hikeshi/services/projection"
)

// announcements returns the Slack announcements requested on incident id.
func announcements(t *testing.T, h *integrationtest.Hub, id string) []events.AnnouncementRequested {
	t.Helper()
	var out []events.AnnouncementRequested
	for _, s := range h.Events(t, id) {
		if s.Type == events.TypeSlackAnnouncementRequested {
			d, err := s.Decode()
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, *d.(*events.AnnouncementRequested))
		}
	}
	return out
}

// TestSlackRecipientsAskTheSlackModule: a slack recipient is an
// announcement request on the incident, once per rule, recipient and
// event; confidential incidents reach only security channels and by
// codename, drills only drill channels.
func TestSlackRecipientsAskTheSlackModule(t *testing.T) {
	h := integrationtest.New(t, `notify:
  recipients:
    ops: {slack: CANNOUNCE1}
    sec: {slack: CSECURITY1, security: true}
    drills: {slack: drill-room, drill: true}
  rules:
    - {name: everything, on: [declared, escalated], to: [ops, sec, drills]}
    - {name: customers, on: [declared], template: external, severity: SEV2, to: [ops]}
`)
	cfg, sec, err := notify.Load(h.Env.Config)
	if err != nil {
		t.Fatal(err)
	}
	p, err := notify.New(cfg, sec, h.Env, notify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	stop := h.Run(t, []projection.Projector{p.Projector()})
	defer stop()

	plain := h.Declare(t, incident.Declare{Title: "Card payments failing", Service: "payments", Severity: "SEV2", DeclaredBy: "alice"})
	h.Do(t, plain.ID, incident.ChangeSeverity{Severity: "SEV1", Reason: "all cards"})
	secret := h.Declare(t, incident.Declare{Title: "Token leak in build logs", Service: "auth", Severity: "SEV1", Confidential: true, DeclaredBy: "carol"})
	drill := h.Declare(t, incident.Declare{Title: "Game day", Service: "search", Severity: "SEV3", Drill: true, DeclaredBy: "dave"})
	integrationtest.Eventually(t, "requests", func() bool {
		return len(announcements(t, h, plain.ID)) == 7 && len(announcements(t, h, secret.ID)) == 1 && len(announcements(t, h, drill.ID)) == 1
	})
	h.Replay(t, plain.ID, p.Handle)
	h.Replay(t, secret.ID, p.Handle)
	if n := len(announcements(t, h, plain.ID)); n != 7 {
		t.Fatalf("%d requests after a redelivery, want 7 (declared: 3 + 1 external; escalated: 3)", n)
	}
	got := map[string]events.AnnouncementRequested{}
	for _, a := range announcements(t, h, plain.ID) {
		got[a.Rule+"/"+a.Recipient+"/"+a.Trigger] = a
	}
	esc := got["everything/ops/escalated"]
	if esc.Channel != "CANNOUNCE1" || !strings.Contains(esc.Text, "INC-1 Card payments failing") ||
		!strings.Contains(esc.Text, "escalated from SEV2 to SEV1") || !strings.Contains(esc.Text, "Reason: all cards") || esc.CauseID == "" {
		t.Errorf("escalation request %+v", esc)
	}
	if ext := got["customers/ops/declared"]; !strings.Contains(ext.Text, "We are investigating an incident") || strings.Contains(ext.Text, "INC-1") {
		t.Errorf("external request %+v", ext)
	}
	c := announcements(t, h, secret.ID)[0]
	st := h.Do(t, secret.ID, incident.AddNote{Text: "read the codename"})
	if c.Channel != "CSECURITY1" || !strings.Contains(c.Text, st.Codename) || strings.Contains(c.Text, "Token leak") || strings.Contains(c.Text, "auth") {
		t.Errorf("confidential request %+v (codename %s)", c, st.Codename)
	}
	if d := announcements(t, h, drill.ID)[0]; d.Channel != "drill-room" || !strings.Contains(d.Text, "[DRILL]") {
		t.Errorf("drill request %+v", d)
	}
}

func TestSlackRecipientConfig(t *testing.T) {
	for _, bad := range []string{"{slack: '#ops'}", "{slack: CANNOUNCE1, email: ops@acme.test}"} {
		h := integrationtest.New(t, "notify:\n  recipients:\n    ops: "+bad+"\n  rules:\n    - {name: r, on: [declared], to: [ops]}\n")
		if _, _, err := notify.Load(h.Env.Config); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}
