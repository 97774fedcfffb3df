package httpapi_test

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/services/hub"
)

// An incident read as of a time or a stream sequence is the incident as it
// stood then; the timeline until a time holds the events up to then.
func TestIncidentAsOf(t *testing.T) {
	_, c := startHub(t, hub.Config{})
	inc := c.declare(declareBody("Checkout errors"))
	path := "/api/v1/incidents/" + inc.ID
	pause := func() time.Time { // a moment strictly between two events
		time.Sleep(5 * time.Millisecond)
		at := time.Now()
		time.Sleep(5 * time.Millisecond)
		return at
	}
	afterDeclare := pause()
	var sev, note Incident
	c.post(path+"/severity", map[string]any{"severity": "SEV1", "reason": "all regions"}).must(t, http.StatusOK, &sev)
	afterSeverity := pause()
	c.post(path+"/notes", map[string]any{"text": "rolling back"}).must(t, http.StatusOK, &note)

	var got Incident
	c.get(path+"?as_of="+url.QueryEscape(afterDeclare.Format(time.RFC3339Nano))).must(t, http.StatusOK, &got)
	if got.Severity != "SEV2" || got.Version != inc.Version || got.Notes != 0 {
		t.Errorf("as of just after the declaration: %+v, want SEV2 at version %d", got, inc.Version)
	}
	c.get(path+"?as_of="+url.QueryEscape(afterSeverity.Format(time.RFC3339Nano))).must(t, http.StatusOK, &got)
	if got.Severity != "SEV1" || got.Version != sev.Version || got.Notes != 0 {
		t.Errorf("as of after the severity change: %+v, want SEV1 at version %d", got, sev.Version)
	}
	c.get(path+"?seq="+strconv.FormatUint(note.Version, 10)).must(t, http.StatusOK, &got)
	if got.Notes != 1 || got.Version != note.Version {
		t.Errorf("as of the note's sequence: %+v", got)
	}
	// By case number too, and the timeline cut at the same moment.
	c.get("/api/v1/incidents/"+inc.CaseNumber+"?seq="+strconv.FormatUint(sev.Version, 10)).must(t, http.StatusOK, &got)
	if got.Severity != "SEV1" || got.Notes != 0 {
		t.Errorf("by case number as of the severity change: %+v", got)
	}
	c.timeline(inc.ID, note.Version)
	var tl Timeline
	c.get(path+"/timeline?until="+url.QueryEscape(afterSeverity.Format(time.RFC3339Nano))).must(t, http.StatusOK, &tl)
	if len(tl.Events) != 2 || tl.Version != sev.Version {
		t.Errorf("timeline until after the severity change: %d events at version %d, want 2 at %d", len(tl.Events), tl.Version, sev.Version)
	}

	before := inc.DeclaredAt.Add(-time.Minute).Format(time.RFC3339)
	e := c.get(path+"?as_of="+before).mustError(t, http.StatusNotFound, "not_yet_declared")
	if !strings.Contains(e.Error.Message, "did not exist") || !strings.Contains(e.Error.Message, "declared at") {
		t.Errorf("before the declaration: %q does not say so", e.Error.Message)
	}
	c.get(path+"/timeline?until="+before).mustError(t, http.StatusNotFound, "not_yet_declared")
	for _, q := range []string{"?as_of=yesterday", "?as_of=2026-11-21", "?seq=abc", "?seq=0", "?seq=-1", "?as_of=2026-11-21T14:05:00Z&seq=3", "/timeline?until=soon", "/timeline?until=2026-11-21T14:05:00Z&wait=1s"} {
		e := c.get(path+q).mustError(t, http.StatusBadRequest, "invalid_query")
		if e.Error.Field == "" {
			t.Errorf("%s: the error names no parameter: %q", q, e.Error.Message)
		}
	}
}

// A caller who may not read an incident now may not read its past either.
func TestIncidentAsOfNeedToKnow(t *testing.T) {
	_, admin := authHub(t)
	viewer, _ := mint(t, admin, "viewer", "viewer")
	body := declareBody(secretTitle)
	body["confidential"] = true
	secret := admin.declare(body)
	at := url.QueryEscape(time.Now().Add(time.Hour).Format(time.RFC3339))
	for _, q := range []string{"?as_of=" + at, "?seq=" + strconv.FormatUint(secret.Version, 10), "/timeline?until=" + at} {
		r := viewer.get("/api/v1/incidents/" + secret.ID + q)
		r.mustError(t, http.StatusNotFound, "not_found")
		if strings.Contains(string(r.Body), secretTitle) {
			t.Errorf("%s leaks the title: %s", q, r.Body)
		}
	}
	var got Incident
	admin.get("/api/v1/incidents/"+secret.ID+"?as_of="+at).must(t, http.StatusOK, &got)
	if got.Title != secretTitle {
		t.Errorf("the declarer's as-of read: %+v", got)
	}
}
