// Package jiratest is a local JIRA for tests: it speaks the parts of the
// REST API v2 that Hikeshi uses (search by label, create, read, update,
// comments, transitions, attachments) with JIRA's own payloads and error
// shapes, keeps a project OPS with issue type Task, records every call,
// trails its search index behind its writes (SearchLag), and injects
// failures (httpxtest.Faults): 429 with Retry-After, 5xx, refusals,
// answers lost after the create, dropped connections.
package jiratest

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/hikeshi/hikeshi/adapters/httpx/httpxtest"
)

var _ http.Handler = (*Server)(nil)

// Server is the fake JIRA; its URL is the site's base URL.
type Server struct {
	*httptest.Server
	Auth string // the Authorization header every call must carry

	httpxtest.Faults // answered, in order, before the real handling

	mu     sync.Mutex
	calls  []Call
	issues []*Issue
	nextID int
	Done   string // the name of the workflow's transition to done
	// SearchLag is how many searches miss a new issue: JIRA's search
	// index trails its writes.
	SearchLag int
}

// Call is one recorded request.
type Call struct {
	Method, Path, Query, Body string
	Header                    http.Header
}

// Issue is an issue as the server keeps it.
type Issue struct {
	ID, Key, Summary, Description, Priority, Status, Category string
	Labels                                                    []string
	Comments                                                  []Comment
	Attachments                                               []Attachment
	Transitions                                               int
	unindexed                                                 int // searches that still miss it
}

// Comment is a comment on an issue.
type Comment struct{ ID, Body string }

// Attachment is a file attached to an issue.
type Attachment struct {
	Name    string
	Content []byte
}

// New starts a server that wants auth as every call's Authorization
// header; it is closed when t ends.
func New(t testing.TB, auth string) *Server {
	f := &Server{Auth: auth, nextID: 10000, Done: "Done"}
	f.Server = httptest.NewServer(f)
	t.Cleanup(f.Close)
	return f
}

func jiraError(w http.ResponseWriter, status int, messages []string, fields map[string]string) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	if fields == nil {
		fields = map[string]string{}
	}
	if messages == nil {
		messages = []string{}
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"errorMessages": messages, "errors": fields})
}

func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	if v != nil {
		_ = json.NewEncoder(w).Encode(v)
	}
}

var (
	reIssue      = regexp.MustCompile(`^/rest/api/2/issue/([^/]+)$`)
	reComment    = regexp.MustCompile(`^/rest/api/2/issue/([^/]+)/comment$`)
	reTransition = regexp.MustCompile(`^/rest/api/2/issue/([^/]+)/transitions$`)
	reAttach     = regexp.MustCompile(`^/rest/api/2/issue/([^/]+)/attachments$`)
	reLabel      = regexp.MustCompile(`labels\s*=\s*"([^"]+)"`)
)

// ServeHTTP answers one call as JIRA would.
func (f *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, Call{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Body: string(body), Header: r.Header.Clone()})
	ft, faulted := f.Next(w, r)
	if faulted && !ft.After {
		f.fail(w, ft)
		return
	}
	if r.Header.Get("Authorization") != f.Auth {
		w.Header().Set("WWW-Authenticate", `Basic realm="protected-area"`)
		jiraError(w, http.StatusUnauthorized, []string{"You are not authenticated. Authentication required to perform this operation."}, nil)
		return
	}
	if faulted { // carried out, then the answer is lost
		f.route(httptest.NewRecorder(), r, body)
		f.fail(w, ft)
		return
	}
	f.route(w, r, body)
}

// fail answers an injected fault: its status, or no answer at all.
func (f *Server) fail(w http.ResponseWriter, ft httpxtest.Fault) {
	if ft.Drop {
		httpxtest.Hangup(w)
		return
	}
	jiraError(w, ft.Status, []string{http.StatusText(ft.Status)}, nil)
}

func (f *Server) route(w http.ResponseWriter, r *http.Request, body []byte) {
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/rest/api/2/issue":
		f.create(w, body)
	case r.Method == http.MethodGet && r.URL.Path == "/rest/api/2/search":
		f.search(w, r)
	case reComment.MatchString(r.URL.Path):
		f.comments(w, r, f.lookup(reComment.FindStringSubmatch(r.URL.Path)[1]), body)
	case reTransition.MatchString(r.URL.Path):
		f.transitions(w, r, f.lookup(reTransition.FindStringSubmatch(r.URL.Path)[1]), body)
	case reAttach.MatchString(r.URL.Path) && r.Method == http.MethodPost:
		f.attach(w, r, f.lookup(reAttach.FindStringSubmatch(r.URL.Path)[1]), body)
	case reIssue.MatchString(r.URL.Path):
		f.issue(w, r, f.lookup(reIssue.FindStringSubmatch(r.URL.Path)[1]), body)
	default:
		jiraError(w, http.StatusNotFound, []string{"null for uri: " + r.URL.String()}, nil)
	}
}

func (f *Server) lookup(key string) *Issue {
	for _, is := range f.issues {
		if is.Key == key || is.ID == key {
			return is
		}
	}
	return nil
}

func (f *Server) create(w http.ResponseWriter, body []byte) {
	var req struct {
		Fields struct {
			Project     struct{ Key string }   `json:"project"`
			Type        struct{ Name string }  `json:"issuetype"`
			Summary     string                 `json:"summary"`
			Description string                 `json:"description"`
			Labels      []string               `json:"labels"`
			Priority    *struct{ Name string } `json:"priority"`
		} `json:"fields"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		jiraError(w, http.StatusBadRequest, []string{"Unexpected character: " + err.Error()}, nil)
		return
	}
	switch {
	case req.Fields.Project.Key != "OPS":
		jiraError(w, http.StatusBadRequest, nil, map[string]string{"project": "valid project is required"})
		return
	case req.Fields.Summary == "":
		jiraError(w, http.StatusBadRequest, nil, map[string]string{"summary": "You must specify a summary of the issue."})
		return
	case badSummary(w, req.Fields.Summary):
		return
	case req.Fields.Type.Name != "Task":
		jiraError(w, http.StatusBadRequest, nil, map[string]string{"issuetype": "valid issue type is required"})
		return
	}
	f.nextID++
	is := &Issue{
		ID: strconv.Itoa(f.nextID), Key: fmt.Sprintf("OPS-%d", len(f.issues)+1),
		Summary: req.Fields.Summary, Description: req.Fields.Description, Labels: req.Fields.Labels,
		Status: "To Do", Category: "new", unindexed: f.SearchLag,
	}
	if req.Fields.Priority != nil {
		is.Priority = req.Fields.Priority.Name
	}
	f.issues = append(f.issues, is)
	reply(w, http.StatusCreated, map[string]string{"id": is.ID, "key": is.Key, "self": f.URL + "/rest/api/2/issue/" + is.ID})
}

// badSummary refuses a summary as JIRA does: it is one line of at most
// 255 characters.
func badSummary(w http.ResponseWriter, summary string) bool {
	msg := ""
	switch {
	case strings.ContainsAny(summary, "\r\n"):
		msg = "The summary is invalid because it contains newline characters."
	case utf8.RuneCountInString(summary) > 255:
		msg = "Summary must be less than 255 characters."
	default:
		return false
	}
	jiraError(w, http.StatusBadRequest, nil, map[string]string{"summary": msg})
	return true
}

func (f *Server) issueJSON(is *Issue) map[string]any {
	return map[string]any{
		"id": is.ID, "key": is.Key, "self": f.URL + "/rest/api/2/issue/" + is.ID,
		"fields": map[string]any{
			"summary": is.Summary, "labels": is.Labels,
			"priority": map[string]string{"name": is.Priority},
			"attachment": func() []map[string]any {
				out := []map[string]any{}
				for i, a := range is.Attachments {
					out = append(out, map[string]any{"id": strconv.Itoa(90000 + i), "filename": a.Name, "size": len(a.Content)})
				}
				return out
			}(),
			"status": map[string]any{"name": is.Status, "statusCategory": map[string]string{"key": is.Category}},
		},
	}
}

func (f *Server) search(w http.ResponseWriter, r *http.Request) {
	m := reLabel.FindStringSubmatch(r.URL.Query().Get("jql"))
	if m == nil {
		jiraError(w, http.StatusBadRequest, []string{"Error in the JQL Query"}, nil)
		return
	}
	found := []map[string]any{}
	for _, is := range f.issues {
		if is.unindexed > 0 {
			is.unindexed--
			continue
		}
		for _, l := range is.Labels {
			if l == m[1] {
				found = append(found, f.issueJSON(is))
			}
		}
	}
	reply(w, http.StatusOK, map[string]any{"expand": "schema,names", "startAt": 0, "maxResults": 50, "total": len(found), "issues": found})
}

func (f *Server) issue(w http.ResponseWriter, r *http.Request, is *Issue, body []byte) {
	if is == nil {
		jiraError(w, http.StatusNotFound, []string{"Issue does not exist or you do not have permission to see it."}, nil)
		return
	}
	switch r.Method {
	case http.MethodGet:
		reply(w, http.StatusOK, f.issueJSON(is))
	case http.MethodPut:
		var req struct {
			Fields struct {
				Summary  string                 `json:"summary"`
				Priority *struct{ Name string } `json:"priority"`
			} `json:"fields"`
		}
		if err := json.Unmarshal(body, &req); err != nil {
			jiraError(w, http.StatusBadRequest, []string{err.Error()}, nil)
			return
		}
		if badSummary(w, req.Fields.Summary) {
			return
		}
		if req.Fields.Priority != nil {
			is.Priority = req.Fields.Priority.Name
		}
		if req.Fields.Summary != "" {
			is.Summary = req.Fields.Summary
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		w.WriteHeader(http.StatusMethodNotAllowed)
	}
}

func (f *Server) comments(w http.ResponseWriter, r *http.Request, is *Issue, body []byte) {
	if is == nil {
		jiraError(w, http.StatusNotFound, []string{"Issue does not exist or you do not have permission to see it."}, nil)
		return
	}
	switch r.Method {
	case http.MethodGet:
		// JIRA pages comments; serve small pages so paging is exercised.
		start, _ := strconv.Atoi(r.URL.Query().Get("startAt"))
		size := min(2, max(0, len(is.Comments)-start))
		page := []map[string]string{}
		for _, c := range is.Comments[min(start, len(is.Comments)) : min(start, len(is.Comments))+size] {
			page = append(page, map[string]string{"id": c.ID, "body": c.Body, "created": "2025-03-14T09:30:00.000+0000"})
		}
		reply(w, http.StatusOK, map[string]any{"startAt": start, "maxResults": 2, "total": len(is.Comments), "comments": page})
	case http.MethodPost:
		var req struct{ Body string }
		if err := json.Unmarshal(body, &req); err != nil || req.Body == "" {
			jiraError(w, http.StatusBadRequest, nil, map[string]string{"comment": "Comment body can not be empty!"})
			return
		}
		f.nextID++
		c := Comment{ID: strconv.Itoa(f.nextID), Body: req.Body}
		is.Comments = append(is.Comments, c)
		reply(w, http.StatusCreated, map[string]string{"id": c.ID, "body": c.Body, "self": f.URL + "/rest/api/2/issue/" + is.ID + "/comment/" + c.ID})
	}
}

func (f *Server) transitions(w http.ResponseWriter, r *http.Request, is *Issue, body []byte) {
	if is == nil {
		jiraError(w, http.StatusNotFound, []string{"Issue does not exist or you do not have permission to see it."}, nil)
		return
	}
	type status struct {
		Name           string            `json:"name"`
		StatusCategory map[string]string `json:"statusCategory"`
	}
	type tr struct {
		ID   string `json:"id"`
		Name string `json:"name"`
		To   status `json:"to"`
	}
	available := []tr{{"21", "In Progress", status{"In Progress", map[string]string{"key": "indeterminate"}}},
		{"31", f.Done, status{"Done", map[string]string{"key": "done"}}}}
	if is.Category == "done" {
		available = []tr{{"41", "Reopen", status{"To Do", map[string]string{"key": "new"}}}}
	}
	switch r.Method {
	case http.MethodGet:
		reply(w, http.StatusOK, map[string]any{"expand": "transitions", "transitions": available})
	case http.MethodPost:
		var req struct{ Transition struct{ ID string } }
		_ = json.Unmarshal(body, &req)
		for _, t := range available {
			if t.ID == req.Transition.ID {
				is.Status, is.Category = t.To.Name, t.To.StatusCategory["key"]
				is.Transitions++
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		jiraError(w, http.StatusBadRequest, []string{"Transition id '" + req.Transition.ID + "' is not valid for this issue."}, nil)
	}
}

func (f *Server) attach(w http.ResponseWriter, r *http.Request, is *Issue, body []byte) {
	// JIRA accepts no-check (documented) and nocheck (what go-jira sends).
	if h := r.Header.Get("X-Atlassian-Token"); h != "no-check" && h != "nocheck" {
		w.WriteHeader(http.StatusForbidden)
		_, _ = io.WriteString(w, "XSRF check failed")
		return
	}
	if is == nil {
		jiraError(w, http.StatusNotFound, []string{"Issue does not exist or you do not have permission to see it."}, nil)
		return
	}
	_, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		jiraError(w, http.StatusBadRequest, []string{err.Error()}, nil)
		return
	}
	mr := multipart.NewReader(strings.NewReader(string(body)), params["boundary"])
	var out []map[string]any
	for {
		part, err := mr.NextPart()
		if err != nil {
			break
		}
		content, _ := io.ReadAll(part)
		if part.FormName() != "file" {
			continue
		}
		is.Attachments = append(is.Attachments, Attachment{Name: part.FileName(), Content: content})
		f.nextID++
		out = append(out, map[string]any{"id": strconv.Itoa(f.nextID), "filename": part.FileName(), "size": len(content)})
	}
	reply(w, http.StatusOK, out)
}

// Resolve moves issue key to done, as a person would in JIRA.
func (f *Server) Resolve(key string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	is := f.lookup(key)
	is.Status, is.Category = "Done", "done"
}

// Snapshot returns copies of the issues and the calls.
func (f *Server) Snapshot() ([]Issue, []Call) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Issue, len(f.issues))
	for i, is := range f.issues {
		out[i] = *is
		out[i].Comments = append([]Comment(nil), is.Comments...)
	}
	return out, append([]Call(nil), f.calls...)
}

// Traffic is every byte sent to the fake: paths, queries, headers, bodies.
func (f *Server) Traffic() string {
	_, calls := f.Snapshot()
	var b strings.Builder
	for _, c := range calls {
		fmt.Fprintf(&b, "%s %s?%s\n", c.Method, c.Path, c.Query)
		for k, v := range c.Header {
			fmt.Fprintf(&b, "%s: %s\n", k, strings.Join(v, ","))
		}
		b.WriteString(c.Body + "\n")
	}
	return b.String()
}
