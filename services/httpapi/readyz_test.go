package httpapi_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/hikeshi/hikeshi/services/httpapi"
)

// A process whose part waits for a lease held elsewhere is a healthy
// standby: /readyz stays 200 and names what it waits for.
func TestReadyzNamesStandbyParts(t *testing.T) {
	waiting := map[string]string{}
	srv := httptest.NewServer(httpapi.New(httpapi.Deps{Standby: func() map[string]string { return waiting }}))
	defer srv.Close()
	get := func() (int, map[string]any) {
		resp, err := http.Get(srv.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, body
	}
	if status, body := get(); status != http.StatusOK || body["standby"] != nil {
		t.Fatalf("nothing waiting: %d %v", status, body)
	}
	waiting["signals projector"] = "waiting for the lease held by hub-b pid 4711, data dir /var/lib/hikeshi"
	status, body := get()
	standby, _ := body["standby"].(map[string]any)
	if status != http.StatusOK || body["status"] != "ready" || standby["signals projector"] != waiting["signals projector"] {
		t.Fatalf("standby: %d %v", status, body)
	}
}
