package console_test

import (
	"strings"
	"testing"

	"github.com/hikeshi/hikeshi/adapters/githubtest"
	"github.com/hikeshi/hikeshi/services/config"
	"github.com/hikeshi/hikeshi/services/github"
	"github.com/hikeshi/hikeshi/services/hub"
	"github.com/hikeshi/hikeshi/services/module"
)

// TestDashboardListsOverdueFollowups: with the GitHub module, the
// dashboard lists the incidents overdue for follow-up, as its
// GET /api/v1/followups does.
func TestDashboardListsOverdueFollowups(t *testing.T) {
	t.Setenv("CONSOLE_GITHUB_TOKEN", "ghp_console")
	fake := githubtest.New(t, "ghp_console", "acme/postmortems")
	file, err := config.Parse("hikeshi.yaml", []byte(`
github:
  base_url: `+fake.URL+`
  token_env: CONSOLE_GITHUB_TOKEN
  repo: acme/postmortems
  followups: {open_days: 0}
`))
	if err != nil {
		t.Fatal(err)
	}
	base := startHub(t, hub.Config{File: file, Modules: []module.Module{github.Module}})
	api(t, base, "POST", "/api/v1/incidents", map[string]any{"title": "Checkout down", "service": "payments", "severity": "SEV2"})
	b := newBrowser(t, base)
	var p page
	eventually(t, "the open incident among the follow-ups", func() bool {
		p = b.get("/dashboard")
		return strings.Contains(p.Body, `<a href="/incidents/INC-1">INC-1</a> Checkout down <span class="hint">(SEV2)</span>: open for 0 days (threshold 0)`)
	})
	if p.Status != 200 {
		t.Errorf("dashboard: %d", p.Status)
	}
	// Without the module, no such section.
	if p := newBrowser(t, startHub(t, hub.Config{})).get("/dashboard"); strings.Contains(p.Body, "Overdue follow-ups") {
		t.Error("follow-ups shown without the GitHub module")
	}
}
