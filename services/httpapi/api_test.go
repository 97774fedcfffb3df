package httpapi_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/httpapi"
	"github.com/hikeshi/hikeshi/services/hub"
)

var caseRe = regexp.MustCompile(`^INC-[0-9]+$`)

func TestAPILifecycle(t *testing.T) {
	t.Parallel()
	_, c := startHub(t, hub.Config{})

	// Declare: 201 with id, case number, Location and ETag; the actor
	// header fills declared_by.
	r := c.post("/api/v1/incidents", map[string]any{
		"title": "Checkout returns 500", "service": "checkout", "severity": "sev2", "summary": "card payments fail",
	}, "X-Hikeshi-Actor", "alice")
	var inc Incident
	r.must(t, http.StatusCreated, &inc)
	if inc.ID == "" || !events.ValidID(inc.ID) || !caseRe.MatchString(inc.CaseNumber) {
		t.Fatalf("declare: id %q case %q", inc.ID, inc.CaseNumber)
	}
	if inc.Status != "investigating" || inc.Severity != "SEV2" || inc.DeclaredBy != "alice" || inc.Confidential || inc.Codename != "" {
		t.Fatalf("declare: %+v", inc)
	}
	if inc.Version == 0 || inc.Events != 1 || inc.DeclaredAt.IsZero() {
		t.Fatalf("declare: version %d events %d declared at %v", inc.Version, inc.Events, inc.DeclaredAt)
	}
	if got := r.Header.Get("Location"); got != "/api/v1/incidents/"+inc.ID {
		t.Fatalf("Location %q", got)
	}
	if got := r.Header.Get("ETag"); got != strconv.Quote(strconv.FormatUint(inc.Version, 10)) {
		t.Fatalf("ETag %q, version %d", got, inc.Version)
	}
	path := "/api/v1/incidents/" + inc.ID

	// GET one, with its version.
	var got Incident
	r = c.get(path).must(t, http.StatusOK, &got)
	if got.ID != inc.ID || got.Version != inc.Version || got.Title != "Checkout returns 500" || got.Summary != "card payments fail" {
		t.Fatalf("get: %+v", got)
	}
	if r.Header.Get("ETag") != strconv.Quote(strconv.FormatUint(got.Version, 10)) {
		t.Fatalf("get: ETag %q", r.Header.Get("ETag"))
	}

	// The case number works in place of the id once the timeline has it.
	eventually(t, "GET by case number", func() error {
		var byCase Incident
		r := c.get("/api/v1/incidents/" + inc.CaseNumber)
		if r.Status != http.StatusOK {
			return fmt.Errorf("status %d: %s", r.Status, r.Body)
		}
		if err := json.Unmarshal(r.Body, &byCase); err != nil {
			return err
		}
		if byCase.ID != inc.ID {
			return fmt.Errorf("case %s resolved to %s", inc.CaseNumber, byCase.ID)
		}
		return nil
	})
	// Case-insensitive, as typed in chat.
	c.get("/api/v1/incidents/"+strings.ToLower(inc.CaseNumber)).must(t, http.StatusOK, nil)

	last := inc.Version
	step := func(sub string, body map[string]any, actor string, check func(Incident) bool) Incident {
		t.Helper()
		var st Incident
		r := c.post(path+"/"+sub, body, "X-Hikeshi-Actor", actor).must(t, http.StatusOK, &st)
		if st.Version <= last || st.ID != inc.ID {
			t.Fatalf("%s: version %d after %d", sub, st.Version, last)
		}
		if r.Header.Get("ETag") != strconv.Quote(strconv.FormatUint(st.Version, 10)) {
			t.Fatalf("%s: ETag %q, version %d", sub, r.Header.Get("ETag"), st.Version)
		}
		if !check(st) {
			t.Fatalf("%s: %+v", sub, st)
		}
		last = st.Version
		return st
	}
	step("severity", map[string]any{"severity": "SEV1", "reason": "all regions"}, "bob", func(s Incident) bool { return s.Severity == "SEV1" })
	step("commander", map[string]any{"user": "bob"}, "bob", func(s Incident) bool { return s.Commander == "bob" })
	step("notes", map[string]any{"text": "rolled back v42"}, "carol", func(s Incident) bool { return s.Notes == 1 })
	step("status", map[string]any{"status": "identified", "message": "bad deploy"}, "bob", func(s Incident) bool { return s.Status == "identified" })
	step("status", map[string]any{"status": "monitoring"}, "bob", func(s Incident) bool { return s.Status == "monitoring" })

	// Back to identified is refused; back to investigating would not be.
	e := c.post(path+"/status", map[string]any{"status": "identified"}).mustError(t, http.StatusConflict, "invalid_transition")
	if !strings.Contains(e.Error.Message, "monitoring") {
		t.Fatalf("transition message %q", e.Error.Message)
	}
	// "closed" through the status endpoint is refused as well.
	c.post(path+"/status", map[string]any{"status": "closed"}).mustError(t, http.StatusConflict, "invalid_transition")
	// Close before resolved is refused.
	c.post(path+"/close", map[string]any{"resolution": "x"}).mustError(t, http.StatusConflict, "invalid_transition")

	step("status", map[string]any{"status": "resolved"}, "bob", func(s Incident) bool { return s.Status == "resolved" })

	// Close through the case number.
	var closed Incident
	c.post("/api/v1/incidents/"+inc.CaseNumber+"/close", map[string]any{"resolution": "reverted", "lessons_learned": "canary first"},
		"X-Hikeshi-Actor", "bob").must(t, http.StatusOK, &closed)
	if closed.ID != inc.ID || closed.Status != "closed" || closed.ClosedAt == nil || closed.Resolution != "reverted" || closed.LessonsLearned != "canary first" {
		t.Fatalf("close: %+v", closed)
	}
	if closed.Events != 8 {
		t.Fatalf("close: %d events, want 8", closed.Events)
	}

	// A closed incident accepts nothing more.
	for sub, body := range map[string]map[string]any{
		"notes": {"text": "late"}, "severity": {"severity": "SEV3"}, "commander": {"user": "zed"},
		"status": {"status": "investigating"}, "close": {"resolution": "again"},
	} {
		c.post(path+"/"+sub, body).mustError(t, http.StatusConflict, "invalid_transition")
	}

	// The timeline, in order, with time, actor and data.
	tl := c.timeline(inc.ID, closed.Version)
	if tl.IncidentID != inc.ID || tl.CaseNumber != inc.CaseNumber || tl.Version != closed.Version {
		t.Fatalf("timeline header: %+v", tl)
	}
	wantTypes := []string{events.TypeDeclared, events.TypeSeverityChanged, events.TypeCommanderAssigned, events.TypeNoteAdded,
		events.TypeStatusUpdated, events.TypeStatusUpdated, events.TypeStatusUpdated, events.TypeClosed}
	wantActors := []string{"alice", "bob", "bob", "carol", "bob", "bob", "bob", "bob"}
	if len(tl.Events) != len(wantTypes) {
		t.Fatalf("timeline has %d events, want %d", len(tl.Events), len(wantTypes))
	}
	for i, e := range tl.Events {
		if e.Type != wantTypes[i] || e.Actor != wantActors[i] || e.Time.IsZero() || e.ID == "" || len(e.Data) == 0 {
			t.Fatalf("timeline[%d] = %+v, want type %s actor %s", i, e, wantTypes[i], wantActors[i])
		}
		if i > 0 && (e.Seq <= tl.Events[i-1].Seq || e.Time.Before(tl.Events[i-1].Time)) {
			t.Fatalf("timeline out of order at %d", i)
		}
	}
	var note events.NoteAdded
	if err := json.Unmarshal(tl.Events[3].Data, &note); err != nil || note.Text != "rolled back v42" {
		t.Fatalf("note data %s: %v", tl.Events[3].Data, err)
	}
	var sev events.SeverityChanged
	if err := json.Unmarshal(tl.Events[1].Data, &sev); err != nil || sev.From != events.SEV2 || sev.To != events.SEV1 || sev.Reason != "all regions" {
		t.Fatalf("severity data %s: %v", tl.Events[1].Data, err)
	}
	// ?after= pages.
	var page Timeline
	c.get(fmt.Sprintf("%s/timeline?after=%d", path, tl.Events[5].Seq)).must(t, http.StatusOK, &page)
	if len(page.Events) != 2 || page.Events[0].Seq != tl.Events[6].Seq {
		t.Fatalf("timeline after %d: %+v", tl.Events[5].Seq, page.Events)
	}

	// Lists: open and closed.
	other := c.declare(declareBody("Search is slow"))
	listIDs := func(q string) []string {
		var l struct {
			Incidents []Incident `json:"incidents"`
		}
		c.get("/api/v1/incidents"+q).must(t, http.StatusOK, &l)
		var ids []string
		for _, i := range l.Incidents {
			ids = append(ids, i.ID+":"+i.Status)
		}
		return ids
	}
	eventually(t, "lists", func() error {
		all, open, closedL := listIDs(""), listIDs("?status=open"), listIDs("?status=closed")
		switch {
		case !slices.Contains(all, inc.ID+":closed") || !slices.Contains(all, other.ID+":investigating"):
			return fmt.Errorf("all: %v", all)
		case !slices.Equal(open, []string{other.ID + ":investigating"}):
			return fmt.Errorf("open: %v", open)
		case !slices.Equal(closedL, []string{inc.ID + ":closed"}):
			return fmt.Errorf("closed: %v", closedL)
		}
		return nil
	})
	e = c.get("/api/v1/incidents?status=resolved").mustError(t, http.StatusBadRequest, "invalid_query")
	if e.Error.Field != "status" || !strings.Contains(e.Error.Message, "status") {
		t.Fatalf("list error %+v", e)
	}
}

func TestAPIDeclareConfidential(t *testing.T) {
	t.Parallel()
	_, c := startHub(t, hub.Config{})
	body := declareBody("Customer table exfiltrated")
	body["confidential"] = true
	body["drill"] = true
	r := c.post("/api/v1/incidents", body, "X-Hikeshi-Actor", "mallory-hunter")
	var inc Incident
	r.must(t, http.StatusCreated, &inc)
	if !inc.Confidential || !inc.Drill || !regexp.MustCompile(`^[a-z]+-[a-z]+$`).MatchString(inc.Codename) {
		t.Fatalf("confidential declare: %+v", inc)
	}
	var got Incident
	c.get("/api/v1/incidents/"+inc.ID).must(t, http.StatusOK, &got)
	if got.Codename != inc.Codename {
		t.Fatalf("codename %q then %q", inc.Codename, got.Codename)
	}
}

func TestAPIErrors(t *testing.T) {
	t.Parallel()
	_, c := startHub(t, hub.Config{})
	inc := c.declare(declareBody("Payments degraded"))
	path := "/api/v1/incidents/" + inc.ID
	unknownID := events.NewID()

	tests := []struct {
		name        string
		method      string
		path        string
		body        any
		hdr         []string
		status      int
		code        string
		field       string // error.field, when set
		msgContains string
	}{
		{name: "malformed JSON", method: "POST", path: "/api/v1/incidents", body: `{"title": "x",`, status: 400, code: "bad_json"},
		{name: "array body", method: "POST", path: "/api/v1/incidents", body: `[1,2]`, status: 400, code: "bad_json", msgContains: "JSON object"},
		{name: "string body", method: "POST", path: path + "/notes", body: `"note"`, status: 400, code: "bad_json", msgContains: "JSON object"},
		{name: "empty body", method: "POST", path: "/api/v1/incidents", body: ``, status: 400, code: "bad_json"},
		{name: "trailing data", method: "POST", path: path + "/notes", body: `{"text":"a"} {"text":"b"}`, status: 400, code: "bad_json"},
		{name: "unknown field", method: "POST", path: "/api/v1/incidents", body: `{"title":"x","service":"api","severity":"SEV2","colour":"red"}`,
			status: 400, code: "unknown_field", field: "colour", msgContains: "colour"},
		{name: "unknown field on a command", method: "POST", path: path + "/notes", body: `{"text":"x","txt":"y"}`,
			status: 400, code: "unknown_field", field: "txt", msgContains: "txt"},
		{name: "wrong type", method: "POST", path: "/api/v1/incidents", body: `{"title":42,"service":"api","severity":"SEV2"}`,
			status: 400, code: "invalid_field", field: "title", msgContains: "title"},
		{name: "wrong type bool", method: "POST", path: "/api/v1/incidents", body: `{"title":"x","service":"api","severity":"SEV2","confidential":"yes"}`,
			status: 400, code: "invalid_field", field: "confidential", msgContains: "confidential"},
		{name: "title missing", method: "POST", path: "/api/v1/incidents", body: `{"service":"api","severity":"SEV2"}`,
			status: 400, code: "invalid_field", field: "title", msgContains: "title"},
		{name: "title too long", method: "POST", path: "/api/v1/incidents", body: map[string]any{"title": strings.Repeat("t", 201), "service": "api", "severity": "SEV2"},
			status: 400, code: "invalid_field", field: "title", msgContains: "200"},
		{name: "service with space", method: "POST", path: "/api/v1/incidents", body: `{"title":"x","service":"a b","severity":"SEV2"}`,
			status: 400, code: "invalid_field", field: "service", msgContains: "service"},
		{name: "severity invalid", method: "POST", path: "/api/v1/incidents", body: `{"title":"x","service":"api","severity":"SEV0"}`,
			status: 400, code: "invalid_field", field: "severity", msgContains: "severity"},
		{name: "invalid UTF-8", method: "POST", path: path + "/notes", body: []byte("{\"text\":\"\xff\xfe\"}"),
			status: 400, code: "bad_json", msgContains: "UTF-8"},
		{name: "note empty", method: "POST", path: path + "/notes", body: `{"text":"  "}`, status: 400, code: "invalid_field", field: "text"},
		{name: "commander missing", method: "POST", path: path + "/commander", body: `{}`, status: 400, code: "invalid_field", field: "user"},
		{name: "status unknown", method: "POST", path: path + "/status", body: `{"status":"fixed"}`, status: 400, code: "invalid_field", field: "status"},
		{name: "resolution missing", method: "POST", path: path + "/close", body: `{}`, status: 400, code: "invalid_field", field: "resolution"},
		{name: "bad If-Match", method: "POST", path: path + "/notes", body: `{"text":"x"}`, hdr: []string{"If-Match", `"abc"`}, status: 400, code: "invalid_header"},
		{name: "bad query", method: "GET", path: path + "/timeline?after=-1", status: 400, code: "invalid_query", field: "after"},
		{name: "bad wait", method: "GET", path: path + "/timeline?wait=soon", status: 400, code: "invalid_query", field: "wait"},

		{name: "unknown incident", method: "GET", path: "/api/v1/incidents/" + unknownID, status: 404, code: "not_found"},
		{name: "unknown incident command", method: "POST", path: "/api/v1/incidents/" + unknownID + "/notes", body: `{"text":"x"}`, status: 404, code: "not_found"},
		{name: "unknown incident timeline", method: "GET", path: "/api/v1/incidents/" + unknownID + "/timeline", status: 404, code: "not_found"},
		{name: "unknown case number", method: "GET", path: "/api/v1/incidents/INC-99999", status: 404, code: "not_found"},
		{name: "invalid id", method: "GET", path: "/api/v1/incidents/a.b*c", status: 404, code: "not_found"},
		{name: "unknown route", method: "GET", path: "/api/v1/nope", status: 404, code: "no_route"},
		{name: "unknown sub-route", method: "POST", path: path + "/reopen", body: `{}`, status: 404, code: "no_route"},

		{name: "wrong content type", method: "POST", path: path + "/notes", body: `{"text":"x"}`, hdr: []string{"Content-Type", "text/plain"}, status: 415, code: "unsupported_media_type"},
		{name: "form content type", method: "POST", path: "/api/v1/incidents", body: `title=x`, hdr: []string{"Content-Type", "application/x-www-form-urlencoded"}, status: 415, code: "unsupported_media_type"},
		{name: "missing content type", method: "POST", path: path + "/notes", body: `{"text":"x"}`, hdr: []string{"Content-Type", ""}, status: 415, code: "unsupported_media_type"},
		{name: "malformed content type", method: "POST", path: path + "/notes", body: `{"text":"x"}`, hdr: []string{"Content-Type", "application/json; ="}, status: 415, code: "unsupported_media_type"},
		{name: "body over 1 MiB", method: "POST", path: path + "/notes", body: append(append([]byte(`{"text":"`), strings.Repeat("a", httpapi.MaxBody)...), `"}`...),
			status: 413, code: "body_too_large"},

		{name: "status closed via status", method: "POST", path: path + "/status", body: `{"status":"closed"}`, status: 409, code: "invalid_transition"},
		{name: "same severity", method: "POST", path: path + "/severity", body: `{"severity":"SEV2"}`, status: 409, code: "invalid_transition"},
		{name: "close unresolved", method: "POST", path: path + "/close", body: `{"resolution":"x"}`, status: 409, code: "invalid_transition"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := *c
			c.t = t
			r := c.req(tc.method, tc.path, tc.body, tc.hdr...)
			e := r.mustError(t, tc.status, tc.code)
			if tc.field != "" && e.Error.Field != tc.field {
				t.Fatalf("error field %q, want %q (%s)", e.Error.Field, tc.field, e.Error.Message)
			}
			if !strings.Contains(e.Error.Message, tc.msgContains) {
				t.Fatalf("error message %q does not contain %q", e.Error.Message, tc.msgContains)
			}
		})
	}

	// None of the refused requests changed the incident.
	var st Incident
	c.get(path).must(t, http.StatusOK, &st)
	if st.Version != inc.Version || st.Events != 1 {
		t.Fatalf("refused requests changed the incident: version %d→%d, events %d", inc.Version, st.Version, st.Events)
	}

	// A body of exactly MaxBody is read (and judged on its content).
	exact := []byte(`{"text":"fits"}`)
	exact = append(exact, strings.Repeat(" ", httpapi.MaxBody-len(exact))...)
	c.post(path+"/notes", exact).must(t, http.StatusOK, nil)
	// A charset parameter is fine.
	c.post(path+"/notes", `{"text":"utf8"}`, "Content-Type", "application/json; charset=utf-8").must(t, http.StatusOK, nil)
}

func TestAPIIfMatch(t *testing.T) {
	t.Parallel()
	_, c := startHub(t, hub.Config{})
	inc := c.declare(declareBody("Queue backlog"))
	path := "/api/v1/incidents/" + inc.ID
	r := c.post(path+"/notes", map[string]any{"text": "first"}).must(t, http.StatusOK, nil)
	etag := r.Header.Get("ETag")

	// The declare version is stale now.
	stale := strconv.Quote(strconv.FormatUint(inc.Version, 10))
	e := c.post(path+"/notes", map[string]any{"text": "stale"}, "If-Match", stale).mustError(t, http.StatusConflict, "version_conflict")
	if !strings.Contains(e.Error.Message, "If-Match") {
		t.Fatalf("conflict message %q", e.Error.Message)
	}
	// A version from the future conflicts too.
	c.post(path+"/severity", map[string]any{"severity": "SEV1"}, "If-Match", `"999999"`).mustError(t, http.StatusConflict, "version_conflict")

	// The current ETag succeeds, as a strong or weak validator, or bare.
	var st Incident
	c.post(path+"/notes", map[string]any{"text": "current"}, "If-Match", etag).must(t, http.StatusOK, &st)
	r = c.post(path+"/severity", map[string]any{"severity": "SEV1"}, "If-Match", "W/"+strconv.Quote(strconv.FormatUint(st.Version, 10))).must(t, http.StatusOK, &st)
	c.post(path+"/commander", map[string]any{"user": "ann"}, "If-Match", strconv.FormatUint(st.Version, 10)).must(t, http.StatusOK, &st)
	if st.Notes != 2 || st.Severity != "SEV1" || st.Commander != "ann" || st.Events != 5 {
		t.Fatalf("after If-Match writes: %+v", st)
	}
	// The stale write was not applied.
	tl := c.timeline(inc.ID, st.Version)
	for _, e := range tl.Events {
		if strings.Contains(string(e.Data), "stale") {
			t.Fatalf("stale write stored: %s", e.Data)
		}
	}
	// GET's ETag is the current version.
	if got := c.get(path).Header.Get("ETag"); got != strconv.Quote(strconv.FormatUint(st.Version, 10)) {
		t.Fatalf("ETag %q, version %d", got, st.Version)
	}
}

func TestAPIToken(t *testing.T) {
	t.Parallel()
	_, c := startHub(t, hub.Config{Token: "s3cret-token"})
	anon := *c
	anon.token = ""
	wrong := *c
	wrong.token = "s3cret-tokeN"

	for _, cl := range []*client{&anon, &wrong} {
		cl.get("/api/v1/incidents").mustError(t, http.StatusUnauthorized, "unauthorized")
		cl.post("/api/v1/incidents", declareBody("x")).mustError(t, http.StatusUnauthorized, "unauthorized")
		cl.get("/api/v1/incidents/INC-1").mustError(t, http.StatusUnauthorized, "unauthorized")
		cl.get("/api/v1/events").mustError(t, http.StatusUnauthorized, "unauthorized")
		cl.get("/api/v1/nope").mustError(t, http.StatusUnauthorized, "unauthorized")
	}
	// Not a bearer token.
	anon.get("/api/v1/incidents", "Authorization", "Basic czNjcmV0LXRva2Vu").mustError(t, http.StatusUnauthorized, "unauthorized")
	anon.get("/api/v1/incidents", "Authorization", "s3cret-token").mustError(t, http.StatusUnauthorized, "unauthorized")

	// Health stays open; the right token works.
	anon.get("/healthz").must(t, http.StatusOK, nil)
	inc := c.declare(declareBody("Token works"))
	c.get("/api/v1/incidents/"+inc.ID).must(t, http.StatusOK, nil)
	// Nothing was declared by the refused requests.
	if inc.CaseNumber != "INC-1" {
		t.Fatalf("first authorised declare got %s", inc.CaseNumber)
	}
}

func TestAPIRefusesUnsafeListen(t *testing.T) {
	t.Parallel()
	cfg := hub.Config{DataDir: t.TempDir(), Listen: "0.0.0.0:8080"}
	cfg.Defaults()
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "token") {
		t.Fatalf("Validate(0.0.0.0:8080 without token) = %v", err)
	}
	if _, err := hub.Start(t.Context(), hub.Config{DataDir: cfg.DataDir, Listen: "0.0.0.0:8080"}); err == nil {
		t.Fatal("Start listened on 0.0.0.0 without a token")
	}
}

func TestAPIBusDown(t *testing.T) {
	t.Parallel()
	h, c := startHub(t, hub.Config{})
	inc := c.declare(declareBody("Before the outage"))
	c.get("/readyz").must(t, http.StatusOK, nil)
	quiesce(t, h)

	h.Bus().Server.Shutdown()

	reqs := []struct {
		name string
		path string
		body any
		hdr  []string
	}{
		{"declare", "/api/v1/incidents", declareBody("During the outage"), nil},
		{"declare with key", "/api/v1/incidents", declareBody("During the outage"), []string{"Idempotency-Key", "outage-1"}},
		{"note", "/api/v1/incidents/" + inc.ID + "/notes", map[string]any{"text": "lost?"}, nil},
		{"note with key", "/api/v1/incidents/" + inc.ID + "/notes", map[string]any{"text": "lost?"}, []string{"Idempotency-Key", "outage-2"}},
		{"status with If-Match", "/api/v1/incidents/" + inc.ID + "/status", map[string]any{"status": "resolved"},
			[]string{"If-Match", strconv.Quote(strconv.FormatUint(inc.Version, 10))}},
	}
	errs := make(chan error, len(reqs))
	for _, rq := range reqs {
		go func() {
			r := c.post(rq.path, rq.body, rq.hdr...)
			var e apiError
			switch {
			case r.Status >= 200 && r.Status < 300:
				errs <- fmt.Errorf("%s: %d with the bus down: %s", rq.name, r.Status, r.Body)
			case r.Status != http.StatusServiceUnavailable:
				errs <- fmt.Errorf("%s: status %d, want 503: %s", rq.name, r.Status, r.Body)
			case json.Unmarshal(r.Body, &e) != nil || e.Error.Code != "bus_unavailable" || e.Error.Message == "":
				errs <- fmt.Errorf("%s: body %s", rq.name, r.Body)
			case r.Header.Get("Retry-After") == "":
				errs <- fmt.Errorf("%s: no Retry-After", rq.name)
			default:
				errs <- nil
			}
		}()
	}
	var failed []error
	for range reqs {
		if err := <-errs; err != nil {
			failed = append(failed, err)
		}
	}
	if len(failed) > 0 {
		t.Fatal(errors.Join(failed...))
	}
	r := c.get("/readyz")
	if r.Status != http.StatusServiceUnavailable {
		t.Fatalf("readyz with the bus down: %d %s", r.Status, r.Body)
	}
	c.get("/healthz").must(t, http.StatusOK, nil)
}
