// Package githubtest is a local GitHub for tests: it speaks the parts of
// the REST API v3 that Hikeshi uses (repositories, refs, contents, pull
// requests, reviewers, labels, issues, comments) with GitHub's payloads
// and error shapes, for any number of repositories, under the API root of
// github.com or of Enterprise Server (Prefix), and records every call. It
// injects failures (httpxtest.Faults): 429 and the secondary limit (403)
// with Retry-After, 5xx, refusals, answers lost after a create, dropped
// connections; and it keeps a primary limit exhausted until its reset
// (LimitUntil: 403 with X-RateLimit-Remaining: 0 and X-RateLimit-Reset).
package githubtest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/adapters/httpx/httpxtest"
)

var _ http.Handler = (*Server)(nil)

// Server is the fake GitHub; APIURL is its API root.
type Server struct {
	*httptest.Server
	Token string // every call must carry "Bearer " + Token
	// Prefix is the API root's path: "" for api.github.com, /api/v3 for
	// Enterprise Server.
	Prefix string

	httpxtest.Faults // answered, in order, before the real handling

	mu      sync.Mutex
	calls   []Call
	repos   map[string]*Repo
	limit   primaryLimit
	limited int // calls refused by the primary limit
}

// primaryLimit refuses the calls matching until reset (epoch seconds).
type primaryLimit struct {
	match string
	reset int64
}

// Call is one recorded request.
type Call struct{ Method, Path, Query, Body string }

// Repo is a repository as the server keeps it.
type Repo struct {
	Private  bool
	Refs     map[string]string // branch → sha
	Files    map[string]string // branch:path → content
	Pulls    []*Pull
	Issues   []*Issue
	Comments map[int][]string // issue or pull request number → bodies
}

// Pull is a pull request.
type Pull struct {
	Number          int
	Title, Head     string
	Base, Body      string
	Merged          bool
	Reviewers       []string
	Labels          []string
	ReviewRequests  int
	LabelsRequested int
}

// Issue is an issue (not a pull request).
type Issue struct {
	Number int
	Title  string
	Body   string
	State  string
	Labels []string
}

// New starts a server holding repos (owner/name), each with a branch
// main, that wants token; it is closed when t ends.
func New(t testing.TB, token string, repos ...string) *Server {
	f := &Server{Token: token, repos: map[string]*Repo{}}
	for _, r := range repos {
		f.repos[r] = &Repo{Refs: map[string]string{"main": "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678"}, Files: map[string]string{}, Comments: map[int][]string{}}
	}
	f.Server = httptest.NewServer(f)
	t.Cleanup(f.Close)
	return f
}

// APIURL is the API root to configure: URL + Prefix.
func (f *Server) APIURL() string { return f.URL + f.Prefix }

// LimitUntil exhausts the primary rate limit until reset (in whole
// seconds, as GitHub counts): until then every call whose "METHOD /path"
// contains match ("" for any) is answered 403 with
// X-RateLimit-Remaining: 0 and X-RateLimit-Reset, and no Retry-After.
func (f *Server) LimitUntil(match string, reset time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.limit = primaryLimit{match: match, reset: reset.Unix()}
}

// LimitedCalls counts the calls refused by the primary limit: a client
// that waits for the reset makes one.
func (f *Server) LimitedCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.limited
}

// limitedNow answers r when the primary limit refuses it.
func (f *Server) limitedNow(w http.ResponseWriter, r *http.Request) bool {
	if f.limit.reset == 0 || time.Now().Unix() >= f.limit.reset || !strings.Contains(r.Method+" "+r.URL.Path, f.limit.match) {
		return false
	}
	f.limited++
	w.Header().Set("X-Ratelimit-Limit", "5000")
	w.Header().Set("X-Ratelimit-Remaining", "0")
	w.Header().Set("X-Ratelimit-Reset", strconv.FormatInt(f.limit.reset, 10))
	ghError(w, http.StatusForbidden, "API rate limit exceeded for installation ID 1.")
	return true
}

func ghError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"message": msg, "documentation_url": "https://docs.github.com/rest"})
}

func ghReply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-RateLimit-Remaining", "4999")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

var reRepo = regexp.MustCompile(`^/repos/([^/]+)/([^/]+)(/.*)?$`)

// ServeHTTP answers one call as GitHub would.
func (f *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, Call{r.Method, r.URL.Path, r.URL.RawQuery, string(body)})
	if f.limitedNow(w, r) {
		return
	}
	ft, faulted := f.Next(w, r)
	if faulted && !ft.After {
		f.fail(w, ft)
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+f.Token {
		ghError(w, http.StatusUnauthorized, "Bad credentials")
		return
	}
	if faulted { // carried out, then the answer is lost
		defer f.fail(w, ft)
		w = httptest.NewRecorder()
	}
	path, ok := strings.CutPrefix(r.URL.Path, f.Prefix)
	m := reRepo.FindStringSubmatch(path)
	if !ok || m == nil {
		ghError(w, http.StatusNotFound, "Not Found")
		return
	}
	full := m[1] + "/" + m[2]
	repo, ok := f.repos[full]
	if !ok {
		ghError(w, http.StatusNotFound, "Not Found")
		return
	}
	f.route(w, r, full, repo, m[3], body)
}

// fail answers an injected fault: its status, or no answer at all.
func (f *Server) fail(w http.ResponseWriter, ft httpxtest.Fault) {
	if ft.Drop {
		httpxtest.Hangup(w)
		return
	}
	msg := http.StatusText(ft.Status)
	if ft.Status == http.StatusForbidden {
		msg = "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
	}
	ghError(w, ft.Status, msg)
}

func (f *Server) pullJSON(full string, p *Pull) map[string]any {
	reviewers := []map[string]string{}
	for _, l := range p.Reviewers {
		reviewers = append(reviewers, map[string]string{"login": l})
	}
	return map[string]any{
		"number": p.Number, "state": "open", "title": p.Title, "body": p.Body, "merged": p.Merged,
		"html_url": fmt.Sprintf("https://github.example/%s/pull/%d", full, p.Number),
		"head":     map[string]string{"ref": p.Head}, "base": map[string]string{"ref": p.Base},
		"requested_reviewers": reviewers,
	}
}

func (f *Server) route(w http.ResponseWriter, r *http.Request, full string, repo *Repo, rest string, body []byte) {
	var n int
	num := func(prefix string) bool {
		s, ok := strings.CutPrefix(rest, prefix)
		if !ok {
			return false
		}
		s, _, _ = strings.Cut(s, "/")
		var err error
		n, err = strconv.Atoi(s)
		return err == nil
	}
	switch {
	case rest == "" && r.Method == http.MethodGet:
		ghReply(w, 200, map[string]any{"full_name": full, "private": repo.Private, "default_branch": "main"})
	case strings.HasPrefix(rest, "/git/ref/heads/") && r.Method == http.MethodGet:
		branch := strings.TrimPrefix(rest, "/git/ref/heads/")
		sha, ok := repo.Refs[branch]
		if !ok {
			ghError(w, 404, "Not Found")
			return
		}
		ghReply(w, 200, map[string]any{"ref": "refs/heads/" + branch, "object": map[string]string{"sha": sha, "type": "commit"}})
	case rest == "/git/refs" && r.Method == http.MethodPost:
		var req struct{ Ref, Sha string }
		_ = json.Unmarshal(body, &req)
		branch := strings.TrimPrefix(req.Ref, "refs/heads/")
		if _, ok := repo.Refs[branch]; ok {
			ghError(w, 422, "Reference already exists")
			return
		}
		if req.Sha == "" {
			ghError(w, 422, "Invalid request.\n\n\"sha\" wasn't supplied.")
			return
		}
		repo.Refs[branch] = req.Sha
		ghReply(w, 201, map[string]any{"ref": req.Ref, "object": map[string]string{"sha": req.Sha, "type": "commit"}})
	case strings.HasPrefix(rest, "/contents/"):
		path := strings.TrimPrefix(rest, "/contents/")
		if r.Method == http.MethodGet {
			ref := r.URL.Query().Get("ref")
			content, ok := repo.Files[ref+":"+path]
			if !ok {
				ghError(w, 404, "Not Found")
				return
			}
			ghReply(w, 200, map[string]any{"type": "file", "path": path, "encoding": "base64", "content": base64.StdEncoding.EncodeToString([]byte(content)), "sha": "f00d"})
			return
		}
		var req struct{ Message, Content, Branch, Sha string }
		_ = json.Unmarshal(body, &req)
		if _, ok := repo.Files[req.Branch+":"+path]; ok && req.Sha == "" {
			ghError(w, 422, "Invalid request.\n\n\"sha\" wasn't supplied.")
			return
		}
		content, err := base64.StdEncoding.DecodeString(req.Content)
		if err != nil || req.Message == "" {
			ghError(w, 422, "Invalid request.")
			return
		}
		repo.Files[req.Branch+":"+path] = string(content)
		ghReply(w, 201, map[string]any{"content": map[string]string{"path": path, "sha": "f00d"}, "commit": map[string]string{"sha": "c0ffee", "message": req.Message}})
	case rest == "/pulls" && r.Method == http.MethodGet:
		q := r.URL.Query()
		out := []map[string]any{}
		for _, p := range repo.Pulls {
			if q.Get("head") == strings.Split(full, "/")[0]+":"+p.Head {
				out = append(out, f.pullJSON(full, p))
			}
		}
		ghReply(w, 200, out)
	case rest == "/pulls" && r.Method == http.MethodPost:
		var req struct{ Title, Head, Base, Body string }
		_ = json.Unmarshal(body, &req)
		for _, p := range repo.Pulls {
			if p.Head == req.Head {
				ghError(w, 422, "Validation Failed: A pull request already exists for "+req.Head+".")
				return
			}
		}
		if _, ok := repo.Refs[req.Head]; !ok {
			ghError(w, 422, "Validation Failed: head invalid")
			return
		}
		p := &Pull{Number: len(repo.Pulls) + len(repo.Issues) + 1, Title: req.Title, Head: req.Head, Base: req.Base, Body: req.Body}
		repo.Pulls = append(repo.Pulls, p)
		ghReply(w, 201, f.pullJSON(full, p))
	case num("/pulls/") && strings.HasSuffix(rest, "/requested_reviewers"):
		p := f.pull(repo, n)
		var req struct{ Reviewers []string }
		_ = json.Unmarshal(body, &req)
		for _, l := range req.Reviewers {
			if l == "ghost" {
				ghError(w, 422, "Reviews may only be requested from collaborators. One or more of the users or teams you specified is not a collaborator of the "+full+" repository.")
				return
			}
		}
		p.ReviewRequests++
		p.Reviewers = req.Reviewers
		ghReply(w, 201, f.pullJSON(full, p))
	case num("/pulls/") && r.Method == http.MethodGet:
		p := f.pull(repo, n)
		if p == nil {
			ghError(w, 404, "Not Found")
			return
		}
		ghReply(w, 200, f.pullJSON(full, p))
	case num("/issues/") && strings.HasSuffix(rest, "/labels"):
		var labels []string
		_ = json.Unmarshal(body, &labels)
		if p := f.pull(repo, n); p != nil {
			p.LabelsRequested++
			p.Labels = labels
		}
		out := []map[string]string{}
		for _, l := range labels {
			out = append(out, map[string]string{"name": l})
		}
		ghReply(w, 200, out)
	case num("/issues/") && strings.HasSuffix(rest, "/comments"):
		if r.Method == http.MethodGet {
			out := []map[string]any{}
			for i, c := range repo.Comments[n] {
				out = append(out, map[string]any{"id": i + 1, "body": c})
			}
			ghReply(w, 200, out)
			return
		}
		var req struct{ Body string }
		_ = json.Unmarshal(body, &req)
		repo.Comments[n] = append(repo.Comments[n], req.Body)
		ghReply(w, 201, map[string]any{"id": len(repo.Comments[n]), "body": req.Body})
	case num("/issues/") && r.Method == http.MethodPatch:
		var req struct{ State string }
		_ = json.Unmarshal(body, &req)
		for _, is := range repo.Issues {
			if is.Number == n {
				is.State = req.State
				ghReply(w, 200, f.issueJSON(full, is))
				return
			}
		}
		ghError(w, 404, "Not Found")
	case rest == "/issues" && r.Method == http.MethodGet:
		label := r.URL.Query().Get("labels")
		out := []map[string]any{}
		for _, is := range repo.Issues {
			for _, l := range is.Labels {
				if l == label {
					out = append(out, f.issueJSON(full, is))
				}
			}
		}
		ghReply(w, 200, out)
	case rest == "/issues" && r.Method == http.MethodPost:
		var req struct {
			Title, Body string
			Labels      []string
		}
		_ = json.Unmarshal(body, &req)
		is := &Issue{Number: len(repo.Pulls) + len(repo.Issues) + 1, Title: req.Title, Body: req.Body, State: "open", Labels: req.Labels}
		repo.Issues = append(repo.Issues, is)
		ghReply(w, 201, f.issueJSON(full, is))
	default:
		ghError(w, 404, "Not Found")
	}
}

func (f *Server) pull(repo *Repo, n int) *Pull {
	for _, p := range repo.Pulls {
		if p.Number == n {
			return p
		}
	}
	return nil
}

func (f *Server) issueJSON(full string, is *Issue) map[string]any {
	labels := []map[string]string{}
	for _, l := range is.Labels {
		labels = append(labels, map[string]string{"name": l})
	}
	return map[string]any{"number": is.Number, "title": is.Title, "body": is.Body, "state": is.State, "labels": labels,
		"html_url": fmt.Sprintf("https://github.example/%s/issues/%d", full, is.Number)}
}

// Repo returns a copy of repository name (owner/name) as it is now.
func (f *Server) Repo(name string) Repo {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := *f.repos[name]
	r.Refs, r.Files = maps.Clone(r.Refs), maps.Clone(r.Files)
	r.Comments = map[int][]string{}
	for n, c := range f.repos[name].Comments {
		r.Comments[n] = slices.Clone(c)
	}
	r.Pulls, r.Issues = nil, nil
	for _, p := range f.repos[name].Pulls {
		cp := *p
		r.Pulls = append(r.Pulls, &cp)
	}
	for _, is := range f.repos[name].Issues {
		cp := *is
		r.Issues = append(r.Issues, &cp)
	}
	return r
}

// Merge merges pull request n of repository name, as a reviewer would.
func (f *Server) Merge(name string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pull(f.repos[name], n).Merged = true
}

// Calls returns the recorded calls.
func (f *Server) Calls() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// Traffic is everything sent to the server: methods, paths, queries,
// bodies, and file contents decoded.
func (f *Server) Traffic() string {
	var b strings.Builder
	for _, c := range f.Calls() {
		q, _ := url.QueryUnescape(c.Query)
		fmt.Fprintf(&b, "%s %s?%s\n%s\n", c.Method, c.Path, q, c.Body)
		// File contents travel base64-encoded: decode them for the grep.
		var req struct{ Content string }
		if json.Unmarshal([]byte(c.Body), &req) == nil && req.Content != "" {
			d, _ := base64.StdEncoding.DecodeString(req.Content)
			b.Write(d)
		}
	}
	return b.String()
}

// Count counts the calls of method whose path ends in pathSuffix,
// answered or not.
func (f *Server) Count(method, pathSuffix string) int {
	n := 0
	for _, c := range f.Calls() {
		if c.Method == method && strings.HasSuffix(c.Path, pathSuffix) {
			n++
		}
	}
	return n
}
