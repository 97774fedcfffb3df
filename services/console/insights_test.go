package console_test

import (
	"encoding/csv"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/services/hub"
)

// TestInsights: the time to each milestone is computed from the events,
// per week and severity and service, drills left out, as charts and as a
// CSV download.
func TestInsights(t *testing.T) {
	base := startHub(t, hub.Config{})
	declare := func(title, service, sev string, drill bool) {
		api(t, base, "POST", "/api/v1/incidents", map[string]any{"title": title, "service": service, "severity": sev, "drill": drill})
	}
	declare("Checkout down", "payments", "SEV2", false)
	declare("Refunds slow", "payments", "SEV2", false)
	declare("Game day", "payments", "SEV1", true)
	for _, c := range []struct{ path, body string }{
		{"commander", `{"user":"alice"}`}, {"status", `{"status":"monitoring"}`}, {"status", `{"status":"resolved"}`}, {"close", `{"resolution":"rolled back"}`},
	} {
		r, _ := http.NewRequest(http.MethodPost, base+"/api/v1/incidents/INC-1/"+c.path, strings.NewReader(c.body))
		r.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(r)
		if err != nil || res.StatusCode != 200 {
			t.Fatalf("%s: %v %v", c.path, err, res)
		}
		res.Body.Close()
	}
	api(t, base, "POST", "/api/v1/incidents/INC-3/commander", map[string]string{"user": "bob"})
	b := newBrowser(t, base)
	y, w := time.Now().UTC().ISOWeek()
	week := fmt.Sprintf("%d-W%02d", y, w)
	var rows [][]string
	eventually(t, "the closing in the figures", func() bool {
		p := b.get("/insights.csv")
		var err error
		rows, err = csv.NewReader(strings.NewReader(p.Body)).ReadAll()
		return err == nil && len(rows) == 2 && rows[1][len(rows[1])-2] == "1"
	})
	want := []string{"week", "severity", "service", "incidents", "commander_incidents", "commander_median_seconds", "identified_incidents",
		"identified_median_seconds", "mitigated_incidents", "mitigated_median_seconds", "resolved_incidents", "resolved_median_seconds", "closed_incidents", "closed_median_seconds"}
	if strings.Join(rows[0], ",") != strings.Join(want, ",") {
		t.Fatalf("CSV header %v", rows[0])
	}
	// One row: this week's SEV2 payments incidents (the drill is left out);
	// one of the two reached each milestone (monitoring counts as identified).
	r := rows[1]
	if r[0] != week || r[1] != "SEV2" || r[2] != "payments" || r[3] != "2" || r[4] != "1" || r[6] != "1" || r[8] != "1" || r[10] != "1" || r[12] != "1" || r[5] == "" {
		t.Errorf("CSV row %v", r)
	}
	p := b.get("/insights?metric=closed&by=service&per=month")
	if p.Status != 200 || !strings.Contains(p.Body, "<figcaption>payments</figcaption>") || !strings.Contains(p.Body, `class="bar"><title>`+time.Now().UTC().Format("2006-01")+`: median`) {
		t.Errorf("insights page: %d\n%s", p.Status, p.Body)
	}
}

// TestInsightsUseRecordedMilestones: a recorded milestone wins over the one
// derived from the events, and the times count from the recorded start of
// the impact; without records, the derived milestones count.
func TestInsightsUseRecordedMilestones(t *testing.T) {
	base := startHub(t, hub.Config{})
	st := api(t, base, "POST", "/api/v1/incidents", map[string]any{"title": "Checkout down", "service": "payments", "severity": "SEV2"})
	record := func(name string, at time.Time) {
		api(t, base, "POST", "/api/v1/incidents/INC-1/milestones", map[string]any{"name": name, "occurred_at": at.Format(time.RFC3339Nano)})
	}
	record("impact_started", st.DeclaredAt.Add(-time.Hour))
	record("mitigated", st.DeclaredAt)
	api(t, base, "POST", "/api/v1/incidents/INC-1/commander", map[string]string{"user": "alice"})
	api(t, base, "POST", "/api/v1/incidents/INC-1/status", map[string]string{"status": "monitoring"})
	b := newBrowser(t, base)
	var r []string
	eventually(t, "the incident in the figures", func() bool {
		rows, err := csv.NewReader(strings.NewReader(b.get("/insights.csv").Body)).ReadAll()
		if err != nil || len(rows) != 2 || rows[1][4] != "1" || rows[1][8] != "1" {
			return false
		}
		r = rows[1]
		return true
	})
	if r[9] != "3600.000" {
		t.Errorf("time to mitigated = %s s, want 3600 (recorded mitigated minus recorded impact start, not the status change)", r[9])
	}
	if ack, _ := strconv.ParseFloat(r[5], 64); ack < 3600 {
		t.Errorf("time to acknowledged = %s s, want it counted from the impact start an hour before the declaration", r[5])
	}
}

// TestIncidentPageShowsBothOrders: the incident page lists the timeline as
// recorded, and, on request, as the facts happened, with a backdated
// note's own time and the milestones reached.
func TestIncidentPageShowsBothOrders(t *testing.T) {
	base := startHub(t, hub.Config{})
	st := api(t, base, "POST", "/api/v1/incidents", map[string]any{"title": "Account takeover", "service": "identity", "severity": "SEV2"})
	api(t, base, "POST", "/api/v1/incidents/INC-1/notes", map[string]any{"text": "password reset forced"})
	loggedIn := st.DeclaredAt.Add(-3 * time.Hour).UTC().Truncate(time.Second)
	api(t, base, "POST", "/api/v1/incidents/INC-1/notes", map[string]any{"text": "attacker logged in", "occurred_at": loggedIn.Format(time.RFC3339)})
	b := newBrowser(t, base)
	var recorded string
	eventually(t, "the backdated note on the page", func() bool {
		recorded = b.get("/incidents/INC-1").Body
		return strings.Contains(recorded, "attacker logged in")
	})
	// Newest first: as recorded, the backdated note is on top; as it
	// happened, it is at the bottom, below the declaration.
	if i, j := strings.Index(recorded, "attacker logged in"), strings.Index(recorded, "password reset forced"); i > j {
		t.Errorf("recorded order: the backdated note is not the newest")
	}
	if !strings.Contains(recorded, `href="/incidents/INC-1?order=occurred#timeline"`) {
		t.Errorf("no link to the occurred order")
	}
	p := b.get("/incidents/INC-1?order=occurred")
	if p.Status != http.StatusOK {
		t.Fatalf("occurred order: %d", p.Status)
	}
	note, declared := strings.Index(p.Body, "attacker logged in"), strings.Index(p.Body, "Declared SEV2")
	if note < declared || strings.Index(p.Body, "password reset forced") > declared {
		t.Errorf("occurred order: want the reset, the declaration, then the login (newest first)")
	}
	if !strings.Contains(p.Body, loggedIn.Format("2006-01-02 15:04:05 UTC")+`</time> <span class="hint">(recorded`) {
		t.Errorf("the backdated note does not show when it happened and when it was recorded")
	}
	if !strings.Contains(p.Body, "<dt>detected</dt>") {
		t.Errorf("the page does not show the milestones")
	}
}
