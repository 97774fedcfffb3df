package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/adapters/postgres/pgtest"
)

// TestAPIReplicaReadsPostgres: two hubs with data dirs of their own share
// one PostgreSQL store. The first runs NATS and the timeline projector;
// the second serves the API only. What is appended through either is read
// from the second, including a long poll that waits for the first's
// projector.
func TestAPIReplicaReadsPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the hikeshi binary")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	store := pgtest.Database(t)
	natsAddr := freeAddr(t)
	a := startHub(t, t.TempDir(), "--store", store, "--nats-listen", natsAddr)
	defer a.stop()
	b := startHub(t, t.TempDir(), "--store", store, "--nats", "nats://"+natsAddr, "--targets", "api")
	defer b.stop()
	if !strings.Contains(b.output.String(), "timeline:    postgres://127.0.0.1:") {
		t.Errorf("the replica does not say where its timeline is:\n%s", b.output)
	}

	id := declareIncident(t, ctx, b.base)
	tl := waitTimeline(t, ctx, b, id)
	if len(tl.Events) != 1 {
		t.Fatalf("replica's timeline: %d events, want the declaration", len(tl.Events))
	}
	type result struct {
		tl  timelineView
		err error
	}
	polled := make(chan result, 1)
	go func() {
		var r result
		defer func() { polled <- r }()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/api/v1/incidents/%s/timeline?after=%d&wait=30s", b.base, id, tl.Version), nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			r.err = err
			return
		}
		defer resp.Body.Close()
		r.err = json.NewDecoder(resp.Body).Decode(&r.tl)
	}()
	time.Sleep(200 * time.Millisecond) // the poll is waiting
	if status, body, err := post(ctx, a.base, "/api/v1/incidents/"+id+"/notes", "", map[string]string{"text": "through the other hub"}); err != nil || status != http.StatusOK {
		t.Fatalf("note through the first hub: %d %s %v", status, body, err)
	}
	r := <-polled
	if r.err != nil {
		t.Fatal(r.err)
	}
	if len(r.tl.Events) != 1 || !strings.Contains(string(r.tl.Events[0].Data), "through the other hub") {
		t.Errorf("long poll on the replica answered %+v, want the note", r.tl)
	}
	// A replay of the shared store from a third data dir is refused while
	// a hub's timeline writes it.
	code, stdout, stderr := hikeshiRun(t, ctx, "replay", "timeline", "--data-dir", t.TempDir(), "--store", store, "--nats", "nats://"+natsAddr)
	if code != 1 || !strings.Contains(stderr, "timeline consumers timeline have a reader") {
		t.Errorf("replay of the shared store while a hub writes it: exit %d, stdout %q, stderr %q; want exit 1 naming the consumer read", code, stdout, stderr)
	}
}
