package projector

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/adapters/jiratest"
	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/integrationtest"
	"github.com/hikeshi/hikeshi/services/signals/tickets"
)

func jiraYAML(url string) string {
	return fmt.Sprintf(`
signals:
  token_env: SIG_TOKEN
  jira:
    base_url: %s
    email: alerts@acme.test
    token_env: SIG_JIRA
    project: OPS
    done_transition: resolve
    labels: [alert]
  rules:
    - name: findings
      when: 'signal.kind == "finding"'
      route: ticket
      rate_limit: {max: 4, window: 1h}
`, url)
}

// The same lifecycle as GitHub issues, in JIRA: one issue per fingerprint
// found by label before create, the enrichment comment, resolved → comment
// and the done transition by name, firing again → comment and reopen.
func TestJiraAlertTickets(t *testing.T) {
	setSecrets(t)
	t.Setenv("SIG_JIRA", "jira-token")
	fake := jiratest.New(t, "Basic YWxlcnRzQGFjbWUudGVzdDpqaXJhLXRva2Vu") // alerts@acme.test:jira-token
	fake.Done = "Resolve"
	fake.Add("POST /rest/api/2/issue", http.StatusTooManyRequests, "0")
	r := newRig(t, rigOpts{yaml: jiraYAML(fake.URL)})
	base := events.Signal{Source: "aws", Kind: "finding", Fingerprint: "arn:aws:guardduty:finding/1", Title: "Recon:EC2/PortProbeUnprotectedPort",
		Severity: "medium", Account: "111122223333", StartsAt: time.Unix(1750000000, 0).UTC(),
		Links: []events.SignalLink{{Title: "GuardDuty console", URL: "https://console.aws.amazon.com/guardduty/home"}}}
	at := func(status string, start int64) events.Signal {
		s := base
		s.Status, s.StartsAt = status, time.Unix(1750000000+start, 0).UTC()
		return s
	}
	seq := []events.Signal{at("firing", 0), at("resolved", 0), at("firing", 100), at("firing", 200)}
	for _, s := range seq {
		if _, err := r.pub.Put(context.Background(), []events.Signal{s}); err != nil {
			t.Fatal(err)
		}
	}
	r.run()
	r.waitHandled(uint64(len(seq)), 30*time.Second)
	issues, calls := fake.Snapshot()
	must(t, len(issues) == 1, "issues: %d, want 1 per fingerprint", len(issues))
	is := issues[0]
	must(t, is.Category == "new" && is.Transitions == 2, "status %s (%s) after %d transitions, want reopened after done", is.Status, is.Category, is.Transitions)
	labels := strings.Join(is.Labels, ",")
	must(t, strings.Contains(labels, tickets.Label(&base)) && strings.Contains(labels, "alert") && !strings.Contains(labels, " "), "labels %v", is.Labels)
	must(t, len(is.Comments) == 4, "comments %d: %+v", len(is.Comments), is.Comments)
	must(t, strings.Contains(is.Comments[0].Body, "GuardDuty console") && strings.Contains(is.Comments[0].Body, "Previous occurrences"), "enrichment %q", is.Comments[0].Body)
	must(t, strings.HasPrefix(is.Comments[1].Body, "Resolved") && strings.HasPrefix(is.Comments[2].Body, "Firing again") &&
		strings.HasPrefix(is.Comments[3].Body, "Fired again"), "lifecycle comments %+v", is.Comments)
	var searches, creates int
	for _, c := range calls {
		switch {
		case c.Method == http.MethodGet && c.Path == "/rest/api/2/search":
			searches++
		case c.Method == http.MethodPost && c.Path == "/rest/api/2/issue":
			creates++
		}
	}
	must(t, searches >= 1 && creates == 2, "%d searches, %d creates (one answered 429, then retried)", searches, creates)

	// A second fingerprint whose issue already exists (created before a
	// crash, found by its label): no second issue.
	other := base
	other.Fingerprint = "arn:aws:guardduty:finding/2"
	createJiraIssue(t, fake.URL, tickets.Label(&other))
	if _, err := r.pub.Put(context.Background(), []events.Signal{other}); err != nil {
		t.Fatal(err)
	}
	r.waitHandled(uint64(len(seq)+1), 30*time.Second)
	issues, _ = fake.Snapshot()
	must(t, len(issues) == 2, "issues: %d, want the existing one found", len(issues))
	must(t, len(issues[1].Comments) == 0, "the found issue got %d comments (enrichment goes only on one we create)", len(issues[1].Comments))
}

// TestJiraLostTicketCreateMakesOneIssue: JIRA created the issue but the
// answer was lost (500, or the connection dropped), and its search index
// trails the write: the label is searched again before any second create.
func TestJiraLostTicketCreateMakesOneIssue(t *testing.T) {
	integrationtest.ShortSearchLag(t)
	for name, fault := range map[string]func(*jiratest.Server){
		"500 after the create": func(f *jiratest.Server) {
			f.AddAfter("POST /rest/api/2/issue", http.StatusInternalServerError)
		},
		"dropped after it": func(f *jiratest.Server) { f.AddDrop("POST /rest/api/2/issue", true) },
	} {
		t.Run(name, func(t *testing.T) {
			setSecrets(t)
			t.Setenv("SIG_JIRA", "jira-token")
			fake := jiratest.New(t, "Basic YWxlcnRzQGFjbWUudGVzdDpqaXJhLXRva2Vu")
			fake.SearchLag = 1
			fault(fake)
			r := newRig(t, rigOpts{yaml: jiraYAML(fake.URL)})
			r.handleOneFinding()
			issues, _ := fake.Snapshot()
			must(t, len(issues) == 1, "issues: %d, want 1", len(issues))
			must(t, len(issues[0].Comments) == 1 && strings.Contains(issues[0].Comments[0].Body, "Investigation"), "comments %+v", issues[0].Comments)
		})
	}
}

// createJiraIssue makes an issue carrying label, as one made before a
// crash.
func createJiraIssue(t *testing.T, base, label string) {
	t.Helper()
	body := `{"fields":{"project":{"key":"OPS"},"issuetype":{"name":"Task"},"summary":"made earlier","labels":["` + label + `"]}}`
	req, err := http.NewRequest(http.MethodPost, base+"/rest/api/2/issue", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth("alerts@acme.test", "jira-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %s", resp.Status)
	}
}
