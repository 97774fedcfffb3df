package httpapi_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/services/hub"
)

const logSHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

type evidenceList struct {
	CaseNumber string `json:"case_number"`
	Evidence   []struct {
		ID        string `json:"id"`
		Name      string `json:"name"`
		SHA256    string `json:"sha256"`
		Custodian string `json:"custodian"`
		Custody   []struct {
			From, To, Reason string
			At               time.Time
			RecordedAt       time.Time `json:"recorded_at"`
		} `json:"custody"`
	} `json:"evidence"`
}

// TestEvidenceChainOfCustody: an item is added, handed over twice (once
// backdated) and listed with its chain; bad input is a 400 naming the
// field, a hand-over from the wrong holder a 409, and nothing is recorded
// by either.
func TestEvidenceChainOfCustody(t *testing.T) {
	_, c := startHub(t, hub.Config{})
	inc := c.declare(declareBody("Stolen laptop"))
	base := "/api/v1/incidents/" + inc.CaseNumber + "/evidence"
	var st Incident
	c.post(base, map[string]any{"name": "disk image", "sha256": strings.ToUpper(logSHA), "location": "safe 3, shelf 2", "custodian": "carol"}).must(t, http.StatusOK, &st)
	for _, bad := range []struct {
		body  map[string]any
		field string
	}{
		{map[string]any{"name": "x", "sha256": "abc", "location": "l", "custodian": "c"}, "sha256"},
		{map[string]any{"sha256": logSHA, "location": "l", "custodian": "c"}, "name"},
		{map[string]any{"name": "x", "sha256": logSHA[:63] + "1", "location": "l"}, "custodian"},
	} {
		if e := c.post(base, bad.body).mustError(t, http.StatusBadRequest, "invalid_field"); e.Error.Field != bad.field {
			t.Errorf("%v: field %q, want %q (%s)", bad.body, e.Error.Field, bad.field, e.Error.Message)
		}
	}
	handedAt := time.Now().Add(2 * time.Second).UTC().Truncate(time.Second) // within the clock skew
	c.post(base+"/E1/handover", map[string]any{"from": "carol", "to": "dan", "reason": "legal hold", "at": handedAt.Format(time.RFC3339)}).must(t, http.StatusOK, nil)
	c.post(base+"/E1/handover", map[string]any{"from": "carol", "to": "erin"}).mustError(t, http.StatusConflict, "")
	if e := c.post(base+"/E1/handover", map[string]any{"to": "erin", "at": "yesterday"}).mustError(t, http.StatusBadRequest, "invalid_field"); e.Error.Field != "at" {
		t.Errorf("bad time: field %q", e.Error.Field)
	}
	c.post(base+"/E7/handover", map[string]any{"to": "erin"}).mustError(t, http.StatusBadRequest, "invalid_field")
	c.post(base+"/E1/handover", map[string]any{"to": "erin"}).must(t, http.StatusOK, nil)

	var list evidenceList
	c.get(base).must(t, http.StatusOK, &list)
	if len(list.Evidence) != 1 {
		t.Fatalf("evidence = %+v, want one item", list)
	}
	e := list.Evidence[0]
	if e.ID != "E1" || e.SHA256 != logSHA || e.Custodian != "erin" || len(e.Custody) != 2 {
		t.Fatalf("item = %+v, want E1 with its hash in lower case, held by erin after two hand-overs", e)
	}
	if h := e.Custody[0]; h.From != "carol" || h.To != "dan" || !h.At.Equal(handedAt) || h.RecordedAt.Equal(handedAt) {
		t.Errorf("first hand-over = %+v, want carol → dan at %v", h, handedAt)
	}
}

// TestEvidenceNeedToKnow: evidence of a confidential incident is not found
// for a reader outside it, and cannot be added by a responder outside it.
func TestEvidenceNeedToKnow(t *testing.T) {
	_, admin := authHub(t)
	outsider, _ := mint(t, admin, "outsider", "responder")
	body := declareBody("Ransomware on the file server")
	body["confidential"] = true
	secret := admin.declare(body)
	path := "/api/v1/incidents/" + secret.ID + "/evidence"
	admin.post(path, map[string]any{"name": "ransom note", "sha256": logSHA, "location": "case file", "custodian": "sec"}).must(t, http.StatusOK, nil)
	outsider.get(path).mustError(t, http.StatusNotFound, "not_found")
	outsider.get("/api/v1/incidents/"+secret.ID+"/milestones").mustError(t, http.StatusNotFound, "not_found")
	outsider.post(path, map[string]any{"name": "x", "sha256": logSHA[:63] + "0", "location": "l", "custodian": "c"}).mustError(t, http.StatusNotFound, "not_found")
	var list evidenceList
	admin.get(path).must(t, http.StatusOK, &list)
	if len(list.Evidence) != 1 {
		t.Errorf("the insider sees %d items, want 1", len(list.Evidence))
	}
}

// TestBackdatedNoteTimelineOrders: a note told after the fact carries its
// own time; the timeline lists it where it was recorded by default and
// where it happened with order=occurred. Times in the future or long
// before the incident are refused.
func TestBackdatedNoteTimelineOrders(t *testing.T) {
	_, c := startHub(t, hub.Config{})
	inc := c.declare(declareBody("Account takeover"))
	notes := "/api/v1/incidents/" + inc.ID + "/notes"
	loggedIn := inc.DeclaredAt.Add(-3 * time.Hour).UTC().Truncate(time.Millisecond)
	c.post(notes, map[string]any{"text": "forced the password reset"}).must(t, http.StatusOK, nil)
	var st Incident
	c.post(notes, map[string]any{"text": "the attacker logged in", "occurred_at": loggedIn.Format(time.RFC3339Nano)}).must(t, http.StatusOK, &st)
	for _, bad := range []string{time.Now().Add(time.Hour).Format(time.RFC3339), inc.DeclaredAt.AddDate(-2, 0, 0).Format(time.RFC3339), "02:13"} {
		if e := c.post(notes, map[string]any{"text": "x", "occurred_at": bad}).mustError(t, http.StatusBadRequest, "invalid_field"); e.Error.Field != "occurred_at" || !strings.Contains(e.Error.Message, "occurred_at") {
			t.Errorf("occurred_at %s: %+v", bad, e.Error)
		}
	}
	c.timeline(inc.ID, st.Version)
	order := func(q string) []string {
		var tl struct {
			Events []struct {
				Type       string     `json:"type"`
				OccurredAt *time.Time `json:"occurred_at"`
				Data       struct {
					Text string `json:"text"`
				} `json:"data"`
			} `json:"events"`
		}
		c.get("/api/v1/incidents/"+inc.ID+"/timeline"+q).must(t, http.StatusOK, &tl)
		var out []string
		for _, e := range tl.Events {
			s := e.Type[strings.LastIndex(e.Type, ".")+1:]
			if e.Data.Text != "" {
				s = e.Data.Text
			}
			if e.OccurredAt != nil && !e.OccurredAt.Equal(loggedIn) {
				t.Errorf("%s: occurred_at %v, want %v", s, e.OccurredAt, loggedIn)
			}
			out = append(out, s)
		}
		return out
	}
	if got := strings.Join(order(""), " | "); got != "declared | forced the password reset | the attacker logged in" {
		t.Errorf("recorded order: %s", got)
	}
	if got := strings.Join(order("?order=occurred"), " | "); got != "the attacker logged in | declared | forced the password reset" {
		t.Errorf("occurred order: %s", got)
	}
	c.get("/api/v1/incidents/"+inc.ID+"/timeline?order=random").mustError(t, http.StatusBadRequest, "invalid_query")
}

type milestonesAnswer struct {
	Milestones []struct {
		Name     string    `json:"name"`
		At       time.Time `json:"at"`
		Source   string    `json:"source"`
		EventID  string    `json:"event_id"`
		Corrects string    `json:"corrects"`
	} `json:"milestones"`
	History []json.RawMessage `json:"history"`
}

// TestMilestones: derived milestones appear as the incident moves; a
// recorded one wins, and its correction keeps the original in the history.
func TestMilestones(t *testing.T) {
	_, c := startHub(t, hub.Config{})
	inc := c.declare(declareBody("Checkout down"))
	base := "/api/v1/incidents/" + inc.CaseNumber
	c.post(base+"/commander", map[string]any{"user": "bob"}).must(t, http.StatusOK, nil)
	c.post(base+"/status", map[string]any{"status": "monitoring"}).must(t, http.StatusOK, nil)
	impact := inc.DeclaredAt.Add(-20 * time.Minute).UTC().Truncate(time.Second)
	c.post(base+"/milestones", map[string]any{"name": "impact_started", "occurred_at": impact.Add(5 * time.Minute).Format(time.RFC3339)}).must(t, http.StatusOK, nil)
	c.post(base+"/milestones", map[string]any{"name": "impact_started", "occurred_at": impact.Format(time.RFC3339), "reason": "the first 502 in the load balancer log"}).must(t, http.StatusOK, nil)
	if e := c.post(base+"/milestones", map[string]any{"name": "fixed", "occurred_at": impact.Format(time.RFC3339)}).mustError(t, http.StatusBadRequest, "invalid_field"); e.Error.Field != "name" {
		t.Errorf("unknown milestone: %+v", e.Error)
	}
	if e := c.post(base+"/milestones", map[string]any{"name": "mitigated"}).mustError(t, http.StatusBadRequest, "invalid_field"); e.Error.Field != "occurred_at" {
		t.Errorf("no time: %+v", e.Error)
	}
	var m milestonesAnswer
	c.get(base+"/milestones").must(t, http.StatusOK, &m)
	got := map[string]string{}
	var names []string
	for _, ms := range m.Milestones {
		got[ms.Name] = ms.Source
		names = append(names, ms.Name)
	}
	if strings.Join(names, ",") != "impact_started,detected,acknowledged,mitigated" {
		t.Fatalf("milestones %v", names)
	}
	if got["impact_started"] != "recorded" || got["detected"] != "derived" || got["mitigated"] != "derived" {
		t.Errorf("sources %v", got)
	}
	if first := m.Milestones[0]; !first.At.Equal(impact) || first.Corrects == "" {
		t.Errorf("impact_started = %+v, want the correction at %v", first, impact)
	}
	if len(m.History) != 2 {
		t.Errorf("history has %d records, want the original and its correction", len(m.History))
	}
}
