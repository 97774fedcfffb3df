package hub_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/services/hub"
)

// Split mode: an external NATS server, one process running only the API and
// another only the timeline projector, on the same data dir. The API takes
// commands and serves the timeline the other process projects.
func TestSplitModeAPIAndTimelineInSeparateHubs(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ns, err := natsjs.StartEmbedded(natsjs.EmbeddedConfig{StoreDir: t.TempDir(), Listen: addr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	url := "nats://" + addr
	dir := t.TempDir()

	ctx, cancel := context.WithCancel(context.Background())
	var done []chan error
	t.Cleanup(func() {
		cancel()
		for _, d := range done {
			<-d
		}
	})
	start := func(targets ...string) *hub.Hub {
		h, err := hub.Start(ctx, hub.Config{DataDir: dir, Listen: "127.0.0.1:0", NATSURL: url, Targets: targets})
		if err != nil {
			t.Fatalf("start %v: %v", targets, err)
		}
		d := make(chan error, 1)
		go func() { d <- h.Run(ctx) }()
		done = append(done, d)
		return h
	}
	api := start(hub.TargetAPI)
	start(hub.TargetTimeline)
	if _, err := hub.Start(ctx, hub.Config{DataDir: dir, Listen: "127.0.0.1:0", NATSURL: url, Targets: []string{hub.TargetTimeline}}); err == nil {
		t.Fatal("a second timeline writer on the same data dir was allowed")
	}

	base := "http://" + api.Addr()
	body, _ := json.Marshal(map[string]string{"title": "split", "service": "payments", "severity": "SEV3"})
	resp, err := http.Post(base+"/api/v1/incidents", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var inc struct {
		ID      string `json:"id"`
		Version uint64 `json:"version"`
	}
	json.NewDecoder(resp.Body).Decode(&inc)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || inc.ID == "" {
		t.Fatalf("declare: %d %+v", resp.StatusCode, inc)
	}
	// The api-only hub has no projector: the events come from the other.
	resp, err = http.Get(fmt.Sprintf("%s/api/v1/incidents/%s/timeline?after=0&wait=%s", base, inc.ID, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tl struct {
		Events []struct {
			Seq  uint64 `json:"seq"`
			Type string `json:"type"`
		} `json:"events"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tl); err != nil {
		t.Fatal(err)
	}
	if len(tl.Events) != 1 || tl.Events[0].Seq != inc.Version {
		t.Fatalf("timeline through the api-only hub: %+v, want the declared event at seq %d", tl.Events, inc.Version)
	}
}
