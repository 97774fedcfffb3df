package projector

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/adapters/jiratest"
	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/integrationtest"
)

// hostileSignals fire and resolve one alert whose title breaks a line and
// whose summary and link carry terminal escapes.
func hostileSignals(t *testing.T, r *rig) {
	t.Helper()
	firing := events.Signal{Source: "generic", Kind: "alert", Fingerprint: "disk-db-1", Title: integrationtest.HostileTitle,
		Summary: integrationtest.HostileNote, Severity: "high", Status: "firing", StartsAt: time.Unix(1750000000, 0).UTC(),
		Links: []events.SignalLink{{Title: integrationtest.HostileNote, URL: "https://grafana.example.test/d/disk"}}}
	resolved := firing
	resolved.Status = "resolved"
	for _, s := range []events.Signal{firing, resolved} {
		if _, err := r.pub.Put(context.Background(), []events.Signal{s}); err != nil {
			t.Fatal(err)
		}
	}
	r.run()
	r.waitHandled(2, 30*time.Second)
}

// checkTicket asserts what the tracker received for hostileSignals.
func checkTicket(t *testing.T, title, body string, comments []string) {
	t.Helper()
	if want := "[generic] " + integrationtest.SafeTitle; title != want {
		t.Errorf("title %q, want %q", title, want)
	}
	integrationtest.CheckClean(t, "body", body, true)
	for i, c := range comments {
		integrationtest.CheckClean(t, fmt.Sprintf("comment %d", i), c, true)
	}
	if len(comments) != 2 {
		t.Errorf("%d comments, want the enrichment and the resolution: %q", len(comments), comments)
	}
}

func TestTicketsGetNoControlCharacters(t *testing.T) {
	setSecrets(t)
	rules := `
  rules:
    - name: alerts
      when: 'signal.kind == "alert"'
      route: ticket
`
	t.Run("jira", func(t *testing.T) {
		t.Setenv("SIG_JIRA", "jira-token")
		fake := jiratest.New(t, "Bearer jira-token")
		r := newRig(t, rigOpts{yaml: fmt.Sprintf(`
signals:
  token_env: SIG_TOKEN
  jira:
    base_url: %s
    token_env: SIG_JIRA
    project: OPS
%s`, fake.URL, rules)})
		hostileSignals(t, r)
		issues, _ := fake.Snapshot()
		if len(issues) != 1 {
			t.Fatalf("%d issues, want 1", len(issues))
		}
		var comments []string
		for _, c := range issues[0].Comments {
			comments = append(comments, c.Body)
		}
		checkTicket(t, issues[0].Summary, issues[0].Description, comments)
	})
	t.Run("github", func(t *testing.T) {
		t.Setenv("SIG_GH", "gh-token")
		gh := newFakeGitHub(t)
		r := newRig(t, rigOpts{yaml: fmt.Sprintf(`
signals:
  token_env: SIG_TOKEN
  github:
    base_url: %s
    repo: acme/alerts
    token_env: SIG_GH
%s`, gh.URL, rules)})
		hostileSignals(t, r)
		issues, comments := alertIssues(gh)
		if len(issues) != 1 {
			t.Fatalf("%d issues, want 1", len(issues))
		}
		checkTicket(t, issues[0].Title, issues[0].Body, comments[issues[0].Number])
	})
}
