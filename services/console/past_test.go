package console_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/hikeshi/hikeshi/services/hub"
)

// The incident page's time slider shows the incident as it stood after any
// of its events: header and timeline up to it, no forms, no live updates.
func TestIncidentPageTimeSlider(t *testing.T) {
	base := startHub(t, hub.Config{})
	api(t, base, "POST", "/api/v1/incidents", map[string]any{"title": "Checkout down", "service": "payments", "severity": "SEV2"})
	api(t, base, "POST", "/api/v1/incidents/INC-1/severity", map[string]string{"severity": "SEV1", "reason": "all regions"})
	api(t, base, "POST", "/api/v1/incidents/INC-1/notes", map[string]string{"text": "rolling back the deploy"})
	b := newBrowser(t, base)
	eventually(t, "the note on the page", func() bool {
		return strings.Contains(b.get("/incidents/INC-1").Body, "rolling back the deploy")
	})
	now := b.get("/incidents/INC-1")
	if !strings.Contains(now.Body, `type="range" id="at" name="at" min="1" max="3" value="3"`) {
		t.Fatalf("the page has no time slider over its 3 events:\n%s", now.Body)
	}

	past := b.get("/incidents/INC-1?at=1")
	if past.Status != http.StatusOK || !strings.Contains(past.Body, "As it stood after event 1 of 3") || !strings.Contains(past.Body, `value="1"`) {
		t.Fatalf("at=1: %d\n%s", past.Status, past.Body)
	}
	for _, absent := range []string{"rolling back the deploy", "SEV2 → SEV1", "data-live=", `action="/incidents/INC-1/note"`} {
		if strings.Contains(past.Body, absent) {
			t.Errorf("at=1 shows %q", absent)
		}
	}
	if !strings.Contains(past.Body, "SEV2") {
		t.Error("at=1 does not show the severity as it was")
	}
	after2 := b.get("/incidents/INC-1?at=2")
	if !strings.Contains(after2.Body, "SEV2 → SEV1") || strings.Contains(after2.Body, "rolling back the deploy") {
		t.Errorf("at=2 is not the incident after its severity change:\n%s", after2.Body)
	}
	for _, bad := range []string{"0", "4", "x"} {
		if p := b.get("/incidents/INC-1?at=" + bad); p.Status != http.StatusBadRequest || !strings.Contains(p.Body, "from 1 to 3") {
			t.Errorf("at=%s: %d", bad, p.Status)
		}
	}
}
