package console_test

import (
	"encoding/csv"
	"fmt"
	"net/http"
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
		"identified_median_seconds", "resolved_incidents", "resolved_median_seconds", "closed_incidents", "closed_median_seconds"}
	if strings.Join(rows[0], ",") != strings.Join(want, ",") {
		t.Fatalf("CSV header %v", rows[0])
	}
	// One row: this week's SEV2 payments incidents (the drill is left out);
	// one of the two reached each milestone (monitoring counts as identified).
	r := rows[1]
	if r[0] != week || r[1] != "SEV2" || r[2] != "payments" || r[3] != "2" || r[4] != "1" || r[6] != "1" || r[8] != "1" || r[10] != "1" || r[5] == "" {
		t.Errorf("CSV row %v", r)
	}
	p := b.get("/insights?metric=closed&by=service&per=month")
	if p.Status != 200 || !strings.Contains(p.Body, "<figcaption>payments</figcaption>") || !strings.Contains(p.Body, `class="bar"><title>`+time.Now().UTC().Format("2006-01")+`: median`) {
		t.Errorf("insights page: %d\n%s", p.Status, p.Body)
	}
}
