package console_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/hikeshi/hikeshi/services/config"
	"github.com/hikeshi/hikeshi/services/hub"
	"github.com/hikeshi/hikeshi/services/module"
	"github.com/hikeshi/hikeshi/services/signals"
)

// TestSignalsList: the Signals page lists the signals module's decisions
// (source, fingerprint, rule, route, where each went), filtered.
func TestSignalsList(t *testing.T) {
	t.Setenv("CONSOLE_SIG_TOKEN", "sig-token")
	file, err := config.Parse("hikeshi.yaml", []byte(`
signals:
  token_env: CONSOLE_SIG_TOKEN
  rules:
    - name: page
      when: 'signal.severity == "critical"'
      route: incident
    - name: broken
      when: 'int(signal.title) > 0'
      route: triage
  default: {route: none}
`))
	if err != nil {
		t.Fatal(err)
	}
	base := startHub(t, hub.Config{File: file, Modules: []module.Module{signals.Module}})
	for _, s := range []string{
		`{"source":"grafana","fingerprint":"disk-full-db1","title":"Disk full on db1","severity":"critical","starts_at":"2026-12-03T10:00:00Z"}`,
		`{"source":"grafana","fingerprint":"cpu-web3","title":"CPU high on web3","severity":"low","starts_at":"2026-12-03T10:00:00Z"}`,
	} {
		r, _ := http.NewRequest(http.MethodPost, base+"/api/v1/signals", strings.NewReader(s))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Authorization", "Bearer sig-token")
		res, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode >= 300 {
			t.Fatalf("signal refused: %d %s", res.StatusCode, body)
		}
	}
	b := newBrowser(t, base)
	var p page
	eventually(t, "both signals decided", func() bool {
		p = b.get("/signals")
		return strings.Contains(p.Body, "Disk full on db1") && strings.Contains(p.Body, "CPU high on web3")
	})
	if !strings.Contains(p.Body, `<a href="/incidents/INC-1">INC-1</a>`) || !strings.Contains(p.Body, "<code>disk-full-db1</code>") {
		t.Errorf("the critical signal's incident is not shown:\n%s", p.Body)
	}
	only := b.get("/signals?route=incident")
	if !strings.Contains(only.Body, "Disk full on db1") || strings.Contains(only.Body, "CPU high on web3") {
		t.Errorf("route filter:\n%s", only.Body)
	}
	if bad := b.get("/signals?route=nowhere"); bad.Status != http.StatusBadRequest || !strings.Contains(bad.Body, "must be incident, ticket, triage, none or drop") {
		t.Errorf("a bad filter: %d", bad.Status)
	}
	// A rule that cannot be evaluated flags the decision: on the dashboard.
	dash := b.get("/dashboard")
	if !strings.Contains(dash.Body, "<code>cpu-web3</code> CPU high on web3 → none") || strings.Contains(dash.Body, "<code>disk-full-db1</code>") {
		t.Errorf("flagged decisions on the dashboard:\n%s", dash.Body)
	}

	// In a browser too (and its screenshot).
	ctx := newTab(t, 1280, 700)
	do(t, ctx, "open the signals", chromedp.Navigate(base+"/signals"), chromedp.WaitVisible(chromedp.CSS("table.list")))
	screenshot(t, ctx, "signals")

	// Without the module, the page says so.
	if p := newBrowser(t, startHub(t, hub.Config{})).get("/signals"); p.Status != 200 || !strings.Contains(p.Body, "does not run in this process") {
		t.Errorf("without the module: %d", p.Status)
	}
}
