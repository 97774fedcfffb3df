package jira_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/hikeshi/hikeshi/adapters/jira"
	"github.com/hikeshi/hikeshi/adapters/jiratest"
)

func client(t *testing.T, fake *jiratest.Server, auth string) *jira.Client {
	t.Helper()
	c, err := jira.New(jira.Config{BaseURL: fake.URL, Authorization: auth})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// An issue's life through the client: created after a 429, found by its
// label, commented on (comments found again across pages), attached to,
// moved to done by name, and left alone once done.
func TestIssueLifecycle(t *testing.T) {
	ctx := context.Background()
	auth := jira.Authorization("ops@acme.test", "t0k")
	fake := jiratest.New(t, auth)
	fake.Add("POST /rest/api/2/issue", http.StatusTooManyRequests, "0")
	c := client(t, fake, auth)
	is, err := c.Create(ctx, jira.NewIssue{Project: "OPS", Type: "Task", Summary: "Disk full", Description: "db-1",
		Priority: "High", Labels: []string{"hikeshi-x"}})
	if err != nil || is.Key != "OPS-1" || is.ID == "" {
		t.Fatalf("create: %+v %v", is, err)
	}
	if found, ok, err := c.FindByLabel(ctx, "OPS", "hikeshi-x"); err != nil || !ok || found.Key != "OPS-1" {
		t.Fatalf("find: %+v %v %v", found, ok, err)
	}
	if _, ok, err := c.FindByLabel(ctx, "OPS", "hikeshi-y"); err != nil || ok {
		t.Fatalf("find of a label nobody carries: %v %v", ok, err)
	}
	for _, body := range []string{"one", "two", "three mark-3", "four"} {
		if _, err := c.Comment(ctx, is.Key, body); err != nil {
			t.Fatal(err)
		}
	}
	if id, ok, err := c.FindComment(ctx, is.Key, "mark-3"); err != nil || !ok || id == "" {
		t.Fatalf("the third comment, on the second page: %q %v %v", id, ok, err)
	}
	if _, ok, err := c.FindComment(ctx, is.Key, "mark-9"); err != nil || ok {
		t.Fatalf("a comment never made: %v %v", ok, err)
	}
	if _, err := c.Attach(ctx, is.Key, "export.json", []byte(`{"a":1}`)); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Get(ctx, is.Key, "attachment"); err != nil || len(got.Attachments) != 1 || got.Attachments[0].Filename != "export.json" {
		t.Fatalf("attachments: %+v %v", got, err)
	}
	if err := c.Update(ctx, is.Key, map[string]any{"priority": map[string]string{"name": "Highest"}}); err != nil {
		t.Fatal(err)
	}
	if to, err := c.Transition(ctx, is.Key, "done", true); err != nil || to != "Done" {
		t.Fatalf("transition: %q %v", to, err)
	}
	if to, err := c.Transition(ctx, is.Key, "done", true); err != nil || to != "Done" {
		t.Fatalf("an issue already done: %q %v", to, err)
	}
	issues, _ := fake.Snapshot()
	if len(issues) != 1 || issues[0].Priority != "Highest" || issues[0].Transitions != 1 || len(issues[0].Comments) != 4 {
		t.Fatalf("issues %+v", issues)
	}
}

// Callers branch on the errors: a refusal names the field and is
// permanent; a missing transition names those offered; a wrong token and
// an outage are not permanent.
func TestTypedErrors(t *testing.T) {
	ctx := context.Background()
	fake := jiratest.New(t, "Bearer t0k")
	c := client(t, fake, "Bearer t0k")
	_, err := c.Create(ctx, jira.NewIssue{Project: "OPS", Type: "Incident", Summary: "x"})
	var jerr *jira.Error
	if !errors.As(err, &jerr) || jerr.Status != http.StatusBadRequest || !jerr.Permanent() || jerr.Fields["issuetype"] == "" ||
		!strings.Contains(err.Error(), "jira create: 400 Bad Request; issuetype: valid issue type is required") {
		t.Fatalf("refused create: %v", err)
	}
	is, err := c.Create(ctx, jira.NewIssue{Project: "OPS", Type: "Task", Summary: "x"})
	if err != nil {
		t.Fatal(err)
	}
	fake.Done = "Close"
	_, err = c.Transition(ctx, is.Key, "Resolve", true)
	var none *jira.NoTransitionError
	if !errors.As(err, &none) || !none.Permanent() || !strings.Contains(err.Error(), `no transition named "Resolve" (available: In Progress, Close)`) {
		t.Fatalf("missing transition: %v", err)
	}
	fake.Auth = "Bearer other"
	if _, err := c.Comment(ctx, is.Key, "x"); !errors.As(err, &jerr) || jerr.Status != http.StatusUnauthorized || jerr.Permanent() {
		t.Fatalf("wrong token: %v", err)
	}
	fake.Auth = "Bearer t0k"
	fake.Add("/comment", http.StatusServiceUnavailable, "")
	if _, err := c.Comment(ctx, is.Key, "after an outage"); err != nil {
		t.Fatalf("a 503 is retried: %v", err)
	}
}

// A create whose answer is lost is handed back, not sent again: JIRA may
// have created the issue, and the caller searches before it creates again.
func TestLostCreateNotRetried(t *testing.T) {
	fake := jiratest.New(t, "Bearer t0k")
	fake.AddAfter("POST /rest/api/2/issue", http.StatusBadGateway)
	c := client(t, fake, "Bearer t0k")
	_, err := c.Create(context.Background(), jira.NewIssue{Project: "OPS", Type: "Task", Summary: "x"})
	var jerr *jira.Error
	if !errors.As(err, &jerr) || jerr.Status != http.StatusBadGateway || jerr.Permanent() {
		t.Fatalf("err %v", err)
	}
	if issues, calls := fake.Snapshot(); len(issues) != 1 || len(calls) != 1 {
		t.Fatalf("%d issues after %d calls, want the one create sent once", len(issues), len(calls))
	}
}

func TestConfig(t *testing.T) {
	for _, u := range []string{"", "acme.atlassian.net", "ftp://acme.test"} {
		if _, err := jira.New(jira.Config{BaseURL: u}); err == nil {
			t.Errorf("%q: no error", u)
		}
	}
	if got := jira.Authorization("", "pat"); got != "Bearer pat" {
		t.Errorf("bearer: %q", got)
	}
	if got := jira.Authorization("alerts@acme.test", "jira-token"); got != "Basic YWxlcnRzQGFjbWUudGVzdDpqaXJhLXRva2Vu" {
		t.Errorf("basic: %q", got)
	}
}
