package console_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/services/access"
	"github.com/hikeshi/hikeshi/services/console"
	"github.com/hikeshi/hikeshi/services/hub"
	"github.com/hikeshi/hikeshi/services/incident"
	"github.com/hikeshi/hikeshi/services/integrationtest"
	"github.com/hikeshi/hikeshi/services/projection"
	"github.com/hikeshi/hikeshi/services/readmodel"
)

// incidentCount asks the API how many incidents there are.
func incidentCount(t *testing.T, base string) int {
	t.Helper()
	res, err := http.Get(base + "/api/v1/incidents?limit=0")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body struct{ Incidents []json.RawMessage }
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return len(body.Incidents)
}

var (
	inlineScript  = regexp.MustCompile(`<script(?:\s[^>]*)?>\s*[^<\s]`)
	inlineHandler = regexp.MustCompile(`\son[a-z]+\s*=`)
)

// TestPagesRunOnlyTheConsolesScript: every page forbids inline scripts
// and other sites' scripts, cannot be framed or sniffed, and has no
// inline script or handler of its own that such a policy would break.
func TestPagesRunOnlyTheConsolesScript(t *testing.T) {
	base := startHub(t, hub.Config{})
	api(t, base, "POST", "/api/v1/incidents", map[string]any{"title": "Checkout down", "service": "payments", "severity": "SEV2"})
	b := newBrowser(t, base)
	for _, path := range []string{"/", "/incidents", "/incidents/INC-1", "/declare", "/dashboard", "/signals", "/insights", "/no-such-page"} {
		p := b.get(path)
		csp := p.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("%s: Content-Security-Policy %q", path, csp)
		}
		if p.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: no nosniff", path)
		}
		if inlineScript.MatchString(p.Body) || inlineHandler.MatchString(p.Body) {
			t.Errorf("%s: inline script or event handler in the page", path)
		}
		if p.Header.Get("Content-Type") != "text/html; charset=utf-8" {
			t.Errorf("%s: Content-Type %q", path, p.Header.Get("Content-Type"))
		}
	}
	if p := b.get("/no-such-page"); p.Status != http.StatusNotFound {
		t.Errorf("unknown page: %d", p.Status)
	}
	if p := b.get("/static/console.js"); p.Status != 200 || !strings.Contains(p.Header.Get("Content-Type"), "javascript") {
		t.Errorf("script: %d %s", p.Status, p.Header.Get("Content-Type"))
	}
}

// TestPostsWithoutTheCSRFTokenAreRefused: a form sent from another site
// (without the token, or with one that is not the cookie's) does nothing.
func TestPostsWithoutTheCSRFTokenAreRefused(t *testing.T) {
	base := startHub(t, hub.Config{})
	inc := api(t, base, "POST", "/api/v1/incidents", map[string]any{"title": "Checkout down", "service": "payments", "severity": "SEV2"})
	b := newBrowser(t, base)
	form := b.get("/declare")
	declare := url.Values{"title": {"forged"}, "service": {"payments"}, "severity": {"SEV1"}}
	for name, token := range map[string]string{"no token": "", "another token": strings.Repeat("A", 43)} {
		for _, action := range []string{"/declare", "/incidents/INC-1/note"} {
			v := url.Values{"text": {"forged"}}
			if action == "/declare" {
				v = declare
			}
			if token != "" {
				v.Set("csrf", token)
			}
			r, _ := http.NewRequest(http.MethodPost, base+action, strings.NewReader(v.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			p := b.do(r)
			if p.Status != http.StatusForbidden || !strings.Contains(p.Body, "nothing was done") {
				t.Errorf("%s, %s: %d\n%s", name, action, p.Status, p.Body)
			}
		}
	}
	// A request with the token but not the cookie (another browser) too.
	v := url.Values{"text": {"forged"}, "csrf": {csrfOf(t, form)}}
	res, err := http.PostForm(base+"/incidents/INC-1/note", v)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusForbidden {
		t.Errorf("token without its cookie: %d", res.StatusCode)
	}
	if n := incidentCount(t, base); n != 1 {
		t.Errorf("%d incidents after forged declarations, want 1", n)
	}
	if got := api(t, base, "GET", "/api/v1/incidents/INC-1", nil); got.Notes != 0 || got.Version != inc.Version {
		t.Errorf("a forged note was recorded: %+v", got)
	}
}

// fieldError is the message shown next to a field.
func fieldError(t *testing.T, p page, field string) string {
	t.Helper()
	m := regexp.MustCompile(`id="err-` + field + `" role="alert">([^<]*)</p>`).FindStringSubmatch(p.Body)
	if m == nil {
		t.Fatalf("no error slot for %s on the page", field)
	}
	return m[1]
}

// TestDeclareWithoutJavaScript: the declare form works as plain HTML; a
// refusal shows the form again as typed with the reason next to its
// field; sending the same form twice declares once.
func TestDeclareWithoutJavaScript(t *testing.T) {
	base := startHub(t, hub.Config{})
	b := newBrowser(t, base)
	form := b.get("/declare")
	bad := url.Values{"title": {"Login errors"}, "service": {"auth service"}, "severity": {"SEV3"}, "summary": {"5% of logins fail"}, "drill": {"on"}, "key": {"k1"}}
	p := b.submit(form, "/declare", bad)
	if p.Status != http.StatusBadRequest {
		t.Fatalf("bad service: %d", p.Status)
	}
	if msg := fieldError(t, p, "service"); !strings.HasPrefix(msg, "Service must be one word") {
		t.Errorf("message next to the service field: %q", msg)
	}
	for _, kept := range []string{`value="Login errors"`, `value="auth service"`, `5% of logins fail</textarea>`, `id="drill" name="drill" value="on" checked`, `value="SEV3" checked`} {
		if !strings.Contains(p.Body, kept) {
			t.Errorf("input lost: %s not on the page", kept)
		}
	}
	good := url.Values{"title": {"Login errors"}, "service": {"auth"}, "severity": {"SEV3"}, "drill": {"on"}, "key": {"k2"}}
	p = b.submit(form, "/declare", good)
	if p.Status != http.StatusOK || p.URL != "/incidents/INC-1" || !strings.Contains(p.Body, "Login errors") {
		t.Fatalf("declared: %d at %s", p.Status, p.URL)
	}
	if again := b.submit(form, "/declare", good); again.URL != "/incidents/INC-1" {
		t.Errorf("the same form sent again went to %s", again.URL)
	}
	if n := incidentCount(t, base); n != 1 {
		t.Errorf("%d incidents, want 1", n)
	}
	st := api(t, base, "GET", "/api/v1/incidents/INC-1", nil)
	if !st.Drill || st.DeclaredBy != access.LocalOperator().ID {
		t.Errorf("declared %+v, want a drill declared by the local operator %q", st, access.LocalOperator().ID)
	}
}

// TestCommandsWithoutJavaScript: the incident's forms work as plain HTML,
// recorded as the caller; a refused transition is explained above the
// form, and a change made meanwhile to what the form changes is a
// conflict that keeps the input.
func TestCommandsWithoutJavaScript(t *testing.T) {
	base := startHub(t, hub.Config{})
	api(t, base, "POST", "/api/v1/incidents", map[string]any{"title": "Checkout down", "service": "payments", "severity": "SEV2"})
	b := newBrowser(t, base)
	page1 := b.get("/incidents/INC-1")
	p := b.submit(page1, "/incidents/INC-1/status", url.Values{"status": {"identified"}, "message": {"found it"}, "seen": {"investigating"}})
	if p.Status != 200 || p.URL != "/incidents/INC-1" || !strings.Contains(p.Body, "investigating → identified") {
		t.Fatalf("status: %d at %s", p.Status, p.URL)
	}
	events := api(t, base, "GET", "/api/v1/incidents/INC-1", nil)
	if events.Status != "identified" {
		t.Fatalf("status %s", events.Status)
	}

	// Closing before resolved is refused: the reason above the form.
	p = b.submit(page1, "/incidents/INC-1/close", url.Values{"resolution": {"rolled back"}, "seen": {"identified"}})
	if p.Status != http.StatusConflict || !strings.Contains(p.Body, "Refused: ") || !strings.Contains(p.Body, ">rolled back</textarea>") {
		t.Errorf("close before resolved: %d\n%s", p.Status, p.Body)
	}

	// Someone else changes the severity after this page was loaded.
	api(t, base, "POST", "/api/v1/incidents/INC-1/severity", map[string]string{"severity": "SEV1"}, "X-Hikeshi-Actor", "bob")
	p = b.submit(page1, "/incidents/INC-1/severity", url.Values{"severity": {"SEV3"}, "reason": {"only one region"}, "seen": {"SEV2"}})
	if p.Status != http.StatusConflict || !strings.Contains(p.Body, "Someone changed INC-1 since you loaded it: it is now identified, SEV1") {
		t.Errorf("conflict: %d\n%s", p.Status, p.Body)
	}
	if !strings.Contains(p.Body, `value="only one region"`) || !regexp.MustCompile(`<option value="SEV3" selected>`).MatchString(p.Body) {
		t.Error("the conflicting input was not kept")
	}
	if !strings.Contains(p.Body, `name="seen" value="SEV1"`) {
		t.Error("the form shown again is not against the severity as it is now")
	}
	if got := api(t, base, "GET", "/api/v1/incidents/INC-1", nil); got.Severity != "SEV1" {
		t.Errorf("the conflicting change was recorded: %s", got.Severity)
	}

	// A validation message goes next to its field.
	p = b.submit(page1, "/incidents/INC-1/note", url.Values{"text": {"  "}})
	if p.Status != http.StatusBadRequest || fieldError(t, p, "text") != "Note is required" {
		t.Errorf("empty note: %d %q", p.Status, fieldError(t, p, "text"))
	}
	// And the actor is the console's caller, shown by name (the id on hover).
	p = b.submit(page1, "/incidents/INC-1/note", url.Values{"text": {"rolling back"}})
	me := access.LocalOperator()
	if p.Status != 200 || !strings.Contains(p.Body, `<span class="actor" title="`+me.ID+`">`+me.Name+`</span>`) {
		t.Errorf("note: %d: the actor is not shown by name", p.Status)
	}
	if !strings.Contains(p.Body, `<span class="actor" title="bob via `+me.ID+`">bob</span>`) {
		t.Error("an action taken for bob does not say whom it came through")
	}
}

// TestListFiltersSearchesAndPages: the list filters, finds text in notes,
// counts per status and pages with the keyset cursor.
func TestListFiltersSearchesAndPages(t *testing.T) {
	base := startHub(t, hub.Config{})
	for i := 1; i <= 52; i++ {
		api(t, base, "POST", "/api/v1/incidents", map[string]any{"title": fmt.Sprintf("Incident number %d", i), "service": "svc", "severity": "SEV4"})
	}
	api(t, base, "POST", "/api/v1/incidents/INC-3/notes", map[string]string{"text": "the cache stampeded"})
	api(t, base, "POST", "/api/v1/incidents/INC-2/status", map[string]string{"status": "resolved"})
	api(t, base, "POST", "/api/v1/incidents/INC-2/close", map[string]string{"resolution": "fixed"})
	b := newBrowser(t, base)
	rows := regexp.MustCompile(`<td><a href="/incidents/(INC-\d+)">`)
	cases := func(p page) []string {
		var out []string
		for _, m := range rows.FindAllStringSubmatch(p.Body, -1) {
			out = append(out, m[1])
		}
		return out
	}
	eventually(t, "every incident in the list", func() bool {
		return strings.Contains(b.get("/incidents?status=").Body, `All <span class="count">52</span>`)
	})

	first := b.get("/incidents")
	got := cases(first)
	// Most recent activity first: the note made INC-3 the latest open one.
	if len(got) != 50 || got[0] != "INC-3" || got[1] != "INC-52" {
		t.Fatalf("first page: %d rows %v", len(got), got[:min(3, len(got))])
	}
	if !strings.Contains(first.Body, `Open <span class="count">51</span>`) || !strings.Contains(first.Body, `Closed <span class="count">1</span>`) {
		t.Error("counts per status missing")
	}
	next := regexp.MustCompile(`<a href="([^"]+)" rel="next">`).FindStringSubmatch(first.Body)
	if next == nil {
		t.Fatal("no link to the next page")
	}
	second := b.get(strings.ReplaceAll(next[1], "&amp;", "&"))
	if got := cases(second); len(got) != 1 || got[0] != "INC-1" {
		t.Errorf("second page: %v", got)
	}
	if got := cases(b.get("/incidents?q=STAMPEDE")); len(got) != 1 || got[0] != "INC-3" {
		t.Errorf("search in notes: %v", got)
	}
	if got := cases(b.get("/incidents?status=closed")); len(got) != 1 || got[0] != "INC-2" {
		t.Errorf("closed: %v", got)
	}
	if got := cases(b.get("/incidents?status=&confidential=yes")); len(got) != 0 {
		t.Errorf("confidential: %v", got)
	}
	if got := cases(b.get("/incidents?status=&severity=SEV1")); len(got) != 0 {
		t.Errorf("SEV1: %v", got)
	}
	if p := b.get("/incidents?before=x"); p.Status != 200 || !strings.Contains(p.Body, "The page link is broken") {
		t.Errorf("a broken cursor: %d", p.Status)
	}
}

// TestConsoleServesNobodyBehindAnAPIToken: a hub with an API token and no
// sign-in cannot tell who a browser is, so the console serves nobody.
func TestConsoleServesNobodyBehindAnAPIToken(t *testing.T) {
	base := startHub(t, hub.Config{Token: "s3cret"})
	b := newBrowser(t, base)
	for _, path := range []string{"/", "/declare", "/incidents/INC-1"} {
		if p := b.get(path); p.Status != http.StatusUnauthorized || !strings.Contains(p.Body, "Sign in to use the console") {
			t.Errorf("%s: %d", path, p.Status)
		}
	}
}

// viewer may read what is not confidential, and nothing else.
type viewer struct{}

func (viewer) Actor() string { return "vic" }
func (viewer) Name() string  { return "Vic" }
func (viewer) Can(a console.Action, st *incident.State) bool {
	return a == console.Read && (st == nil || !st.Confidential)
}

// TestNeedToKnow: a caller who may not read a confidential incident does
// not see it listed, nor its page or live timeline; one who may only read
// gets no forms, and its commands and declarations are refused.
func TestNeedToKnow(t *testing.T) {
	h := integrationtest.New(t, "")
	h.Run(t, []projection.Projector{h.WithTimeline(t)})
	open := h.Declare(t, incident.Declare{Title: "Checkout down", Service: "payments", Severity: "SEV2"})
	secret := h.Declare(t, incident.Declare{Title: "Stolen laptop", Service: "corp", Severity: "SEV2", Confidential: true})
	srv := httptest.NewServer(console.New(console.Deps{Commands: h.Env.Commands, Timeline: h.Timeline,
		Caller: func(*http.Request) (console.Caller, bool) { return viewer{}, true }}))
	t.Cleanup(srv.Close)
	b := newBrowser(t, srv.URL)
	eventually(t, "both incidents in the timeline", func() bool {
		n, _ := h.Timeline.CountByStatus(t.Context(), readmodel.Search{})
		return n["investigating"] == 2
	})
	list := b.get("/incidents")
	if !strings.Contains(list.Body, "Checkout down") || strings.Contains(list.Body, "Stolen laptop") || strings.Contains(list.Body, secret.Codename) {
		t.Errorf("list shows a confidential incident to a viewer, or not the other:\n%s", list.Body)
	}
	// Filtering by confidential would tell a viewer what they do not see.
	only := b.get("/incidents?confidential=yes")
	if strings.Contains(list.Body, `name="confidential"`) || !strings.Contains(only.Body, "Checkout down") {
		t.Error("a viewer filters by confidential")
	}
	for _, path := range []string{"/incidents/" + secret.CaseNumber, "/incidents/" + secret.ID, "/incidents/" + secret.CaseNumber + "/live"} {
		if p := b.get(path); p.Status != http.StatusNotFound || strings.Contains(p.Body, "Stolen laptop") {
			t.Errorf("%s: %d", path, p.Status)
		}
	}
	p := b.get("/incidents/" + open.CaseNumber)
	if p.Status != 200 || strings.Contains(p.Body, `action="/incidents/`+open.CaseNumber+`/note"`) {
		t.Errorf("a viewer's incident page: %d, forms shown: %v", p.Status, strings.Contains(p.Body, "/note"))
	}
	if r := b.submit(p, "/incidents/"+open.CaseNumber+"/note", url.Values{"text": {"hi"}}); r.Status != http.StatusForbidden {
		t.Errorf("a viewer's note: %d", r.Status)
	}
	if r := b.submit(p, "/incidents/"+secret.CaseNumber+"/note", url.Values{"text": {"hi"}}); r.Status != http.StatusNotFound {
		t.Errorf("a viewer's note on a confidential incident: %d", r.Status)
	}
	if r := b.get("/declare"); r.Status != http.StatusForbidden {
		t.Errorf("a viewer's declare form: %d", r.Status)
	}
	if r := b.submit(p, "/declare", url.Values{"title": {"x"}, "service": {"x"}, "severity": {"SEV1"}}); r.Status != http.StatusForbidden {
		t.Errorf("a viewer's declaration: %d", r.Status)
	}
	if got := h.Count(t, open.ID, "io.hikeshi.incident.note_added"); got != 0 {
		t.Errorf("%d notes recorded for a viewer", got)
	}
}

// TestLiveTimelineEndsWhenTheHubStops: a browser left open on an incident
// page does not hold the hub's shutdown: its live timeline ends first.
func TestLiveTimelineEndsWhenTheHubStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h, err := hub.Start(ctx, hub.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- h.Run(ctx) }()
	base := "http://" + h.Addr()
	api(t, base, "POST", "/api/v1/incidents", map[string]any{"title": "Checkout down", "service": "payments", "severity": "SEV2"})
	res, err := http.Get(base + "/incidents/INC-1/live?after=0")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	rd := bufio.NewReader(res.Body)
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			t.Fatalf("live timeline before the declaration arrived: %v", err)
		}
		if strings.HasPrefix(line, "event: entries") {
			break
		}
	}
	ended := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, rd)
		close(ended)
	}()
	cancel()
	select {
	case <-ended:
	case err := <-stopped:
		t.Fatalf("the hub stopped (%v) while the live timeline was still open", err)
	}
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
}

// TestDashboardCountsOpenIncidentsBySeverity: open incidents are counted
// by severity and age, drills and closed ones left out, and the longest
// open listed first.
func TestDashboardCountsOpenIncidentsBySeverity(t *testing.T) {
	base := startHub(t, hub.Config{})
	declare := func(title, sev string, drill bool) {
		api(t, base, "POST", "/api/v1/incidents", map[string]any{"title": title, "service": "svc", "severity": sev, "drill": drill})
	}
	declare("First SEV2", "SEV2", false)
	declare("Second SEV2", "SEV2", false)
	declare("A SEV1", "SEV1", false)
	declare("A drill", "SEV1", true)
	declare("Closed one", "SEV3", false)
	api(t, base, "POST", "/api/v1/incidents/INC-5/status", map[string]string{"status": "resolved"})
	api(t, base, "POST", "/api/v1/incidents/INC-5/close", map[string]string{"resolution": "done"})
	b := newBrowser(t, base)
	var p page
	eventually(t, "the closed incident left out", func() bool {
		p = b.get("/dashboard")
		return strings.Contains(p.Body, "(3 open, drills left out)")
	})
	row := func(sev string) string {
		m := regexp.MustCompile(`(?s)sev-` + strings.ToLower(sev) + `">` + sev + `</span></th>(.*?)</tr>`).FindStringSubmatch(p.Body)
		if m == nil {
			t.Fatalf("no row for %s", sev)
		}
		return regexp.MustCompile(`\s+`).ReplaceAllString(m[1], " ")
	}
	if got := row("SEV2"); !strings.Contains(got, `data-label="under 1 hour"><strong>2</strong>`) || !strings.Contains(got, `>2</a>`) {
		t.Errorf("SEV2 row: %s", got)
	}
	if got := row("SEV1"); !strings.Contains(got, `data-label="under 1 hour"><strong>1</strong>`) {
		t.Errorf("SEV1 row (the drill counted?): %s", got)
	}
	if got := row("SEV3"); strings.Contains(got, "<strong>") {
		t.Errorf("SEV3 row (the closed incident counted?): %s", got)
	}
	oldest := regexp.MustCompile(`<li><a href="/incidents/(INC-\d+)">`).FindAllStringSubmatch(p.Body, -1)
	if len(oldest) != 3 || oldest[0][1] != "INC-1" || oldest[2][1] != "INC-3" {
		t.Errorf("open longest: %v", oldest)
	}
}

// TestFormsCarryTheSessionsCSRFToken: with a sign-in session, pages carry
// the session's CSRF token and posts are checked against it (so the
// session's own check passes too), not the console's cookie.
func TestFormsCarryTheSessionsCSRFToken(t *testing.T) {
	h := integrationtest.New(t, "")
	h.Run(t, []projection.Projector{h.WithTimeline(t)})
	h.Declare(t, incident.Declare{Title: "Checkout down", Service: "payments", Severity: "SEV2"})
	const sessionToken = "session-csrf-token"
	srv := httptest.NewServer(console.New(console.Deps{Commands: h.Env.Commands, Timeline: h.Timeline,
		Caller:      func(*http.Request) (console.Caller, bool) { return operator("alice"), true },
		SessionCSRF: func(*http.Request) (string, bool) { return sessionToken, true }}))
	t.Cleanup(srv.Close)
	b := newBrowser(t, srv.URL)
	p := b.get("/incidents/INC-1")
	if got := csrfOf(t, p); got != sessionToken {
		t.Fatalf("page token %q, want the session's", got)
	}
	if r := b.submit(p, "/incidents/INC-1/note", url.Values{"text": {"with the session's token"}}); r.Status != 200 {
		t.Errorf("note with the session's token: %d", r.Status)
	}
	v := url.Values{"text": {"with a cookie's token"}, "csrf": {strings.Repeat("A", 43)}}
	r, _ := http.NewRequest(http.MethodPost, srv.URL+"/incidents/INC-1/note", strings.NewReader(v.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.AddCookie(&http.Cookie{Name: "hikeshi_csrf", Value: strings.Repeat("A", 43)})
	if got := b.do(r); got.Status != http.StatusForbidden {
		t.Errorf("a post with the cookie's token but not the session's: %d", got.Status)
	}
}

// operator is a caller allowed everything, for tests that need no roles.
type operator string

func (o operator) Actor() string                          { return string(o) }
func (o operator) Name() string                           { return string(o) }
func (operator) Can(console.Action, *incident.State) bool { return true }

// TestIdleLiveTimelinesHoldNoGoroutine: browsers open on a quiet
// incident's page hold no goroutine of the hub while it stays quiet (a
// goroutine each, and net/http's, before), and each gets the next note.
// Not parallel: it counts the process's goroutines.
func TestIdleLiveTimelinesHoldNoGoroutine(t *testing.T) {
	base := startHub(t, hub.Config{})
	api(t, base, "POST", "/api/v1/incidents", map[string]any{"title": "Checkout down", "service": "payments", "severity": "SEV2"})
	settle := func() int {
		time.Sleep(300 * time.Millisecond)
		return runtime.NumGoroutine()
	}
	// following reads a stream up to its next batch of entries.
	following := func(br *bufio.Reader) {
		t.Helper()
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("live timeline ended: %v", err)
			}
			if strings.HasPrefix(line, "event: entries") {
				return
			}
		}
	}
	before := settle()
	const n = 50
	var browsers []*bufio.Reader
	for range n {
		conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "GET /incidents/INC-1/live?after=0 HTTP/1.1\r\nHost: hub\r\n\r\n")
		_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		br := bufio.NewReader(conn)
		following(br) // the declaration
		browsers = append(browsers, br)
	}
	if held := settle() - before; held > n/4 {
		t.Errorf("%d idle live timelines hold %d goroutines of the hub, want none per browser", n, held)
	}
	api(t, base, "POST", "/api/v1/incidents/INC-1/notes", map[string]any{"text": "rolled back"})
	for _, br := range browsers {
		following(br)
	}
}
