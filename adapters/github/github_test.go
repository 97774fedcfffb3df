package github_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/adapters/github"
	"github.com/hikeshi/hikeshi/adapters/githubtest"
)

var repo = github.Repo{Owner: "acme", Name: "postmortems"}

func client(t *testing.T, fake *githubtest.Server) *github.Client {
	t.Helper()
	c, err := github.New(github.Config{BaseURL: fake.APIURL(), Token: "t0k", WriteInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// A postmortem's steps through the client, each looked up first, under an
// Enterprise API root: the branch, the file, the pull request, its
// reviewer and labels; every rate limit GitHub has is waited out.
func TestPullRequestSteps(t *testing.T) {
	ctx := context.Background()
	fake := githubtest.New(t, "t0k", "acme/postmortems")
	fake.Prefix = "/api/v3"
	fake.Add("POST /api/v3/repos/acme/postmortems/git/refs", http.StatusForbidden, "0")          // secondary limit
	fake.LimitUntil("PUT /api/v3/repos/acme/postmortems/contents/", time.Now().Add(time.Second)) // primary limit
	fake.Add("POST /api/v3/repos/acme/postmortems/pulls", http.StatusTooManyRequests, "0")
	c := client(t, fake)
	base, err := c.DefaultBranch(ctx, repo)
	if err != nil || base != "main" {
		t.Fatalf("default branch %q %v", base, err)
	}
	if _, ok, err := c.Branch(ctx, repo, "postmortem/INC-1"); ok || err != nil {
		t.Fatalf("a branch not made yet: %v %v", ok, err)
	}
	sha, ok, err := c.Branch(ctx, repo, base)
	if !ok || err != nil || sha == "" {
		t.Fatalf("base branch: %q %v %v", sha, ok, err)
	}
	if err := c.CreateBranch(ctx, repo, "postmortem/INC-1", sha); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateBranch(ctx, repo, "postmortem/INC-1", sha); !github.IsStatus(err, http.StatusUnprocessableEntity) {
		t.Fatalf("a branch made twice: %v", err)
	}
	if ok, err := c.FileExists(ctx, repo, "postmortem/INC-1", "pm.md"); ok || err != nil {
		t.Fatalf("a file not written yet: %v %v", ok, err)
	}
	if err := c.CreateFile(ctx, repo, "postmortem/INC-1", "pm.md", "draft", []byte("# PM")); err != nil {
		t.Fatal(err)
	}
	if ok, err := c.FileExists(ctx, repo, "postmortem/INC-1", "pm.md"); !ok || err != nil {
		t.Fatalf("the file written: %v %v", ok, err)
	}
	pr, err := c.CreatePR(ctx, repo, github.NewPR{Title: "Postmortem", Head: "postmortem/INC-1", Base: base, Body: "b"})
	if err != nil || pr.Number != 1 || !strings.HasSuffix(pr.URL, "/pull/1") {
		t.Fatalf("pull request %+v %v", pr, err)
	}
	if found, ok, err := c.FindPR(ctx, repo, "postmortem/INC-1"); !ok || err != nil || found != pr {
		t.Fatalf("found %+v %v %v", found, ok, err)
	}
	if err := c.RequestReview(ctx, repo, pr.Number, "ghost"); !github.IsStatus(err, http.StatusUnprocessableEntity) {
		t.Fatalf("a reviewer who is no collaborator: %v", err)
	}
	if err := c.AddLabels(ctx, repo, pr.Number, []string{"postmortem"}); err != nil {
		t.Fatal(err)
	}
	fake.Merge("acme/postmortems", 1)
	if got, err := c.GetPR(ctx, repo, 1); err != nil || !got.Merged {
		t.Fatalf("merged: %+v %v", got, err)
	}
	r := fake.Repo("acme/postmortems")
	if len(r.Pulls) != 1 || len(r.Files) != 1 || strings.Join(r.Pulls[0].Labels, ",") != "postmortem" {
		t.Fatalf("repo %+v", r)
	}
	if n := fake.LimitedCalls(); n != 1 {
		t.Errorf("%d calls refused by the primary limit, want 1: the client waits for the reset", n)
	}
	if n := fake.Count(http.MethodPost, "/git/refs"); n != 3 {
		t.Errorf("%d branch creations sent, want 3 (limited, made, refused)", n)
	}
}

// An issue's life: found by label after it is created, commented on
// (the comment found again), closed and reopened.
func TestIssueSteps(t *testing.T) {
	ctx := context.Background()
	fake := githubtest.New(t, "t0k", "acme/alerts")
	c := client(t, fake)
	alerts := github.Repo{Owner: "acme", Name: "alerts"}
	if _, ok, err := c.FindIssue(ctx, alerts, "hikeshi-fp-1"); ok || err != nil {
		t.Fatalf("no issue yet: %v %v", ok, err)
	}
	n, err := c.CreateIssue(ctx, alerts, github.NewIssue{Title: "Disk full", Body: "db-1", Labels: []string{"hikeshi-fp-1", "alert"}})
	if err != nil || n != 1 {
		t.Fatalf("create: %d %v", n, err)
	}
	if found, ok, err := c.FindIssue(ctx, alerts, "hikeshi-fp-1"); !ok || err != nil || found != n {
		t.Fatalf("find: %d %v %v", found, ok, err)
	}
	if _, err := c.Comment(ctx, alerts, n, "seen <!-- mark-1 -->"); err != nil {
		t.Fatal(err)
	}
	if id, ok, err := c.FindComment(ctx, alerts, n, "mark-1"); !ok || err != nil || id == 0 {
		t.Fatalf("comment found: %d %v %v", id, ok, err)
	}
	if _, ok, err := c.FindComment(ctx, alerts, n, "mark-2"); ok || err != nil {
		t.Fatalf("a comment never made: %v %v", ok, err)
	}
	if err := c.SetOpen(ctx, alerts, n, false); err != nil || fake.Repo("acme/alerts").Issues[0].State != "closed" {
		t.Fatalf("close: %v", err)
	}
	if err := c.SetOpen(ctx, alerts, n, true); err != nil || fake.Repo("acme/alerts").Issues[0].State != "open" {
		t.Fatalf("reopen: %v", err)
	}
}

// Callers branch on the errors: a refusal is permanent, a wrong token is
// not, and an issue create whose answer is lost is handed back, sent once.
func TestTypedErrors(t *testing.T) {
	ctx := context.Background()
	fake := githubtest.New(t, "t0k", "acme/alerts")
	c := client(t, fake)
	alerts := github.Repo{Owner: "acme", Name: "alerts"}
	var gerr *github.Error
	if _, err := c.GetPR(ctx, alerts, 7); !errors.As(err, &gerr) || gerr.Status != http.StatusNotFound || !gerr.Permanent() ||
		!strings.Contains(err.Error(), "github pull request acme/alerts#7") {
		t.Fatalf("a pull request that is not there: %v", err)
	}
	fake.AddAfter("POST /repos/acme/alerts/issues", http.StatusBadGateway)
	if _, err := c.CreateIssue(ctx, alerts, github.NewIssue{Title: "x"}); !errors.As(err, &gerr) || gerr.Status != http.StatusBadGateway || gerr.Permanent() {
		t.Fatalf("a lost create: %v", err)
	}
	if n := fake.Count(http.MethodPost, "/issues"); n != 1 || len(fake.Repo("acme/alerts").Issues) != 1 {
		t.Fatalf("%d creates sent, want the one not retried", n)
	}
	fake.Token = "other"
	if _, _, err := c.FindIssue(ctx, alerts, "x"); !errors.As(err, &gerr) || gerr.Status != http.StatusUnauthorized || gerr.Permanent() {
		t.Fatalf("a wrong token: %v", err)
	}
	for _, u := range []string{"api.github.com", "ftp://x.test/"} {
		if _, err := github.New(github.Config{BaseURL: u}); err == nil {
			t.Errorf("%q: no error", u)
		}
	}
	if r, err := github.ParseRepo("acme/alerts"); err != nil || r != alerts {
		t.Errorf("ParseRepo: %v %v", r, err)
	}
	for _, bad := range []string{"acme", "acme/", "/x", "a/b/c"} {
		if _, err := github.ParseRepo(bad); err == nil {
			t.Errorf("ParseRepo(%q): no error", bad)
		}
	}
}
