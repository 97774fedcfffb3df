package github_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/hikeshi/hikeshi/services/integrationtest"
)

// fakeGitHub speaks the REST v3 endpoints the projector uses, with
// GitHub's payloads and error shapes, for any number of repositories, and
// records every call.
type fakeGitHub struct {
	srv   *httptest.Server
	token string
	// prefix is the API root's path: "" for api.github.com, /api/v3 for
	// Enterprise Server.
	prefix string

	integrationtest.Faults

	mu    sync.Mutex
	calls []ghCall
	repos map[string]*ghRepo
}

type ghCall struct{ Method, Path, Query, Body string }

type ghRepo struct {
	Private  bool
	Refs     map[string]string // branch → sha
	Files    map[string]string // branch:path → content
	Pulls    []*ghPull
	Issues   []*ghIssue
	Comments map[int][]string
}

type ghPull struct {
	Number          int
	Title, Head     string
	Base, Body      string
	Merged          bool
	Reviewers       []string
	Labels          []string
	ReviewRequests  int
	LabelsRequested int
}

type ghIssue struct {
	Number int
	Title  string
	Body   string
	State  string
	Labels []string
}

func newFakeGitHub(t *testing.T, token string, repos ...string) *fakeGitHub {
	f := &fakeGitHub{token: token, repos: map[string]*ghRepo{}}
	for _, r := range repos {
		f.repos[r] = &ghRepo{Refs: map[string]string{"main": "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678"}, Files: map[string]string{}, Comments: map[int][]string{}}
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
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

func (f *fakeGitHub) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, ghCall{r.Method, r.URL.Path, r.URL.RawQuery, string(body)})
	ft, faulted := f.Next(w, r)
	if faulted && !ft.After {
		f.fail(w, ft)
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+f.token {
		ghError(w, http.StatusUnauthorized, "Bad credentials")
		return
	}
	if faulted { // carried out, then the answer is lost
		defer f.fail(w, ft)
		w = httptest.NewRecorder()
	}
	path, ok := strings.CutPrefix(r.URL.Path, f.prefix)
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
func (f *fakeGitHub) fail(w http.ResponseWriter, ft integrationtest.Fault) {
	if ft.Drop {
		integrationtest.Hangup(w)
		return
	}
	msg := http.StatusText(ft.Status)
	if ft.Status == http.StatusForbidden {
		msg = "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
	}
	ghError(w, ft.Status, msg)
}

func (f *fakeGitHub) pullJSON(full string, p *ghPull) map[string]any {
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

func (f *fakeGitHub) route(w http.ResponseWriter, r *http.Request, full string, repo *ghRepo, rest string, body []byte) {
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
		p := &ghPull{Number: len(repo.Pulls) + len(repo.Issues) + 1, Title: req.Title, Head: req.Head, Base: req.Base, Body: req.Body}
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
				ghReply(w, 200, map[string]any{"number": n, "state": is.State})
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
					out = append(out, map[string]any{"number": is.Number, "title": is.Title, "state": is.State})
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
		is := &ghIssue{Number: len(repo.Pulls) + len(repo.Issues) + 1, Title: req.Title, Body: req.Body, State: "open", Labels: req.Labels}
		repo.Issues = append(repo.Issues, is)
		ghReply(w, 201, map[string]any{"number": is.Number, "title": is.Title, "state": "open"})
	default:
		ghError(w, 404, "Not Found")
	}
}

func (f *fakeGitHub) pull(repo *ghRepo, n int) *ghPull {
	for _, p := range repo.Pulls {
		if p.Number == n {
			return p
		}
	}
	return nil
}

func (f *fakeGitHub) repo(name string) ghRepo {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := *f.repos[name]
	return r
}

func (f *fakeGitHub) merge(name string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pull(f.repos[name], n).Merged = true
}

func (f *fakeGitHub) traffic() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var b strings.Builder
	for _, c := range f.calls {
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

func (f *fakeGitHub) count(method, pathSuffix string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if c.Method == method && strings.HasSuffix(c.Path, pathSuffix) {
			n++
		}
	}
	return n
}
