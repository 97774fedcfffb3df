package projector

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/adapters/githubtest"
	"github.com/hikeshi/hikeshi/events"
)

// newFakeGitHub is GitHub with the repository acme/alerts, wanting the
// token gh-token.
func newFakeGitHub(t *testing.T) *githubtest.Server {
	return githubtest.New(t, "gh-token", "acme/alerts")
}

// alertIssues are the issues of acme/alerts and the comments on each.
func alertIssues(gh *githubtest.Server) ([]*githubtest.Issue, map[int][]string) {
	r := gh.Repo("acme/alerts")
	return r.Issues, r.Comments
}

// One issue per fingerprint: opened with an enrichment comment, closed
// with a comment when resolved, reopened with a comment when it fires
// again; repeats inside the rate window are counted, not commented.
func TestAlertTickets(t *testing.T) {
	setSecrets(t)
	t.Setenv("SIG_GH", "gh-token")
	gh := newFakeGitHub(t)
	gh.Add("POST /repos/acme/alerts/issues", http.StatusForbidden, "0") // a secondary rate limit
	r := newRig(t, rigOpts{yaml: fmt.Sprintf(`
signals:
  token_env: SIG_TOKEN
  github:
    base_url: %s
    repo: acme/alerts
    token_env: SIG_GH
    labels: [alert]
  rules:
    - name: findings
      when: 'signal.kind == "finding"'
      route: ticket
      priority: P2
      rate_limit: {max: 4, window: 1h}
`, gh.URL)})
	base := events.Signal{Source: "aws", Kind: "finding", Fingerprint: "arn:aws:guardduty:finding/1", Title: "Recon:EC2/PortProbeUnprotectedPort",
		Severity: "medium", Account: "111122223333", StartsAt: time.Unix(1750000000, 0).UTC(),
		Links: []events.SignalLink{{Title: "GuardDuty console", URL: "https://console.aws.amazon.com/guardduty/home"}}}
	at := func(status string, start int64) events.Signal {
		s := base
		s.Status, s.StartsAt = status, time.Unix(1750000000+start, 0).UTC()
		return s
	}
	seq := []events.Signal{at("firing", 0), at("resolved", 0), at("firing", 100), at("firing", 200), at("firing", 300), at("firing", 400)}
	for _, s := range seq {
		if _, err := r.pub.Put(context.Background(), []events.Signal{s}); err != nil {
			t.Fatal(err)
		}
	}
	r.run()
	r.waitHandled(uint64(len(seq)), 30*time.Second)
	issues, comments := alertIssues(gh)
	must(t, len(issues) == 1, "issues: %d, want 1 per fingerprint", len(issues))
	i := issues[0]
	must(t, i.State == "open", "issue state %s", i.State)
	must(t, strings.Contains(strings.Join(i.Labels, ","), "priority:P2"), "labels %v", i.Labels)
	// Enrichment, close, reopen, then "fired again" for occurrence 4 only:
	// the rate limit (4 per hour, resolutions included) counts 5 and 6
	// without commenting.
	cs := comments[i.Number]
	must(t, len(cs) == 4, "comments %d: %q", len(cs), cs)
	must(t, strings.Contains(cs[0], "GuardDuty console") && strings.Contains(cs[0], "Previous occurrences"), "enrichment %q", cs[0])
	must(t, strings.HasPrefix(cs[1], "Resolved") && strings.HasPrefix(cs[2], "Firing again"), "lifecycle comments %q", cs)
	created := gh.Count(http.MethodPost, "/repos/acme/alerts/issues")
	must(t, created == 2, "issue creations %d (one refused by the rate limit, then retried)", created)
}

// TestLostTicketCreateMakesOneIssue: GitHub created the issue but the
// answer was lost (502), and the first search after it misses nothing:
// the create is not sent again blindly, one issue, enriched once.
func TestLostTicketCreateMakesOneIssue(t *testing.T) {
	setSecrets(t)
	t.Setenv("SIG_GH", "gh-token")
	gh := newFakeGitHub(t)
	gh.AddAfter("POST /repos/acme/alerts/issues", http.StatusBadGateway) // created, the answer lost
	r := newRig(t, rigOpts{yaml: findingTicketsYAML(gh.URL)})
	r.handleOneFinding()
	issues, comments := alertIssues(gh)
	must(t, len(issues) == 1, "issues: %d, want 1", len(issues))
	cs := comments[issues[0].Number]
	must(t, len(cs) == 1 && strings.Contains(cs[0], "Investigation"), "comments %q", cs)
}

// TestTicketsWaitForTheRateLimitReset: GitHub's primary limit is
// exhausted for a while (403 with X-RateLimit-Remaining: 0 and
// X-RateLimit-Reset, no Retry-After). The tracker waits until the reset
// and asks once more, rather than asking again on its own backoff.
func TestTicketsWaitForTheRateLimitReset(t *testing.T) {
	setSecrets(t)
	t.Setenv("SIG_GH", "gh-token")
	gh := newFakeGitHub(t)
	gh.LimitUntil("", time.Now().Add(2*time.Second))
	r := newRig(t, rigOpts{yaml: findingTicketsYAML(gh.URL)})
	r.handleOneFinding()
	issues, _ := alertIssues(gh)
	must(t, len(issues) == 1, "issues: %d, want 1", len(issues))
	must(t, gh.LimitedCalls() == 1, "%d calls refused by the exhausted limit, want 1: the tracker waits for the reset", gh.LimitedCalls())
}

// findingTicketsYAML routes findings to GitHub issues in acme/alerts.
func findingTicketsYAML(url string) string {
	return fmt.Sprintf(`
signals:
  token_env: SIG_TOKEN
  github: {base_url: %s, repo: acme/alerts, token_env: SIG_GH}
  rules:
    - {name: findings, when: 'signal.kind == "finding"', route: ticket}
`, url)
}

// handleOneFinding stores one GuardDuty finding, runs the projector and
// waits until it handled the finding.
func (r *rig) handleOneFinding() {
	r.t.Helper()
	sig := events.Signal{Source: "aws", Kind: "finding", Status: "firing", Fingerprint: "arn:aws:guardduty:finding/9",
		Title: "Recon:EC2/PortProbeUnprotectedPort", Severity: "medium", StartsAt: time.Unix(1750000000, 0).UTC()}
	if _, err := r.pub.Put(context.Background(), []events.Signal{sig}); err != nil {
		r.t.Fatal(err)
	}
	r.run()
	r.waitHandled(1, 30*time.Second)
}
