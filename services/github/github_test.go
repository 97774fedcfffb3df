package github_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/adapters/githubtest"
	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/github"
	"github.com/hikeshi/hikeshi/services/incident"
	"github.com/hikeshi/hikeshi/services/integrationtest"
	"github.com/hikeshi/hikeshi/services/projection"
)

const token = "ghp_testtoken"

func setup(t *testing.T, extra string) (*integrationtest.Hub, *githubtest.Server, *github.Projector) {
	t.Helper()
	t.Setenv("HIKESHI_TEST_GITHUB_TOKEN", token)
	fake := githubtest.New(t, token, "acme/postmortems", "acme/security")
	h := integrationtest.New(t, fmt.Sprintf(`github:
  base_url: %s
  token_env: HIKESHI_TEST_GITHUB_TOKEN
  repo: acme/postmortems
  labels: [postmortem, incident-review]
  reviewers: {bob: bob-gh, dave: ghost}
  write_interval: 10ms
%s`, fake.URL, extra))
	p, err := github.New(h.Env)
	if err != nil {
		t.Fatal(err)
	}
	return h, fake, p
}

func run(t *testing.T, h *integrationtest.Hub, d incident.Declare) incident.State {
	t.Helper()
	st := h.Declare(t, d)
	for _, c := range []incident.Command{
		incident.AssignCommander{User: "bob"},
		incident.ChangeSeverity{Severity: "SEV1", Reason: "all card payments | failing"},
		incident.AddNote{Text: "rolled back the gateway"},
		incident.UpdateStatus{Status: "resolved", Message: "errors gone"},
		incident.Close{Resolution: "rollback", LessonsLearned: "canary the gateway"},
	} {
		h.Do(t, st.ID, c)
	}
	return st
}

func TestPostmortemPullRequest(t *testing.T) {
	h, fake, p := setup(t, "")
	stop := h.Run(t, []projection.Projector{{Durable: github.Name, Handle: p.Handle}})
	defer stop()
	st := run(t, h, incident.Declare{Title: "Card payments failing", Service: "payments", Severity: "SEV2", Summary: "12% of authorisations fail"})
	integrationtest.Eventually(t, "postmortem_opened", func() bool { return h.Count(t, st.ID, events.TypeGitHubPostmortemOpened) == 1 })
	repo := fake.Repo("acme/postmortems")
	if len(repo.Pulls) != 1 {
		t.Fatalf("%d pulls", len(repo.Pulls))
	}
	pr := repo.Pulls[0]
	if pr.Head != "postmortem/INC-1" || pr.Base != "main" || pr.Title != "Postmortem INC-1: Card payments failing" {
		t.Errorf("pull %+v", pr)
	}
	if strings.Join(pr.Reviewers, ",") != "bob-gh" || strings.Join(pr.Labels, ",") != "postmortem,incident-review" {
		t.Errorf("reviewers %v labels %v", pr.Reviewers, pr.Labels)
	}
	path := fmt.Sprintf("postmortem/INC-1:postmortems/%d/INC-1-card-payments-failing.md", st.DeclaredAt.UTC().Year())
	doc, ok := repo.Files[path]
	if !ok {
		t.Fatalf("no file %s in %v", path, repo.Files)
	}
	for _, want := range []string{"# Postmortem INC-1: Card payments failing", "| Severity | SEV1 (worst SEV1) |",
		"12% of authorisations fail", "## Impact", "SEV2 → SEV1 by bob: all card payments | failing",
		`| bob | Severity SEV2 → SEV1: all card payments \| failing |`, "| Note: rolled back the gateway |",
		"Commander: bob", "## Root cause", "## Action items", "canary the gateway", "## Resolution\n\nrollback"} {
		if !strings.Contains(doc, want) {
			t.Errorf("postmortem lacks %q:\n%s", want, doc)
		}
	}
	var linked events.Linked
	for _, e := range h.Events(t, st.ID) {
		if e.Type == events.TypeGitHubPostmortemOpened {
			d, _ := e.Decode()
			linked = *d.(*events.Linked)
		}
	}
	if linked.Ref != "1" || linked.Name != "acme/postmortems#1" || linked.URL != "https://github.example/acme/postmortems/pull/1" {
		t.Errorf("link %+v", linked)
	}
}

// TestContract runs the contract every projector keeps on the GitHub
// projector with its recording issue: one branch, file and pull request
// per closed incident, one recording issue with a comment per event,
// however often it is replayed or restarted, with or without its ledger; a
// 404 from GitHub dead-letters the event.
func TestContract(t *testing.T) {
	integrationtest.TestProjector(t, integrationtest.ProjectorCase{
		Lives: []integrationtest.Life{
			integrationtest.LifeOf(integrationtest.Ordinary),
			integrationtest.LifeOf(integrationtest.Confidential),
			integrationtest.LifeOf(integrationtest.Drill),
		},
		World: func(t *testing.T) *integrationtest.World {
			h, fake, _ := setup(t, "  record_issue: true\n  confidential_repo: acme/security\n")
			return &integrationtest.World{
				Hub: h,
				Projector: func(t testing.TB) projection.Projector {
					p, err := github.New(h.Env)
					if err != nil {
						t.Fatal(err)
					}
					return projection.Projector{Durable: github.Name, Handle: p.Handle}
				},
				Effects: func(testing.TB) []string {
					return append(repoEffects(h, fake, "acme/postmortems"), repoEffects(h, fake, "acme/security")...)
				},
				Refuse: func(testing.TB) { fake.Add("", http.StatusNotFound, "") },
			}
		},
	})
}

// repoEffects is what repository name of the fake GitHub holds, comparable
// across hubs.
func repoEffects(h *integrationtest.Hub, fake *githubtest.Server, name string) []string {
	repo := fake.Repo(name)
	out := []string{fmt.Sprintf("%s: branches %v", name, slices.Sorted(maps.Keys(repo.Refs)))}
	for _, path := range slices.Sorted(maps.Keys(repo.Files)) {
		out = append(out, h.Mask(fmt.Sprintf("%s: file %s:\n%s", name, path, repo.Files[path])))
	}
	for _, p := range repo.Pulls {
		out = append(out, h.Mask(fmt.Sprintf("%s: pull %d %q %s→%s labels %v reviewers %v:\n%s", name, p.Number, p.Title, p.Head, p.Base, p.Labels, p.Reviewers, p.Body)))
	}
	for _, is := range repo.Issues {
		out = append(out, h.Mask(fmt.Sprintf("%s: issue %d %q %s labels %v:\n%s", name, is.Number, is.Title, is.State, is.Labels, is.Body)))
	}
	for _, n := range slices.Sorted(maps.Keys(repo.Comments)) {
		for _, c := range repo.Comments[n] {
			out = append(out, h.Mask(fmt.Sprintf("%s: comment on %d: %s", name, n, c)))
		}
	}
	return out
}

// TestRateLimitsDelayButLoseNothing: GitHub's secondary limit, its primary
// limit exhausted until the reset, a 502 and a 429 on the way; the
// projector waits them out and still opens one pull request and one
// recording issue.
func TestRateLimitsDelayButLoseNothing(t *testing.T) {
	h, fake, p := setup(t, "  record_issue: true\n")
	fake.Add("/git/refs", http.StatusForbidden, "1")                                      // secondary limit
	fake.LimitUntil("PUT /repos/acme/postmortems/contents/", time.Now().Add(time.Second)) // primary limit exhausted until the reset
	fake.Add("/pulls", http.StatusBadGateway, "")
	fake.Add("/issues", http.StatusTooManyRequests, "1")
	st := run(t, h, incident.Declare{Title: "Search latency", Service: "search", Severity: "SEV3"})
	h.Replay(t, st.ID, p.Handle)
	repo := fake.Repo("acme/postmortems")
	if len(repo.Pulls) != 1 || len(repo.Files) != 1 || len(repo.Refs) != 2 || fake.Count(http.MethodPost, "/pulls") != 1 {
		t.Fatalf("pulls %d (%d creations) files %d refs %v", len(repo.Pulls), fake.Count(http.MethodPost, "/pulls"), len(repo.Files), repo.Refs)
	}
	if len(repo.Issues) != 1 || repo.Issues[0].State != "closed" || len(repo.Comments[repo.Issues[0].Number]) != 5 {
		t.Fatalf("recording issues %+v, comments %v", repo.Issues, repo.Comments)
	}
}

func TestConfidentialNeverInThePublicRepo(t *testing.T) {
	const title = "Credential stuffing against customer login"
	declare := incident.Declare{Title: title, Service: "identity", Severity: "SEV2", Summary: "rotating residential IPs", Confidential: true}

	// Without a private repository: skipped.
	h, fake, p := setup(t, "  record_issue: true\n")
	st := run(t, h, declare)
	h.Replay(t, st.ID, p.Handle)
	if traffic := fake.Traffic(); traffic != "" {
		t.Fatalf("calls for a confidential incident without confidential_repo:\n%s", traffic)
	}
	if _, err := p.Postmortem(context.Background(), st.ID); err != github.ErrSkipped {
		t.Fatalf("on demand: %v", err)
	}

	// With one: only there, and only with the codename.
	h, fake, p = setup(t, "  confidential_repo: acme/security\n  record_issue: true\n")
	st = run(t, h, declare)
	h.Replay(t, st.ID, p.Handle)
	if pub := fake.Repo("acme/postmortems"); len(pub.Pulls)+len(pub.Issues)+len(pub.Files) != 0 || len(pub.Refs) != 1 {
		t.Fatalf("public repo touched: %+v", pub)
	}
	sec := fake.Repo("acme/security")
	if len(sec.Pulls) != 1 || !strings.Contains(sec.Pulls[0].Title, st.Codename) {
		t.Fatalf("security repo pulls %+v", sec.Pulls)
	}
	traffic := fake.Traffic()
	for _, secret := range []string{title, "identity", "rotating residential IPs", "all card payments",
		"rolled back the gateway", "errors gone", "rollback", "canary the gateway"} {
		if strings.Contains(traffic, secret) {
			t.Errorf("GitHub traffic contains %q", secret)
		}
	}
}

func TestOnDemandAndFollowups(t *testing.T) {
	h, fake, _ := setup(t, "  followups: {postmortem_days: 0, open_days: 0}\n")
	h.RequireToken("api-token")
	tl := h.WithTimeline(t)
	parts := h.Start(t, github.Module)
	stop := h.Run(t, []projection.Projector{tl})
	defer stop()
	mux := http.NewServeMux()
	for pattern, handler := range parts.Routes {
		mux.Handle(pattern, handler)
	}
	srv := httptest.NewServer(mux)
	defer srv.Close()
	call := func(method, path, tok string) (int, string) {
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		_, _ = fmt.Fprint(&b, json.NewDecoder(resp.Body).Decode(new(any)))
		return resp.StatusCode, b.String()
	}

	open := h.Declare(t, incident.Declare{Title: "Slow builds", Service: "ci", Severity: "SEV4"})
	closed := run(t, h, incident.Declare{Title: "Card payments failing", Service: "payments", Severity: "SEV2"})
	integrationtest.Eventually(t, "timeline", func() bool {
		id, err := h.Timeline.FindByCase(context.Background(), closed.CaseNumber)
		return err == nil && id == closed.ID
	})
	if code, _ := call(http.MethodPost, "/api/v1/incidents/"+closed.CaseNumber+"/postmortem", "wrong"); code != http.StatusUnauthorized {
		t.Fatalf("wrong token: %d", code)
	}
	for _, unknown := range []string{"INC-99", events.NewID(), "no%20such"} {
		if code, _ := call(http.MethodPost, "/api/v1/incidents/"+unknown+"/postmortem", "api-token"); code != http.StatusNotFound {
			t.Fatalf("unknown incident %s: %d", unknown, code)
		}
	}
	// Closed, it is not listed either: its postmortem is skipped by design.
	secret := run(t, h, incident.Declare{Title: "Token leak", Service: "auth", Severity: "SEV2", Confidential: true})
	if code, _ := call(http.MethodPost, "/api/v1/incidents/"+secret.ID+"/postmortem", "api-token"); code != http.StatusConflict {
		t.Fatalf("confidential without confidential_repo: %d", code)
	}
	for range 2 {
		if code, _ := call(http.MethodPost, "/api/v1/incidents/"+closed.CaseNumber+"/postmortem", "api-token"); code != http.StatusOK {
			t.Fatalf("postmortem on demand: %d", code)
		}
	}
	if n := len(fake.Repo("acme/postmortems").Pulls); n != 1 {
		t.Fatalf("%d pulls after two requests", n)
	}
	integrationtest.Eventually(t, "the link in the timeline", func() bool {
		list, err := followups(t, h)
		return err == nil && len(list) == 2 && list[0].Reason == "postmortem_unmerged"
	})
	list, _ := followups(t, h) // newest first
	if list[1].ID != open.ID || list[1].Reason != "open_too_long" {
		t.Fatalf("followups %+v", list)
	}
	fake.Merge("acme/postmortems", 1)
	if list, _ = followups(t, h); len(list) != 1 {
		t.Fatalf("after merge: %+v", list)
	}
	if code, _ := call(http.MethodGet, "/api/v1/followups", ""); code != http.StatusUnauthorized {
		t.Fatalf("followups without token: %d", code)
	}
	if code, _ := call(http.MethodGet, "/api/v1/followups", "api-token"); code != http.StatusOK {
		t.Fatalf("followups: %d", code)
	}
}

func followups(t *testing.T, h *integrationtest.Hub) ([]github.Followup, error) {
	p, err := github.New(h.Env)
	if err != nil {
		t.Fatal(err)
	}
	return p.Followups(context.Background(), time.Now().Add(time.Hour))
}

func TestSlugAndTemplate(t *testing.T) {
	for in, want := range map[string]string{
		"Card payments failing!":         "card-payments-failing",
		"  ---  ":                        "incident",
		"Zahlungen schlagen fehl – Köln": "zahlungen-schlagen-fehl-k-ln",
	} {
		if got := github.Slug(in); got != want {
			t.Errorf("Slug(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestEnterpriseDrill: an Enterprise Server API root given without its
// trailing slash; a drill's pull request is marked; an unmapped commander
// is asked for no review.
func TestEnterpriseDrill(t *testing.T) {
	t.Setenv("HIKESHI_TEST_GITHUB_TOKEN", token)
	fake := githubtest.New(t, token, "acme/postmortems")
	fake.Prefix = "/api/v3"
	h := integrationtest.New(t, "github:\n  base_url: "+fake.URL+"/api/v3\n  token_env: HIKESHI_TEST_GITHUB_TOKEN\n  repo: acme/postmortems\n  write_interval: 1ms\n")
	p, err := github.New(h.Env)
	if err != nil {
		t.Fatal(err)
	}
	st := h.Declare(t, incident.Declare{Title: "Game day: zone loss", Service: "search", Severity: "SEV3", Drill: true})
	h.Do(t, st.ID, incident.AssignCommander{User: "carol"})
	h.Do(t, st.ID, incident.UpdateStatus{Status: "resolved"})
	h.Do(t, st.ID, incident.Close{Resolution: "failed over"})
	h.Replay(t, st.ID, p.Handle)
	repo := fake.Repo("acme/postmortems")
	if len(repo.Pulls) != 1 || repo.Pulls[0].Title != "[DRILL] Postmortem INC-1: Game day: zone loss" {
		t.Fatalf("pulls %+v", repo.Pulls)
	}
	if pr := repo.Pulls[0]; pr.ReviewRequests != 0 || strings.Join(pr.Labels, ",") != "postmortem" {
		t.Errorf("unmapped commander: %d review requests; labels %v", pr.ReviewRequests, pr.Labels)
	}
	for _, doc := range repo.Files {
		if !strings.HasPrefix(doc, "# [DRILL] Postmortem INC-1") {
			t.Errorf("drill postmortem unmarked:\n%s", doc)
		}
	}
	for _, c := range fake.Calls() {
		if !strings.HasPrefix(c.Path, "/api/v3/repos/") {
			t.Errorf("call outside the Enterprise API root: %s %s", c.Method, c.Path)
		}
	}
}

// TestRefusals: a 422 that a second lookup does not explain is a definitive
// refusal (dead-lettered, no pull request without its file); a reviewer who
// is not a collaborator is logged and the pull request still recorded.
func TestRefusals(t *testing.T) {
	h, fake, p := setup(t, "")
	st := h.Declare(t, incident.Declare{Title: "Card payments failing", Service: "payments", Severity: "SEV2"})
	h.Do(t, st.ID, incident.AssignCommander{User: "dave"}) // mapped to a login that is no collaborator
	fake.Add("PUT /repos/acme/postmortems/contents/", http.StatusUnprocessableEntity, "")
	_, err := p.Postmortem(context.Background(), st.ID)
	if !errors.Is(err, projection.ErrPermanent) || !strings.Contains(err.Error(), "create postmortems/") {
		t.Fatalf("err = %v, want a permanent error naming the file", err)
	}
	if n := len(fake.Repo("acme/postmortems").Pulls); n != 0 {
		t.Fatalf("%d pulls opened without the postmortem file", n)
	}
	pr, err := p.Postmortem(context.Background(), st.ID)
	if err != nil || pr.Number != 1 {
		t.Fatalf("second attempt: %+v %v", pr, err)
	}
	if got := fake.Repo("acme/postmortems").Pulls[0]; got.ReviewRequests != 0 || len(got.Labels) != 2 {
		t.Errorf("pull %+v", got)
	}
	if n := h.Count(t, st.ID, events.TypeGitHubPostmortemOpened); n != 1 {
		t.Errorf("%d postmortem_opened events", n)
	}
}

// TestLostRecordIssueAnswerMakesOneIssue: GitHub created the recording
// issue but the answer was lost (502, then a dropped connection on a
// second incident): the label is searched before any second create.
func TestLostRecordIssueAnswerMakesOneIssue(t *testing.T) {
	h, fake, p := setup(t, "  record_issue: true\n")
	faults := []func(){
		func() { fake.AddAfter("POST /repos/acme/postmortems/issues", http.StatusBadGateway) },
		func() { fake.AddDrop("POST /repos/acme/postmortems/issues", true) },
	}
	for i, title := range []string{"Search latency", "Queue backlog"} {
		faults[i]()
		st := h.Declare(t, incident.Declare{Title: title, Service: "search", Severity: "SEV3"})
		h.Do(t, st.ID, incident.AddNote{Text: "shard 3 hot"})
		for range 3 { // the projector's retries
			if err := p.Handle(context.Background(), h.Events(t, st.ID)[0]); err == nil {
				break
			}
		}
		h.Replay(t, st.ID, p.Handle)
	}
	repo := fake.Repo("acme/postmortems")
	if len(repo.Issues) != 2 {
		t.Fatalf("%d recording issues for 2 incidents: %+v", len(repo.Issues), repo.Issues)
	}
	for _, is := range repo.Issues {
		if got := repo.Comments[is.Number]; len(got) != 1 {
			t.Errorf("issue %d: %d comments, want the note once", is.Number, len(got))
		}
	}
}
