package httpapi_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/hub"
)

func caseSeq(t *testing.T, cn string) int {
	t.Helper()
	n, err := strconv.Atoi(strings.TrimPrefix(cn, "INC-"))
	if err != nil {
		t.Fatalf("case number %q", cn)
	}
	return n
}

func TestAPIIdempotentDeclare(t *testing.T) {
	t.Parallel()
	_, c := startHub(t, hub.Config{})
	body := declareBody("Login fails")

	first := c.post("/api/v1/incidents", body, "Idempotency-Key", "declare-1")
	var inc Incident
	first.must(t, http.StatusCreated, &inc)
	if first.Header.Get("Idempotent-Replayed") != "" {
		t.Fatal("first answer marked as replayed")
	}
	second := c.post("/api/v1/incidents", body, "Idempotency-Key", "declare-1")
	if second.Status != first.Status || !bytes.Equal(second.Body, first.Body) {
		t.Fatalf("replay differs: %d %s\nfirst: %d %s", second.Status, second.Body, first.Status, first.Body)
	}
	if second.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay without Idempotent-Replayed: %v", second.Header)
	}

	// Same key, different body: refused, nothing declared.
	other := declareBody("Login fails badly")
	c.post("/api/v1/incidents", other, "Idempotency-Key", "declare-1").mustError(t, http.StatusUnprocessableEntity, "idempotency_key_reused")

	// Concurrent retries of one request: one incident, one case number.
	var wg sync.WaitGroup
	got := make([]response, 8)
	for i := range got {
		wg.Go(func() {
			got[i] = c.post("/api/v1/incidents", declareBody("Login fails twice"), "Idempotency-Key", "declare-2")
		})
	}
	wg.Wait()
	var twin Incident
	got[0].must(t, http.StatusCreated, &twin)
	for i, r := range got {
		if r.Status != http.StatusCreated || !bytes.Equal(r.Body, got[0].Body) {
			t.Fatalf("concurrent declare %d: %d %s\nwant %s", i, r.Status, r.Body, got[0].Body)
		}
	}
	if twin.ID == inc.ID || caseSeq(t, twin.CaseNumber) != caseSeq(t, inc.CaseNumber)+1 {
		t.Fatalf("second key: %s %s after %s %s", twin.ID, twin.CaseNumber, inc.ID, inc.CaseNumber)
	}

	// No case number was spent on the retries: the next declare gets the
	// next number.
	next := c.declare(declareBody("Unrelated"))
	if caseSeq(t, next.CaseNumber) != caseSeq(t, twin.CaseNumber)+1 {
		t.Fatalf("next declare got %s after %s: retries allocated case numbers", next.CaseNumber, twin.CaseNumber)
	}

	// One event per incident.
	for _, i := range []Incident{inc, twin} {
		var st Incident
		c.get("/api/v1/incidents/"+i.ID).must(t, http.StatusOK, &st)
		if st.Events != 1 || st.Version != i.Version {
			t.Fatalf("%s: %d events, version %d (declare answered %d)", i.CaseNumber, st.Events, st.Version, i.Version)
		}
	}
	eventually(t, "list", func() error {
		var l struct {
			Incidents []Incident `json:"incidents"`
		}
		r := c.get("/api/v1/incidents")
		if err := json.Unmarshal(r.Body, &l); err != nil {
			return err
		}
		seen := map[string]int{}
		for _, x := range l.Incidents {
			seen[x.Title]++
		}
		if len(l.Incidents) != 3 || seen["Login fails"] != 1 || seen["Login fails twice"] != 1 || seen["Unrelated"] != 1 {
			return fmt.Errorf("incidents: %s", r.Body)
		}
		return nil
	})
}

func TestAPIIdempotentCommand(t *testing.T) {
	t.Parallel()
	_, c := startHub(t, hub.Config{})
	inc := c.declare(declareBody("Disk full"))
	path := "/api/v1/incidents/" + inc.ID
	note := map[string]any{"text": "cleaned /var/log"}

	first := c.post(path+"/notes", note, "Idempotency-Key", "note-1", "X-Hikeshi-Actor", "dana")
	var st Incident
	first.must(t, http.StatusOK, &st)
	second := c.post(path+"/notes", note, "Idempotency-Key", "note-1", "X-Hikeshi-Actor", "dana")
	if second.Status != http.StatusOK || !bytes.Equal(second.Body, first.Body) || second.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay: %d %v %s\nfirst %s", second.Status, second.Header, second.Body, first.Body)
	}
	c.post(path+"/notes", map[string]any{"text": "something else"}, "Idempotency-Key", "note-1").
		mustError(t, http.StatusUnprocessableEntity, "idempotency_key_reused")

	// The same key on another endpoint is another request.
	var sev Incident
	c.post(path+"/severity", map[string]any{"severity": "SEV1"}, "Idempotency-Key", "note-1").must(t, http.StatusOK, &sev)

	// A refusal is remembered too: the replay repeats the 409.
	r1 := c.post(path+"/close", map[string]any{"resolution": "x"}, "Idempotency-Key", "close-1")
	r1.mustError(t, http.StatusConflict, "invalid_transition")
	r2 := c.post(path+"/close", map[string]any{"resolution": "x"}, "Idempotency-Key", "close-1")
	if r2.Status != r1.Status || !bytes.Equal(r1.Body, r2.Body) || r2.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replayed refusal: %d %s", r2.Status, r2.Body)
	}

	var now Incident
	c.get(path).must(t, http.StatusOK, &now)
	if now.Notes != 1 || now.Events != 3 || now.Version != sev.Version {
		t.Fatalf("after retries: notes %d events %d version %d (want 1, 3, %d)", now.Notes, now.Events, now.Version, sev.Version)
	}
	tl := c.timeline(inc.ID, now.Version)
	var notes int
	for _, e := range tl.Events {
		if e.Type == events.TypeNoteAdded {
			notes++
			if e.Actor != "dana" {
				t.Fatalf("note actor %q", e.Actor)
			}
		}
	}
	if notes != 1 || len(tl.Events) != 3 {
		t.Fatalf("timeline has %d events, %d notes: %+v", len(tl.Events), notes, tl.Events)
	}

	// A key longer than 255 bytes is refused.
	c.post(path+"/notes", note, "Idempotency-Key", strings.Repeat("k", 256)).mustError(t, http.StatusBadRequest, "invalid_header")
}
