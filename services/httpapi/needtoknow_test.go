package httpapi_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/hikeshi/hikeshi/services/config"
	"github.com/hikeshi/hikeshi/services/hub"
)

const secretTitle = "Exfiltration from the billing export bucket"

// TestConfidentialNeedToKnow: a viewer and a responder outside a
// confidential incident see nothing of it through any read path (list,
// show, timeline, long poll, the live event stream whole or filtered);
// its declarer, its commander and security see everything.
func TestConfidentialNeedToKnow(t *testing.T) {
	_, admin := authHub(t)
	viewer, _ := mint(t, admin, "viewer", "viewer")
	responder, _ := mint(t, admin, "responder", "responder")
	security, _ := mint(t, admin, "security", "security")
	declarer, _ := mint(t, admin, "declarer", "responder")
	commander, ctok := mint(t, admin, "commander", "responder")
	everyone := map[string]*client{"viewer": viewer, "responder": responder, "security": security, "declarer": declarer, "commander": commander}
	streams := map[string]*stream{}
	for name, c := range everyone {
		streams[name] = openStream(t, c, "")
		if streams[name].status != http.StatusOK {
			t.Fatalf("%s: events %d", name, streams[name].status)
		}
	}

	body := declareBody(secretTitle)
	body["confidential"], body["service"], body["summary"] = true, "billing", "the export bucket was made public"
	secret := declarer.declare(body)
	var st Incident
	admin.post("/api/v1/incidents/"+secret.ID+"/commander", map[string]any{"user": "token:" + ctok.ID}).must(t, http.StatusOK, &st)
	declarer.post("/api/v1/incidents/"+secret.ID+"/notes", map[string]any{"text": "keys rotated"}).must(t, http.StatusOK, &st)
	// An open incident after the confidential one's events marks the
	// point by which every stream has had them (or left them out).
	marker := admin.declare(declareBody("marker"))
	admin.timeline(secret.ID, st.Version)

	for name, c := range everyone {
		insider := name != "viewer" && name != "responder"
		seen := streams[name].until(t, marker.ID)
		if mentions(seen, secret.ID) != insider {
			t.Errorf("%s: live stream shows the confidential incident: %v, want %v", name, mentions(seen, secret.ID), insider)
		}
		list := c.get("/api/v1/incidents").must(t, http.StatusOK, nil)
		for path, r := range map[string]response{
			"list":      list,
			"show":      c.get("/api/v1/incidents/" + secret.ID),
			"by case":   c.get("/api/v1/incidents/" + secret.CaseNumber),
			"timeline":  c.get("/api/v1/incidents/" + secret.ID + "/timeline"),
			"long poll": c.get("/api/v1/incidents/" + secret.ID + "/timeline?after=" + strconv.FormatUint(st.Version, 10) + "&wait=50ms"),
		} {
			leaked := strings.Contains(string(r.Body), secretTitle) || strings.Contains(string(r.Body), secret.ID)
			if path == "long poll" {
				leaked = r.Status != http.StatusNotFound
			}
			if leaked != insider {
				t.Errorf("%s: %s (%d) shows the incident: %v, want %v: %s", name, path, r.Status, leaked, insider, r.Body)
			}
			if !insider && path != "list" && r.Status != http.StatusNotFound {
				t.Errorf("%s: %s answered %d, want 404 as for an unknown incident", name, path, r.Status)
			}
		}
		if !insider {
			if s := openStream(t, c, "?incident="+secret.ID); s.status != http.StatusNotFound {
				t.Errorf("%s: the incident's own event stream answered %d, want 404", name, s.status)
			}
			if s := openStream(t, c, "?after=0&incident="+secret.CaseNumber); s.status != http.StatusNotFound {
				t.Errorf("%s: the incident's stream by case number answered %d, want 404", name, s.status)
			}
		}
	}
	// The declarer and the commander act on it; an outsider cannot even
	// learn whether their body would have been valid.
	commander.post("/api/v1/incidents/"+secret.ID+"/status", map[string]any{"status": "identified"}).must(t, http.StatusOK, nil)
	responder.post("/api/v1/incidents/"+secret.ID+"/notes", `{"bad json`).mustError(t, http.StatusNotFound, "not_found")
}

// TestCodenamesSetting: with auth.show_codenames, an outsider's list shows
// the confidential incident under its codename, and nothing else of it.
func TestCodenamesSetting(t *testing.T) {
	f, err := config.Parse("hikeshi.yaml", []byte("auth: {show_codenames: true}"))
	if err != nil {
		t.Fatal(err)
	}
	_, admin := startHub(t, hub.Config{Token: adminSecret, File: f})
	viewer, _ := mint(t, admin, "viewer", "viewer")
	body := declareBody(secretTitle)
	body["confidential"], body["service"], body["summary"] = true, "billing", "the export bucket was made public"
	secret := admin.declare(body)
	admin.timeline(secret.ID, secret.Version)
	var list struct {
		Incidents []map[string]any `json:"incidents"`
	}
	r := viewer.get("/api/v1/incidents").must(t, http.StatusOK, &list)
	if len(list.Incidents) != 1 || list.Incidents[0]["title"] != secret.Codename || list.Incidents[0]["case_number"] != secret.CaseNumber {
		t.Fatalf("list = %s: want the incident under its codename", r.Body)
	}
	for _, leak := range []string{secretTitle, "billing", "export bucket", "declared_by"} {
		if strings.Contains(string(r.Body), leak) {
			t.Errorf("list shows %q: %s", leak, r.Body)
		}
	}
	viewer.get("/api/v1/incidents/"+secret.ID).mustError(t, http.StatusNotFound, "not_found")
}
