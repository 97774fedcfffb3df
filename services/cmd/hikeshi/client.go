package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hikeshi/hikeshi/services/sanitize"
)

// client talks to a running hub over its API.
type client struct {
	server, token string
	asJSON        bool
	http          *http.Client
}

func clientFlags(f *flags) *client {
	c := &client{http: &http.Client{}}
	f.StringVar(&c.server, "server", "http://127.0.0.1:8080", "URL of the hub's API")
	f.StringVar(&c.token, "token", "", "API bearer token")
	f.BoolVar(&c.asJSON, "json", false, "print the raw JSON answer")
	return c
}

type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// answerError is the API's refusal, its code kept for callers that
// handle one.
type answerError struct {
	status        int
	code, message string
}

func (e *answerError) Error() string { return fmt.Sprintf("%s (%d %s)", e.message, e.status, e.code) }

func (c *client) do(ctx context.Context, method, path string, body any, out any) error {
	return c.send(ctx, method, path, nil, body, out)
}

// send is do with extra request headers (name, value pairs).
func (c *client) send(ctx context.Context, method, path string, hdr []string, body any, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.server, "/")+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%v (is 'hikeshi serve' running at %s?)", err, c.server)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var ae apiError
		if json.Unmarshal(b, &ae) == nil && ae.Error.Message != "" {
			return &answerError{status: resp.StatusCode, code: ae.Error.Code, message: ae.Error.Message}
		}
		return fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(b))
	}
	if raw, ok := out.(*json.RawMessage); ok {
		*raw = b
		return nil
	}
	return json.Unmarshal(b, out)
}

type incidentView struct {
	ID           string     `json:"id"`
	CaseNumber   string     `json:"case_number"`
	Title        string     `json:"title"`
	Service      string     `json:"service"`
	Severity     string     `json:"severity"`
	Status       string     `json:"status"`
	Summary      string     `json:"summary"`
	Commander    string     `json:"commander"`
	DeclaredBy   string     `json:"declared_by"`
	Confidential bool       `json:"confidential"`
	Codename     string     `json:"codename"`
	Drill        bool       `json:"drill"`
	DeclaredAt   time.Time  `json:"declared_at"`
	UpdatedAt    time.Time  `json:"updated_at"`
	ClosedAt     *time.Time `json:"closed_at"`
	Resolution   string     `json:"resolution"`
	Lessons      string     `json:"lessons_learned"`
	Version      uint64     `json:"version"`
}

func (v incidentView) marks() string {
	var m []string
	if v.Confidential {
		m = append(m, "confidential:"+v.Codename)
	}
	if v.Drill {
		m = append(m, "DRILL")
	}
	return strings.Join(m, " ")
}

// post sends a command and prints the resulting incident.
func (c *client) post(ctx context.Context, w io.Writer, path string, body any) error {
	var raw json.RawMessage
	if err := c.do(ctx, http.MethodPost, path, body, &raw); err != nil {
		return err
	}
	return c.printIncident(w, raw)
}

func (c *client) printIncident(w io.Writer, raw json.RawMessage) error {
	if done, err := c.printRaw(w, raw); done || err != nil {
		return err
	}
	var v incidentView
	if err := json.Unmarshal(raw, &v); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, val string) {
		if val != "" {
			fmt.Fprintf(tw, "%s\t%s\n", k, sanitize.Line(val))
		}
	}
	row("case", v.CaseNumber)
	row("id", v.ID)
	row("title", v.Title)
	row("service", v.Service)
	row("severity", v.Severity)
	row("status", v.Status)
	row("commander", v.Commander)
	row("declared", v.DeclaredAt.Local().Format(time.DateTime)+" by "+v.DeclaredBy)
	row("marks", v.marks())
	row("summary", v.Summary)
	row("resolution", v.Resolution)
	row("lessons", v.Lessons)
	row("version", fmt.Sprint(v.Version))
	return tw.Flush()
}

func incidentPath(id string, rest ...string) string {
	return "/api/v1/incidents/" + url.PathEscape(id) + strings.Join(rest, "")
}

func declare(ctx context.Context, args []string, w io.Writer) error {
	f := newFlags("declare", "--title T --service S --severity SEV2 [flags]")
	c := clientFlags(f)
	title := f.String("title", "", "what is happening (required)")
	service := f.String("service", "", "affected service (required)")
	sev := f.String("severity", "", "SEV1 (worst) … SEV5 (required)")
	summary := f.String("summary", "", "what is known so far")
	by := f.String("by", "", "who declares (default: the API actor)")
	conf := f.Bool("confidential", false, "security incident: codename and private channel")
	drill := f.Bool("drill", false, "training incident that touches no real stakeholder")
	if _, err := f.parse(args); err != nil {
		return err
	}
	return c.post(ctx, w, "/api/v1/incidents", map[string]any{
		"title": *title, "service": *service, "severity": *sev, "summary": *summary,
		"declared_by": *by, "confidential": *conf, "drill": *drill,
	})
}

// positional parses flags and requires exactly n positional arguments.
func positional(f *flags, args []string, n int) ([]string, error) {
	pos, err := f.parse(args)
	if err != nil {
		return nil, err
	}
	if len(pos) < n {
		return nil, fmt.Errorf("%w: want %d argument(s), got %d", errUsage, n, len(pos))
	}
	// The last argument may be free text of several words.
	if len(pos) > n {
		pos = append(pos[:n-1], strings.Join(pos[n-1:], " "))
	}
	return pos, nil
}

// incidentCommand posts one command to an incident. The arguments after
// the ID fill the body fields in args, in order (the last may be several
// words); flags fill the others.
type incidentCommand struct {
	name, usage, summary, path string
	args                       []string
	flags                      []bodyFlag
}

type bodyFlag struct{ name, field, usage string }

var incidentCommands = []incidentCommand{
	{name: "severity", usage: "ID SEV [--reason R]", summary: "change an incident's severity", path: "/severity", args: []string{"severity"},
		flags: []bodyFlag{{"reason", "reason", "why"}}},
	{name: "status", usage: "ID STATUS [--message M]", summary: "move an incident to investigating|identified|monitoring|resolved", path: "/status", args: []string{"status"},
		flags: []bodyFlag{{"message", "message", "what changed"}}},
	{name: "commander", usage: "ID USER", summary: "assign the incident commander", path: "/commander", args: []string{"user"}},
	{name: "note", usage: "ID TEXT [--occurred-at TIME]", summary: "add a note to the timeline", path: "/notes", args: []string{"text"},
		flags: []bodyFlag{{"occurred-at", "occurred_at", "when what it tells happened, RFC 3339 (a backdated fact)"}}},
	{name: "milestone", usage: "ID NAME TIME [--reason R]", summary: "record (or correct) when impact_started|detected|acknowledged|mitigated|resolved happened", path: "/milestones",
		args: []string{"name", "occurred_at"}, flags: []bodyFlag{{"reason", "reason", "why, for a correction"}}},
	{name: "close", usage: "ID --resolution R [--lessons L]", summary: "close a resolved incident", path: "/close",
		flags: []bodyFlag{{"resolution", "resolution", "how it was resolved (required)"}, {"lessons", "lessons_learned", "lessons learned"}}},
}

func (ic incidentCommand) run(ctx context.Context, args []string, w io.Writer) error {
	f := newFlags(ic.name, ic.usage)
	c := clientFlags(f)
	values := make([]*string, len(ic.flags))
	for i, bf := range ic.flags {
		values[i] = f.String(bf.name, "", bf.usage)
	}
	pos, err := positional(f, args, 1+len(ic.args))
	if err != nil {
		return err
	}
	body := map[string]string{}
	for i, field := range ic.args {
		body[field] = pos[1+i]
	}
	for i, bf := range ic.flags {
		body[bf.field] = *values[i]
	}
	return c.post(ctx, w, incidentPath(pos[0], ic.path), body)
}

// printRaw prints the answer as is when --json was given.
func (c *client) printRaw(w io.Writer, raw json.RawMessage) (bool, error) {
	if !c.asJSON {
		return false, nil
	}
	_, err := fmt.Fprintf(w, "%s\n", bytes.TrimSpace(raw))
	return true, err
}

// fetch calls the API and decodes the answer into out, or, with --json,
// prints the answer as is and reports that it did.
func (c *client) fetch(ctx context.Context, w io.Writer, method, path string, body, out any) (bool, error) {
	var raw json.RawMessage
	if err := c.do(ctx, method, path, body, &raw); err != nil {
		return true, err
	}
	if done, err := c.printRaw(w, raw); done || err != nil {
		return true, err
	}
	return false, json.Unmarshal(raw, out)
}

func show(ctx context.Context, args []string, w io.Writer) error {
	f := newFlags("show", showUsage)
	c := clientFlags(f)
	asOf := f.String("as-of", "", "show the incident as it stood at this RFC 3339 time, or stream sequence")
	pos, err := positional(f, args, 1)
	if err != nil {
		return err
	}
	var raw json.RawMessage
	if err := c.do(ctx, http.MethodGet, incidentPath(pos[0])+pointQuery(*asOf), nil, &raw); err != nil {
		return err
	}
	return c.printIncident(w, raw)
}

func ls(ctx context.Context, args []string, w io.Writer) error {
	f := newFlags("ls", "[--status open|closed]")
	c := clientFlags(f)
	st := f.String("status", "", "open or closed (default: all)")
	if _, err := f.parse(args); err != nil {
		return err
	}
	path := "/api/v1/incidents"
	if *st != "" {
		path += "?status=" + url.QueryEscape(*st)
	}
	var out struct {
		Incidents []incidentView `json:"incidents"`
	}
	if done, err := c.fetch(ctx, w, http.MethodGet, path, nil, &out); done || err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CASE\tSEV\tSTATUS\tSERVICE\tTITLE\tDECLARED\tID")
	for _, v := range out.Incidents {
		title := v.Title
		if m := v.marks(); m != "" {
			title += " [" + m + "]"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", v.CaseNumber, v.Severity, v.Status, sanitize.Line(v.Service), sanitize.Line(title), v.DeclaredAt.Local().Format(time.DateTime), v.ID)
	}
	return tw.Flush()
}

type entryView struct {
	Seq        uint64          `json:"seq"`
	Type       string          `json:"type"`
	Time       time.Time       `json:"time"`
	OccurredAt *time.Time      `json:"occurred_at"`
	Actor      string          `json:"actor"`
	Data       json.RawMessage `json:"data"`
}

// describe renders an event's data as one readable line.
func describe(typ string, data json.RawMessage) string {
	var m map[string]any
	_ = json.Unmarshal(data, &m)
	s := func(k string) string { v, _ := m[k].(string); return v }
	short := typ[strings.LastIndex(typ, ".")+1:]
	switch short {
	case "declared":
		return fmt.Sprintf("declared %s %s on %s: %s", s("case_number"), s("severity"), s("service"), s("title"))
	case "severity_changed":
		return fmt.Sprintf("severity %s → %s %s", s("from"), s("to"), s("reason"))
	case "status_updated":
		return fmt.Sprintf("status %s → %s %s", s("from"), s("to"), s("message"))
	case "commander_assigned":
		return "commander: " + s("user")
	case "note_added":
		return "note: " + s("text")
	case "closed":
		return fmt.Sprintf("closed: %s; lessons: %s", s("resolution"), s("lessons_learned"))
	case "evidence_added":
		return fmt.Sprintf("evidence %s added: %s (sha256 %s), held by %s at %s", s("evidence_id"), s("name"), s("sha256"), s("custodian"), s("location"))
	case "evidence_handed_over":
		return fmt.Sprintf("evidence %s handed over: %s → %s %s", s("evidence_id"), s("from"), s("to"), s("reason"))
	case "milestone_recorded":
		return fmt.Sprintf("milestone %s at %s %s", s("name"), s("occurred_at"), s("reason"))
	}
	return short + " " + string(data)
}

func timelineCmd(ctx context.Context, args []string, w io.Writer) error {
	f := newFlags("timeline", "ID [--order recorded|occurred]")
	c := clientFlags(f)
	order := f.String("order", "recorded", "recorded (as recorded) or occurred (as the facts happened)")
	pos, err := positional(f, args, 1)
	if err != nil {
		return err
	}
	var out struct {
		Events []entryView `json:"events"`
	}
	if done, err := c.fetch(ctx, w, http.MethodGet, incidentPath(pos[0], "/timeline?order="+url.QueryEscape(*order)), nil, &out); done || err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, e := range out.Events {
		when := e.Time.Local().Format(time.DateTime)
		if e.OccurredAt != nil { // a backdated fact: when it happened, and when it was told
			when = e.OccurredAt.Local().Format(time.DateTime) + " (recorded " + when + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", when, sanitize.Line(e.Actor), sanitize.Line(describe(e.Type, e.Data)))
	}
	return tw.Flush()
}

func tail(ctx context.Context, args []string, w io.Writer) error {
	f := newFlags("tail", "")
	c := clientFlags(f)
	if _, err := f.parse(args); err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(c.server, "/")+"/api/v1/events", nil)
	if err != nil {
		return err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%v (is 'hikeshi serve' running at %s?)", err, c.server)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(b))
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 2<<20)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		if c.asJSON {
			fmt.Fprintln(w, line)
			continue
		}
		var e struct {
			Type    string          `json:"type"`
			Subject string          `json:"subject"`
			Time    time.Time       `json:"time"`
			Actor   string          `json:"actor"`
			Data    json.RawMessage `json:"data"`
		}
		if json.Unmarshal([]byte(line), &e) != nil {
			continue
		}
		fmt.Fprintf(w, "%s  %s  %s  %s\n", e.Time.Local().Format(time.DateTime), e.Subject, sanitize.Line(e.Actor), sanitize.Line(describe(e.Type, e.Data)))
	}
	if ctx.Err() != nil {
		return nil
	}
	return sc.Err()
}
