// Package github is the one GitHub client of Hikeshi (REST API v3, github.com
// and Enterprise Server): the postmortem pull requests, the recording
// issues and the alert tickets all go through it. It keeps GitHub's rate
// limits: 429 and the secondary limit (403 with Retry-After) are waited
// out, an exhausted primary limit until X-RateLimit-Reset, 5xx retried,
// and writes can be spaced apart (Config.WriteInterval). An issue create
// whose fate a 5xx leaves unknown is handed back for the caller to search
// before it creates again. Every failure is an *Error whose Permanent
// method says whether sending the request again can help.
package github

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	gh "github.com/google/go-github/v60/github"
	"github.com/hikeshi/hikeshi/adapters/httpx"
)

// DefaultBaseURL is github.com's API root.
const DefaultBaseURL = "https://api.github.com/"

// Config says where GitHub is and how to call it.
type Config struct {
	// BaseURL is the REST API root (default DefaultBaseURL); for
	// Enterprise Server https://ghe.example.com/api/v3/.
	BaseURL string
	Token   string
	// WriteInterval spaces writes apart (GitHub asks integrations for
	// serial writes about a second apart); 0 does not space them.
	WriteInterval time.Duration
	// Base carries the requests under the retries (default: the standard
	// transport with a 30 s bound on each answer).
	Base http.RoundTripper
}

// Client calls one GitHub.
type Client struct{ gh *gh.Client }

// New returns a client for cfg.
func New(cfg Config) (*Client, error) {
	base := cfg.BaseURL
	if base == "" {
		base = DefaultBaseURL
	}
	u, err := url.Parse(strings.TrimSuffix(base, "/") + "/")
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("github: want an http(s) API root, got %q", cfg.BaseURL)
	}
	t := &httpx.Transport{Base: cfg.Base, RateLimited: secondaryLimit, RateLimitOnly: httpx.CreateNotRetried("/issues")}
	httpc := httpx.Client("Bearer "+cfg.Token, t)
	t.Base = resetWait{next: t.Base}
	if cfg.WriteInterval > 0 {
		httpc.Transport = paced{next: httpc.Transport, pacer: &httpx.Pacer{Interval: cfg.WriteInterval}}
	}
	c := gh.NewClient(httpc)
	c.BaseURL = u
	return &Client{gh: c}, nil
}

// secondaryLimit is GitHub's secondary rate limit (403 with Retry-After)
// and an exhausted primary limit (403 with no requests remaining).
func secondaryLimit(r *http.Response) bool {
	return r.StatusCode == http.StatusForbidden &&
		(r.Header.Get("Retry-After") != "" || r.Header.Get("X-RateLimit-Remaining") == "0")
}

// resetWait turns an exhausted primary limit's X-RateLimit-Reset (epoch
// seconds) into the Retry-After the transport obeys: GitHub asks not to
// retry before that time, and sends no Retry-After with it.
type resetWait struct{ next http.RoundTripper }

func (t resetWait) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(r)
	if err != nil || resp.Header.Get("Retry-After") != "" || resp.Header.Get("X-RateLimit-Remaining") != "0" ||
		(resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusTooManyRequests) {
		return resp, err
	}
	if reset, perr := strconv.ParseInt(resp.Header.Get("X-RateLimit-Reset"), 10, 64); perr == nil {
		wait := max(time.Until(time.Unix(reset, 0)), 0)
		resp.Header.Set("Retry-After", strconv.Itoa(int(wait.Seconds()+0.999)))
	}
	return resp, nil
}

// paced sends writes one at a time, WriteInterval apart.
type paced struct {
	next  http.RoundTripper
	pacer *httpx.Pacer
}

func (p paced) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		if err := p.pacer.Wait(r.Context(), "writes"); err != nil {
			return nil, err
		}
	}
	return p.next.RoundTrip(r)
}

// Repo names a repository.
type Repo struct{ Owner, Name string }

func (r Repo) String() string { return r.Owner + "/" + r.Name }

// ParseRepo reads owner/name.
func ParseRepo(s string) (Repo, error) {
	owner, name, ok := strings.Cut(s, "/")
	if !ok || owner == "" || name == "" || strings.Contains(name, "/") {
		return Repo{}, fmt.Errorf("want owner/name, got %q", s)
	}
	return Repo{owner, name}, nil
}

// Error is a failed call: no answer (Status 0) or GitHub's refusal.
type Error struct {
	Op     string // what was asked: "create issue", "pull request acme/x#3"
	Status int
	Err    error // go-github's error, with GitHub's message
}

func (e *Error) Error() string { return "github " + e.Op + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Permanent reports a refusal that sending the same request again cannot
// change (httpx.Permanent): 400, 404, 410, 413, 422.
func (e *Error) Permanent() bool { return httpx.Permanent(e.Status) }

// IsStatus reports whether err is GitHub's answer status.
func IsStatus(err error, status int) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == status
}

// failed wraps a go-github error as *Error; nil stays nil.
func failed(op string, resp *gh.Response, err error) error {
	if err == nil {
		return nil
	}
	e := &Error{Op: op, Err: err}
	if resp != nil && resp.Response != nil {
		e.Status = resp.StatusCode
	}
	return e
}

// exists reads a lookup's answer: a 404 says the thing is not there.
func exists(op string, resp *gh.Response, err error) (bool, error) {
	err = failed(op, resp, err)
	if IsStatus(err, http.StatusNotFound) {
		return false, nil
	}
	return err == nil, err
}

// DefaultBranch is the repository's default branch.
func (c *Client) DefaultBranch(ctx context.Context, r Repo) (string, error) {
	repo, resp, err := c.gh.Repositories.Get(ctx, r.Owner, r.Name)
	return repo.GetDefaultBranch(), failed("repository "+r.String(), resp, err)
}

// Branch returns the commit branch points at; ok is false when there is
// no such branch.
func (c *Client) Branch(ctx context.Context, r Repo, branch string) (sha string, ok bool, err error) {
	ref, resp, err := c.gh.Git.GetRef(ctx, r.Owner, r.Name, "heads/"+branch)
	ok, err = exists("branch "+branch, resp, err)
	return ref.GetObject().GetSHA(), ok, err
}

// CreateBranch creates branch at commit sha (422 when it exists).
func (c *Client) CreateBranch(ctx context.Context, r Repo, branch, sha string) error {
	_, resp, err := c.gh.Git.CreateRef(ctx, r.Owner, r.Name, &gh.Reference{
		Ref: gh.String("refs/heads/" + branch), Object: &gh.GitObject{SHA: gh.String(sha)},
	})
	return failed("create branch "+branch, resp, err)
}

// FileExists reports whether path exists on branch.
func (c *Client) FileExists(ctx context.Context, r Repo, branch, path string) (bool, error) {
	_, _, resp, err := c.gh.Repositories.GetContents(ctx, r.Owner, r.Name, path, &gh.RepositoryContentGetOptions{Ref: branch})
	return exists("contents "+path, resp, err)
}

// CreateFile commits a new file at path on branch (422 when it exists).
func (c *Client) CreateFile(ctx context.Context, r Repo, branch, path, message string, content []byte) error {
	_, resp, err := c.gh.Repositories.CreateFile(ctx, r.Owner, r.Name, path, &gh.RepositoryContentFileOptions{
		Message: gh.String(message), Content: content, Branch: gh.String(branch),
	})
	return failed("create "+path, resp, err)
}

// PR is a pull request.
type PR struct {
	Number int
	URL    string
	Merged bool
}

func pr(p *gh.PullRequest) PR {
	return PR{Number: p.GetNumber(), URL: p.GetHTMLURL(), Merged: p.GetMerged()}
}

// NewPR is a pull request to open.
type NewPR struct{ Title, Head, Base, Body string }

// FindPR returns the pull request, open or closed, from branch of r.
func (c *Client) FindPR(ctx context.Context, r Repo, branch string) (PR, bool, error) {
	prs, resp, err := c.gh.PullRequests.List(ctx, r.Owner, r.Name, &gh.PullRequestListOptions{
		State: "all", Head: r.Owner + ":" + branch, ListOptions: gh.ListOptions{PerPage: 10},
	})
	if err != nil || len(prs) == 0 {
		return PR{}, false, failed("list pull requests", resp, err)
	}
	return pr(prs[0]), true, nil
}

// CreatePR opens a pull request (422 when one exists for the branch).
func (c *Client) CreatePR(ctx context.Context, r Repo, n NewPR) (PR, error) {
	p, resp, err := c.gh.PullRequests.Create(ctx, r.Owner, r.Name, &gh.NewPullRequest{
		Title: gh.String(n.Title), Head: gh.String(n.Head), Base: gh.String(n.Base), Body: gh.String(n.Body),
	})
	if err != nil {
		return PR{}, failed("create pull request", resp, err)
	}
	return pr(p), nil
}

// GetPR reads pull request n of r.
func (c *Client) GetPR(ctx context.Context, r Repo, n int) (PR, error) {
	p, resp, err := c.gh.PullRequests.Get(ctx, r.Owner, r.Name, n)
	if err != nil {
		return PR{}, failed(fmt.Sprintf("pull request %s#%d", r, n), resp, err)
	}
	return pr(p), nil
}

// RequestReview asks login to review pull request n (422 when login is
// its author or no collaborator).
func (c *Client) RequestReview(ctx context.Context, r Repo, n int, login string) error {
	_, resp, err := c.gh.PullRequests.RequestReviewers(ctx, r.Owner, r.Name, n, gh.ReviewersRequest{Reviewers: []string{login}})
	return failed("request review", resp, err)
}

// AddLabels adds labels to issue or pull request n; labels it has stay.
func (c *Client) AddLabels(ctx context.Context, r Repo, n int, labels []string) error {
	_, resp, err := c.gh.Issues.AddLabelsToIssue(ctx, r.Owner, r.Name, n, labels)
	return failed("labels", resp, err)
}

// NewIssue is an issue to open.
type NewIssue struct {
	Title, Body string
	Labels      []string
}

// FindIssue returns the number of an issue of r, open or closed, carrying
// label: the lookup before a create.
func (c *Client) FindIssue(ctx context.Context, r Repo, label string) (int, bool, error) {
	found, resp, err := c.gh.Issues.ListByRepo(ctx, r.Owner, r.Name, &gh.IssueListByRepoOptions{
		State: "all", Labels: []string{label}, ListOptions: gh.ListOptions{PerPage: 1},
	})
	if err != nil || len(found) == 0 {
		return 0, false, failed("find issue", resp, err)
	}
	return found[0].GetNumber(), true, nil
}

// CreateIssue opens an issue and returns its number. A create is not
// retried after a 5xx or a lost connection (GitHub may have created it):
// search before calling again.
func (c *Client) CreateIssue(ctx context.Context, r Repo, n NewIssue) (int, error) {
	is, resp, err := c.gh.Issues.Create(ctx, r.Owner, r.Name, &gh.IssueRequest{
		Title: gh.String(n.Title), Body: gh.String(n.Body), Labels: &n.Labels,
	})
	if err != nil {
		return 0, failed("create issue", resp, err)
	}
	return is.GetNumber(), nil
}

// SetOpen reopens issue n, or closes it as completed.
func (c *Client) SetOpen(ctx context.Context, r Repo, n int, open bool) error {
	req := &gh.IssueRequest{State: gh.String("open")}
	if !open {
		req = &gh.IssueRequest{State: gh.String("closed"), StateReason: gh.String("completed")}
	}
	_, resp, err := c.gh.Issues.Edit(ctx, r.Owner, r.Name, n, req)
	return failed(fmt.Sprintf("set state of issue %d", n), resp, err)
}

// Comment comments on issue or pull request n and returns the comment's id.
func (c *Client) Comment(ctx context.Context, r Repo, n int, body string) (int64, error) {
	cm, resp, err := c.gh.Issues.CreateComment(ctx, r.Owner, r.Name, n, &gh.IssueComment{Body: gh.String(body)})
	if err != nil {
		return 0, failed(fmt.Sprintf("comment on issue %d", n), resp, err)
	}
	return cm.GetID(), nil
}

// FindComment returns the id of the first comment on issue n that
// contains mark, reading every page.
func (c *Client) FindComment(ctx context.Context, r Repo, n int, mark string) (int64, bool, error) {
	opts := &gh.IssueListCommentsOptions{ListOptions: gh.ListOptions{PerPage: 100}}
	for {
		comments, resp, err := c.gh.Issues.ListComments(ctx, r.Owner, r.Name, n, opts)
		if err != nil {
			return 0, false, failed(fmt.Sprintf("comments of issue %d", n), resp, err)
		}
		for _, cm := range comments {
			if strings.Contains(cm.GetBody(), mark) {
				return cm.GetID(), true, nil
			}
		}
		if resp.NextPage == 0 {
			return 0, false, nil
		}
		opts.Page = resp.NextPage
	}
}
