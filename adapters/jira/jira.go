// Package jira is the one JIRA client of Hikeshi (REST API v2, Cloud and
// Server/Data Center): the incident cases and the alert tickets both go
// through it. It waits out 429 Retry-After and retries 5xx
// (httpx.Transport), except for a create, whose fate a 5xx leaves unknown:
// that one is handed back for the caller to search before it creates
// again. Every failure is an *Error (or a *NoTransitionError) whose
// Permanent method says whether sending the request again can help.
package jira

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"mime/multipart"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/hikeshi/hikeshi/adapters/httpx"
)

// Config says where JIRA is and how to sign in.
type Config struct {
	// BaseURL is the site: https://acme.atlassian.net (Cloud) or the
	// Server/Data Center base URL.
	BaseURL string
	// Authorization is the header value sent on every call (Authorization).
	Authorization string
	// Base carries the requests under the retries (default: the standard
	// transport with a 30 s bound on each answer).
	Base http.RoundTripper
}

// Authorization is the header value for a token: Cloud basic auth when
// email is set (email + API token), else a Server/Data Center personal
// access token sent as bearer.
func Authorization(email, token string) string {
	if email != "" {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(email+":"+token))
	}
	return "Bearer " + token
}

// Client calls one JIRA site.
type Client struct {
	base string
	http *http.Client
}

const issuePath = "/rest/api/2/issue"

// New returns a client for cfg.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("jira: want an http(s) base URL, got %q", cfg.BaseURL)
	}
	t := &httpx.Transport{Base: cfg.Base, RateLimitOnly: httpx.CreateNotRetried(issuePath)}
	return &Client{base: strings.TrimRight(cfg.BaseURL, "/"), http: httpx.Client(cfg.Authorization, t)}, nil
}

// Issue is what the client reads of an issue; Status, Category and
// Attachments only when asked for (Get).
type Issue struct {
	ID, Key string
	// Status is the status's name; Category its category's key: new,
	// indeterminate or done.
	Status, Category string
	Attachments      []Attachment
}

// Attachment is a file attached to an issue.
type Attachment struct{ ID, Filename string }

// NewIssue is an issue to create.
type NewIssue struct {
	Project, Type, Summary, Description string
	Priority                            string // name; "" for the project's default
	Labels                              []string
}

// issueJSON is an issue as JIRA sends it.
type issueJSON struct {
	ID     string `json:"id"`
	Key    string `json:"key"`
	Fields struct {
		Status *struct {
			Name           string `json:"name"`
			StatusCategory struct {
				Key string `json:"key"`
			} `json:"statusCategory"`
		} `json:"status"`
		Attachment []struct {
			ID       string `json:"id"`
			Filename string `json:"filename"`
		} `json:"attachment"`
	} `json:"fields"`
}

func (j issueJSON) issue() Issue {
	is := Issue{ID: j.ID, Key: j.Key}
	if s := j.Fields.Status; s != nil {
		is.Status, is.Category = s.Name, s.StatusCategory.Key
	}
	for _, a := range j.Fields.Attachment {
		is.Attachments = append(is.Attachments, Attachment{ID: a.ID, Filename: a.Filename})
	}
	return is
}

// FindByLabel returns the oldest issue of project carrying label: the
// lookup before a create. JIRA's search index trails its writes by a few
// seconds, so a new issue may not be found yet.
func (c *Client) FindByLabel(ctx context.Context, project, label string) (Issue, bool, error) {
	q := url.Values{
		"jql":        {fmt.Sprintf(`project = "%s" AND labels = "%s" ORDER BY created ASC`, project, label)},
		"maxResults": {"1"}, "fields": {"labels"},
	}
	var page struct {
		Issues []issueJSON `json:"issues"`
	}
	if err := c.call(ctx, "search", http.MethodGet, "/rest/api/2/search?"+q.Encode(), nil, &page); err != nil {
		return Issue{}, false, err
	}
	if len(page.Issues) == 0 {
		return Issue{}, false, nil
	}
	return page.Issues[0].issue(), true, nil
}

// Create creates an issue. A create is not retried after a 5xx or a lost
// connection (JIRA may have created it): search before calling again.
func (c *Client) Create(ctx context.Context, n NewIssue) (Issue, error) {
	type named struct {
		Name string `json:"name"`
	}
	fields := map[string]any{
		"project": map[string]string{"key": n.Project}, "issuetype": named{n.Type},
		"summary": n.Summary, "description": n.Description,
	}
	if len(n.Labels) > 0 {
		fields["labels"] = n.Labels
	}
	if n.Priority != "" {
		fields["priority"] = named{n.Priority}
	}
	var created issueJSON
	if err := c.call(ctx, "create", http.MethodPost, issuePath, map[string]any{"fields": fields}, &created); err != nil {
		return Issue{}, err
	}
	return created.issue(), nil
}

// Get reads issue key with the named fields (status, attachment).
func (c *Client) Get(ctx context.Context, key string, fields ...string) (Issue, error) {
	var is issueJSON
	err := c.call(ctx, "read "+key, http.MethodGet, issue(key, "")+"?fields="+url.QueryEscape(strings.Join(fields, ",")), nil, &is)
	return is.issue(), err
}

// Update sets fields of issue key: setting the same values twice changes
// nothing. Values are as JIRA takes them: a string for the summary,
// {"name": …} for a priority.
func (c *Client) Update(ctx context.Context, key string, fields map[string]any) error {
	return c.call(ctx, "update of "+key, http.MethodPut, issue(key, ""), map[string]any{"fields": fields}, nil)
}

// Comment adds a comment to issue key and returns its id.
func (c *Client) Comment(ctx context.Context, key, body string) (string, error) {
	var added struct {
		ID string `json:"id"`
	}
	err := c.call(ctx, "comment on "+key, http.MethodPost, issue(key, "/comment"), map[string]string{"body": body}, &added)
	return added.ID, err
}

// FindComment returns the id of the first comment of issue key that
// contains mark, reading every page.
func (c *Client) FindComment(ctx context.Context, key, mark string) (string, bool, error) {
	for start := 0; ; {
		var page struct {
			Total    int `json:"total"`
			Comments []struct {
				ID   string `json:"id"`
				Body string `json:"body"`
			} `json:"comments"`
		}
		path := fmt.Sprintf("%s?startAt=%d&maxResults=100", issue(key, "/comment"), start)
		if err := c.call(ctx, "comments of "+key, http.MethodGet, path, nil, &page); err != nil {
			return "", false, err
		}
		for _, cm := range page.Comments {
			if strings.Contains(cm.Body, mark) {
				return cm.ID, true, nil
			}
		}
		start += len(page.Comments)
		if len(page.Comments) == 0 || start >= page.Total {
			return "", false, nil
		}
	}
}

// Attach attaches content to issue key as a file called name and returns
// the attachment's id.
func (c *Client) Attach(ctx context.Context, key, name string, content []byte) (string, error) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, err := mw.CreateFormFile("file", name)
	if err == nil {
		_, err = fw.Write(content)
	}
	if err == nil {
		err = mw.Close()
	}
	if err != nil {
		return "", err
	}
	var added []struct {
		ID string `json:"id"`
	}
	h := http.Header{"Content-Type": {mw.FormDataContentType()}, "X-Atlassian-Token": {"no-check"}} // JIRA's XSRF check
	if err := c.do(ctx, "attach to "+key, http.MethodPost, issue(key, "/attachments"), h, body.Bytes(), &added); err != nil {
		return "", err
	}
	if len(added) == 0 {
		return "", nil
	}
	return added[0].ID, nil
}

// Transition takes the workflow transition of issue key named name (in
// any case) and returns the status it leads to. An issue already done
// (done true) or not done (done false), moved by a person or by a call
// whose answer was lost, is left alone and its status returned. A
// workflow without the transition is a *NoTransitionError.
func (c *Client) Transition(ctx context.Context, key, name string, done bool) (string, error) {
	var offered struct {
		Transitions []struct {
			ID   string `json:"id"`
			Name string `json:"name"`
			To   struct {
				Name string `json:"name"`
			} `json:"to"`
		} `json:"transitions"`
	}
	if err := c.call(ctx, "transitions of "+key, http.MethodGet, issue(key, "/transitions"), nil, &offered); err != nil {
		return "", err
	}
	var names []string
	for _, t := range offered.Transitions {
		if strings.EqualFold(t.Name, name) {
			req := map[string]any{"transition": map[string]string{"id": t.ID}}
			return t.To.Name, c.call(ctx, "transition "+t.Name+" of "+key, http.MethodPost, issue(key, "/transitions"), req, nil)
		}
		names = append(names, t.Name)
	}
	is, err := c.Get(ctx, key, "status")
	if err != nil {
		return "", err
	}
	if is.Category != "" && (is.Category == "done") == done {
		return is.Status, nil
	}
	return "", &NoTransitionError{Key: key, Name: name, Available: names}
}

func issue(key, sub string) string { return issuePath + "/" + url.PathEscape(key) + sub }

// call sends in as JSON (nil: no body) and decodes the answer into out.
func (c *Client) call(ctx context.Context, op, method, path string, in, out any) error {
	var body []byte
	h := http.Header{}
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return err
		}
		h.Set("Content-Type", "application/json")
	}
	return c.do(ctx, op, method, path, h, body, out)
}

func (c *Client) do(ctx context.Context, op, method, path string, h http.Header, body []byte, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return &Error{Op: op, Err: err}
	}
	for k, v := range h {
		req.Header[k] = v
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return &Error{Op: op, Err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return refusal(op, resp)
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return &Error{Op: op, Status: resp.StatusCode, Err: fmt.Errorf("reading the answer: %w", err)}
	}
	return nil
}

// Error is a failed call: no answer (Status 0, Err says why) or JIRA's
// refusal with its messages and the fields it names.
type Error struct {
	Op       string // what was asked: "create", "comment on OPS-1"
	Status   int
	Messages []string
	Fields   map[string]string // field → JIRA's message about it
	Err      error
}

func refusal(op string, resp *http.Response) *Error {
	e := &Error{Op: op, Status: resp.StatusCode}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var body struct {
		ErrorMessages []string          `json:"errorMessages"`
		Errors        map[string]string `json:"errors"`
	}
	if json.Unmarshal(raw, &body) == nil {
		e.Messages, e.Fields = body.ErrorMessages, body.Errors
	} else if s := strings.TrimSpace(string(raw)); s != "" {
		e.Messages = []string{s[:min(len(s), 200)]}
	}
	return e
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("jira " + e.Op + ": ")
	if e.Status != 0 {
		b.WriteString(strconv.Itoa(e.Status) + " " + http.StatusText(e.Status))
	}
	for _, m := range e.Messages {
		b.WriteString("; " + m)
	}
	for _, k := range slices.Sorted(maps.Keys(e.Fields)) {
		b.WriteString("; " + k + ": " + e.Fields[k])
	}
	if e.Err != nil {
		if e.Status != 0 {
			b.WriteString(": ")
		}
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Permanent reports a refusal that sending the same request again cannot
// change (httpx.Permanent): 400, 404, 410, 413, 422.
func (e *Error) Permanent() bool { return httpx.Permanent(e.Status) }

// NoTransitionError: the issue's workflow offers no transition of the
// configured name. A configuration error, permanent.
type NoTransitionError struct {
	Key, Name string
	Available []string
}

func (e *NoTransitionError) Error() string {
	return fmt.Sprintf("jira: %s has no transition named %q (available: %s)", e.Key, e.Name, strings.Join(e.Available, ", "))
}

// Permanent is true: the workflow will not change by itself.
func (e *NoTransitionError) Permanent() bool { return true }
