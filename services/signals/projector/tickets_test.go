package projector

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/events"
)

// fakeGitHub speaks the issues part of GitHub's REST API: paths, payloads
// and error shapes. It records every call and answers the first issue
// creation with a secondary rate limit (403 + Retry-After).
type fakeGitHub struct {
	*httptest.Server
	mu      sync.Mutex
	calls   []string
	issues  map[int]*ghIssue
	limited bool
	// lostCreates creates that many issues and answers 502: GitHub acted,
	// the answer was lost on the way back.
	lostCreates int
}

type ghIssue struct {
	Number   int      `json:"number"`
	Title    string   `json:"title"`
	Body     string   `json:"body"`
	State    string   `json:"state"`
	Labels   []string `json:"-"`
	Comments []string `json:"-"`
}

func newFakeGitHub(t *testing.T) *fakeGitHub {
	f := &fakeGitHub{issues: map[int]*ghIssue{}}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeGitHub) issueJSON(i *ghIssue) map[string]any {
	labels := []map[string]string{}
	for _, l := range i.Labels {
		labels = append(labels, map[string]string{"name": l})
	}
	return map[string]any{"number": i.Number, "title": i.Title, "body": i.Body, "state": i.State, "labels": labels,
		"html_url": fmt.Sprintf("https://github.com/acme/alerts/issues/%d", i.Number)}
}

func (f *fakeGitHub) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	body, _ := io.ReadAll(r.Body)
	f.calls = append(f.calls, r.Method+" "+r.URL.Path+" "+string(body))
	w.Header().Set("Content-Type", "application/json")
	if r.Header.Get("Authorization") != "Bearer gh-token" {
		w.WriteHeader(401)
		_, _ = io.WriteString(w, `{"message":"Bad credentials","documentation_url":"https://docs.github.com/rest"}`)
		return
	}
	var n int
	switch {
	case r.Method == "GET" && r.URL.Path == "/repos/acme/alerts/issues":
		want := r.URL.Query().Get("labels")
		out := []map[string]any{}
		for _, i := range f.issues {
			for _, l := range i.Labels {
				if l == want {
					out = append(out, f.issueJSON(i))
				}
			}
		}
		_ = json.NewEncoder(w).Encode(out)
	case r.Method == "POST" && r.URL.Path == "/repos/acme/alerts/issues":
		if !f.limited {
			f.limited = true
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(403)
			_, _ = io.WriteString(w, `{"message":"You have exceeded a secondary rate limit.","documentation_url":"https://docs.github.com/rest"}`)
			return
		}
		var req struct {
			Title, Body string
			Labels      []string
		}
		_ = json.Unmarshal(body, &req)
		i := &ghIssue{Number: len(f.issues) + 1, Title: req.Title, Body: req.Body, State: "open", Labels: req.Labels}
		f.issues[i.Number] = i
		if f.lostCreates > 0 {
			f.lostCreates--
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		w.WriteHeader(201)
		_ = json.NewEncoder(w).Encode(f.issueJSON(i))
	case r.Method == "POST" && fmt.Sprint(sscan(r.URL.Path, "/repos/acme/alerts/issues/%d/comments", &n)) == "true":
		var req struct{ Body string }
		_ = json.Unmarshal(body, &req)
		f.issues[n].Comments = append(f.issues[n].Comments, req.Body)
		w.WriteHeader(201)
		_, _ = fmt.Fprintf(w, `{"id":%d,"body":%q}`, len(f.issues[n].Comments), req.Body)
	case r.Method == "PATCH" && sscan(r.URL.Path, "/repos/acme/alerts/issues/%d", &n):
		var req struct{ State string }
		_ = json.Unmarshal(body, &req)
		f.issues[n].State = req.State
		_ = json.NewEncoder(w).Encode(f.issueJSON(f.issues[n]))
	default:
		w.WriteHeader(404)
		_, _ = io.WriteString(w, `{"message":"Not Found","documentation_url":"https://docs.github.com/rest"}`)
	}
}

func sscan(path, format string, n *int) bool {
	_, err := fmt.Sscanf(path, format, n)
	return err == nil && fmt.Sprintf(format, *n) == path
}

func (f *fakeGitHub) snapshot() (calls []string, issues map[int]ghIssue) {
	f.mu.Lock()
	defer f.mu.Unlock()
	issues = map[int]ghIssue{}
	for k, v := range f.issues {
		issues[k] = *v
	}
	return append([]string(nil), f.calls...), issues
}

// One issue per fingerprint: opened with an enrichment comment, closed
// with a comment when resolved, reopened with a comment when it fires
// again; repeats inside the rate window are counted, not commented.
func TestAlertTickets(t *testing.T) {
	setSecrets(t)
	t.Setenv("SIG_GH", "gh-token")
	gh := newFakeGitHub(t)
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
	calls, issues := gh.snapshot()
	must(t, len(issues) == 1, "issues: %d, want 1 per fingerprint", len(issues))
	i := issues[1]
	must(t, i.State == "open", "issue state %s", i.State)
	must(t, strings.Contains(strings.Join(i.Labels, ","), "priority:P2"), "labels %v", i.Labels)
	// Enrichment, close, reopen, then "fired again" for occurrence 4 only:
	// the rate limit (4 per hour, resolutions included) counts 5 and 6
	// without commenting.
	must(t, len(i.Comments) == 4, "comments %d: %q", len(i.Comments), i.Comments)
	must(t, strings.Contains(i.Comments[0], "GuardDuty console") && strings.Contains(i.Comments[0], "Previous occurrences"), "enrichment %q", i.Comments[0])
	must(t, strings.HasPrefix(i.Comments[1], "Resolved") && strings.HasPrefix(i.Comments[2], "Firing again"), "lifecycle comments %q", i.Comments)
	var created int
	for _, c := range calls {
		if strings.HasPrefix(c, "POST /repos/acme/alerts/issues ") {
			created++
		}
	}
	must(t, created == 2, "issue creations %d (one refused by the rate limit, then retried)", created)
}

// TestLostTicketCreateMakesOneIssue: GitHub created the issue but the
// answer was lost (502), and the first search after it misses nothing:
// the create is not sent again blindly, one issue, enriched once.
func TestLostTicketCreateMakesOneIssue(t *testing.T) {
	setSecrets(t)
	t.Setenv("SIG_GH", "gh-token")
	gh := newFakeGitHub(t)
	gh.limited, gh.lostCreates = true, 1
	r := newRig(t, rigOpts{yaml: fmt.Sprintf(`
signals:
  token_env: SIG_TOKEN
  github: {base_url: %s, repo: acme/alerts, token_env: SIG_GH}
  rules:
    - {name: findings, when: 'signal.kind == "finding"', route: ticket}
`, gh.URL)})
	r.handleOneFinding()
	_, issues := gh.snapshot()
	must(t, len(issues) == 1, "issues: %d, want 1", len(issues))
	must(t, len(issues[1].Comments) == 1 && strings.Contains(issues[1].Comments[0], "Investigation"), "comments %q", issues[1].Comments)
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
