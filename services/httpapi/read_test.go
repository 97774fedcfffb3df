package httpapi_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/hub"
)

// A read of an incident while the timeline store holds every event comes
// from the store: it reads no message of the incident stream (which, for
// an incident not read lately, makes the server load the block holding its
// last event). Writes and reads through the API still agree.
func TestReadAtRestComesFromTheTimelineStore(t *testing.T) {
	t.Parallel()
	h, c := startHub(t, hub.Config{})
	var inc Incident
	c.post("/api/v1/incidents", map[string]any{"title": "Queue backlog", "service": "queue", "severity": "sev3"}).must(t, http.StatusCreated, &inc)
	path := "/api/v1/incidents/" + inc.ID
	var noted Incident
	c.post(path+"/notes", map[string]any{"text": "consumers restarted"}).must(t, http.StatusOK, &noted)

	observer, err := h.Bus().Dial("observer")
	if err != nil {
		t.Fatal(err)
	}
	defer observer.Close()
	read := func() error {
		gets, err := observer.SubscribeSync("$JS.API.STREAM.MSG.GET." + events.IncidentStream)
		if err != nil {
			return err
		}
		defer gets.Unsubscribe()
		if err := observer.Flush(); err != nil {
			return err
		}
		var got Incident
		c.get(path).must(t, http.StatusOK, &got)
		if err := observer.Flush(); err != nil { // the requests sent before the answer are in
			return err
		}
		if got.Version != noted.Version || got.Notes != noted.Notes {
			return fmt.Errorf("read version %d with %d notes, want %d with %d", got.Version, got.Notes, noted.Version, noted.Notes)
		}
		if n, _, err := gets.Pending(); err != nil || n != 0 {
			return fmt.Errorf("the read fetched %d messages of the incident stream (%v)", n, err)
		}
		return nil
	}
	// Once the store has caught up, every read comes from it.
	eventually(t, "a read of the incident from the timeline store", read)
	for i := range 5 {
		if err := read(); err != nil {
			t.Fatalf("read %d at rest: %v", i+2, err)
		}
	}
}
