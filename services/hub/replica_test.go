package hub_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/hub"
	"github.com/hikeshi/hikeshi/services/integrationtest"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// listeningBus is an embedded NATS server that other processes reach at
// the URL returned, stopped when the test ends.
func listeningBus(t *testing.T) string {
	t.Helper()
	addr := freePort(t, "127.0.0.1")
	ns, err := natsjs.StartEmbedded(natsjs.EmbeddedConfig{StoreDir: t.TempDir(), Listen: addr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	return "nats://" + addr
}

// declareThrough declares an incident through the hub's API and returns
// its id.
func declareThrough(t testing.TB, h *hub.Hub, title string) string {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"title": title, "service": "payments", "severity": "SEV3"})
	resp, text := integrationtest.Post(t, "http://"+h.Addr()+"/api/v1/incidents", body, nil)
	var inc struct{ ID string }
	json.Unmarshal([]byte(text), &inc)
	if resp.StatusCode != http.StatusCreated || inc.ID == "" {
		t.Fatalf("declare through %s: %d %s", h.Addr(), resp.StatusCode, text)
	}
	return inc.ID
}

// noteThrough adds a note through the hub's API; it reports whether the
// hub acknowledged it.
func noteThrough(t testing.TB, h *hub.Hub, id, text string) bool {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"text": text})
	resp, _ := integrationtest.Post(t, "http://"+h.Addr()+"/api/v1/incidents/"+id+"/notes", body, nil)
	return resp.StatusCode/100 == 2
}

// entry is an event of a timeline, as the API serves it.
type entry struct {
	Seq  uint64
	ID   string
	Type string
	Data struct{ Text string }
}

// timeline is the incident's events in the hub's timeline, as its API
// serves them.
func timeline(t testing.TB, h *hub.Hub, id string) []entry {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://%s/api/v1/incidents/%s/timeline?after=0", h.Addr(), id))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil
	}
	var tl struct{ Events []entry }
	if err := json.NewDecoder(resp.Body).Decode(&tl); err != nil {
		t.Fatal(err)
	}
	return tl.Events
}

// timelineSeqs is the stream sequences of the incident's events in the
// hub's timeline.
func timelineSeqs(t testing.TB, h *hub.Hub, id string) []uint64 {
	t.Helper()
	var seqs []uint64
	for _, e := range timeline(t, h, id) {
		seqs = append(seqs, e.Seq)
	}
	return seqs
}

// storedSeqs is the stream sequences of every incident's events, by
// incident.
func storedSeqs(t testing.TB, js jetstream.JetStream) map[string][]uint64 {
	t.Helper()
	out := map[string][]uint64{}
	for _, e := range integrationtest.Stream(t, js, events.IncidentStream) {
		id, _ := events.IncidentID(e.Subject)
		out[id] = append(out[id], e.Seq)
	}
	return out
}

// timelineMissing says what the hub's timeline lacks of, or holds besides
// or twice, the events stored; "" when it holds each exactly once.
func timelineMissing(t testing.TB, h *hub.Hub, stored map[string][]uint64) string {
	t.Helper()
	for id, want := range stored {
		if got := timelineSeqs(t, h, id); !slices.Equal(got, want) {
			return fmt.Sprintf("incident %s: timeline has seqs %v, the stream %v", id, got, want)
		}
	}
	return ""
}

func busJS(t *testing.T, url string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// Two hub replicas on one bus, each with its own data dir: each keeps a
// whole timeline through a consumer of its own, and the second starting
// leaves the first's consumer where it was.
func TestReplicasEachKeepAWholeTimeline(t *testing.T) {
	url := listeningBus(t)
	js := busJS(t, url)
	a := runHub(t, hub.Config{NATSURL: url, NodeName: "a"})
	var ids []string
	for i := range 5 {
		ids = append(ids, declareThrough(t, a, fmt.Sprintf("before b %d", i)))
	}
	integrationtest.Eventually(t, "a's timeline to hold what a took", func() bool {
		return timelineMissing(t, a, storedSeqs(t, js)) == ""
	})
	ctx := context.Background()
	before, err := js.PushConsumer(ctx, events.IncidentStream, hub.ReplicaDurable("a"))
	if err != nil {
		t.Fatal(err)
	}

	b := runHub(t, hub.Config{NATSURL: url, NodeName: "b"})
	after, err := js.PushConsumer(ctx, events.IncidentStream, hub.ReplicaDurable("a"))
	if err != nil {
		t.Fatalf("a's consumer after b started: %v", err)
	}
	if !after.CachedInfo().Created.Equal(before.CachedInfo().Created) || after.CachedInfo().AckFloor.Stream < before.CachedInfo().AckFloor.Stream {
		t.Fatalf("b's start moved a's consumer: created %v then %v, ack floor %d then %d",
			before.CachedInfo().Created, after.CachedInfo().Created, before.CachedInfo().AckFloor.Stream, after.CachedInfo().AckFloor.Stream)
	}
	for i, id := range ids {
		through := []*hub.Hub{a, b}[i%2]
		if !noteThrough(t, through, id, fmt.Sprintf("note %d", i)) {
			t.Fatalf("note %d not acknowledged", i)
		}
		ids = append(ids, declareThrough(t, through, fmt.Sprintf("after b %d", i)))
	}

	stored := storedSeqs(t, js)
	if len(stored) != len(ids) {
		t.Fatalf("%d incidents stored, %d declared", len(stored), len(ids))
	}
	for name, h := range map[string]*hub.Hub{"a": a, "b": b} {
		var missing string
		deadline := time.Now().Add(15 * time.Second)
		for missing = timelineMissing(t, h, stored); missing != "" && time.Now().Before(deadline); missing = timelineMissing(t, h, stored) {
			time.Sleep(50 * time.Millisecond)
		}
		if missing != "" {
			t.Errorf("replica %s: %s", name, missing)
		}
	}
	for _, name := range []string{"a", "b"} {
		c, err := js.PushConsumer(ctx, events.IncidentStream, hub.ReplicaDurable(name))
		if err != nil {
			t.Fatalf("replica %s's consumer: %v", name, err)
		}
		if got := c.CachedInfo().Config.InactiveThreshold; got != hub.DefaultNodeRetireAfter {
			t.Errorf("replica %s's consumer is kept %v without a reader, want %v", name, got, hub.DefaultNodeRetireAfter)
		}
	}
	if _, err := js.PushConsumer(ctx, events.IncidentStream, hub.ReplicaDurable("")); err == nil {
		t.Error("named replicas made the single hub's consumer too")
	}
}

func TestNodeNameMustFitAConsumerName(t *testing.T) {
	for _, name := range []string{"a.b", "a b", "a*", "a>", "a/b", string(make([]byte, 65))} {
		cfg := hub.Config{NodeName: name, DataDir: t.TempDir()}
		cfg.Defaults()
		if err := cfg.Validate(); err == nil {
			t.Errorf("node name %q accepted", name)
		}
	}
	cfg := hub.Config{NodeName: "hub-2_eu", DataDir: t.TempDir()}
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		t.Errorf("node name hub-2_eu: %v", err)
	}
}
