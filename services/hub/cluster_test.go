package hub_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/adapters/natsjs/natstest"
	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/hub"
	"github.com/hikeshi/hikeshi/services/module"
	"github.com/hikeshi/hikeshi/services/projection"
	"github.com/nats-io/nats.go/jetstream"
)

// counter is a side-effect module for the cluster tests: it "posts" each
// note to a remote once per event, through the effects ledger and a look-up
// first, as an integration posts a message once; it counts the posts.
type counter struct {
	mu       sync.Mutex
	notes    map[string]int // note text → posts
	done     map[string]bool
	attempts int // posts the ledger did not skip
}

func newCounter() *counter { return &counter{notes: map[string]int{}, done: map[string]bool{}} }

func (c *counter) module() module.Module {
	return module.Module{Name: "counter", New: func(_ context.Context, d module.Deps) (module.Parts, error) {
		return module.Parts{Projectors: []projection.Projector{{Durable: "counter", Handle: func(ctx context.Context, e events.Stored) error {
			if e.Type != events.TypeNoteAdded {
				return nil
			}
			var note events.NoteAdded
			if err := json.Unmarshal(e.Data, &note); err != nil {
				return err
			}
			_, err := natsjs.Once(ctx, d.Effects, natsjs.EffectKey("counter", e.ID), func(context.Context) (bool, error) {
				c.mu.Lock()
				defer c.mu.Unlock()
				c.attempts++
				if !c.done[e.ID] { // the remote's look-up, for a ledger write lost
					c.done[e.ID] = true
					c.notes[note.Text]++
				}
				return true, nil
			})
			return err
		}}}}, nil
	}}
}

func (c *counter) count(text string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.notes[text]
}

// trickle adds notes through the hub's API, one every few milliseconds,
// round the incidents, until stopped; it keeps the notes the hub
// acknowledged and when.
type trickle struct {
	mu    sync.Mutex
	acked map[string]time.Time // note text → acknowledged at
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once
}

func startTrickle(hubs []*hub.Hub, ids []string) *trickle {
	tr := &trickle{acked: map[string]time.Time{}, stop: make(chan struct{}), done: make(chan struct{})}
	client := &http.Client{Timeout: 15 * time.Second}
	go func() {
		defer close(tr.done)
		for i := 0; ; i++ {
			select {
			case <-tr.stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			text := fmt.Sprintf("trickle %d", i)
			body, _ := json.Marshal(map[string]string{"text": text})
			h := hubs[i%len(hubs)]
			resp, err := client.Post("http://"+h.Addr()+"/api/v1/incidents/"+ids[i%len(ids)]+"/notes", "application/json", bytes.NewReader(body))
			if err != nil {
				continue // a timeout: not acknowledged
			}
			resp.Body.Close()
			if resp.StatusCode/100 == 2 {
				tr.mu.Lock()
				tr.acked[text] = time.Now()
				tr.mu.Unlock()
			}
		}
	}()
	return tr
}

func (tr *trickle) Stop() {
	tr.once.Do(func() { close(tr.stop) })
	<-tr.done
}

// ackedSince is how many notes were acknowledged after t.
func (tr *trickle) ackedSince(t time.Time) int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	n := 0
	for _, at := range tr.acked {
		if at.After(t) {
			n++
		}
	}
	return n
}

func (tr *trickle) texts() []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var out []string
	for text := range tr.acked {
		out = append(out, text)
	}
	return out
}

// consumerFloor is the last stream sequence the consumer has acknowledged,
// read after the stream's last sequence; 0s while the cluster does not
// answer.
func consumerFloor(js jetstream.JetStream, durable string) (floor, last uint64) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	s, err := js.Stream(ctx, events.IncidentStream)
	if err != nil {
		return 0, 0
	}
	c, err := js.PushConsumer(ctx, events.IncidentStream, durable)
	if err != nil {
		return 0, 0
	}
	return c.CachedInfo().AckFloor.Stream, s.CachedInfo().State.LastSeq
}

// Two hub replicas on a cluster, under a steady trickle of appends through
// both, and a JetStream node is lost: the leader of the incident stream
// and of the projectors' consumers, the node replica a is connected to, or
// one node that is both. Every projector catches up within 10 s of the
// cluster electing a new leader while appends go on; in the end every
// acknowledged note is in both timelines once, and the side-effect
// projector the replicas share posted each once.
func TestProjectorsResumeAfterNodeLoss(t *testing.T) {
	for _, lose := range []string{"leader", "hub's node", "hub's node and leader"} {
		t.Run(lose, func(t *testing.T) {
			c := natstest.StartCluster(t)
			// The hub talks to node 0; node 1 or 0 leads.
			hubNode, leader, lost := 0, 1, 1
			switch lose {
			case "hub's node":
				lost = hubNode
			case "hub's node and leader":
				leader, lost = hubNode, hubNode
			}
			count := newCounter()
			a := runClusterHub(t, c, hubNode, "a", count)
			b := runClusterHub(t, c, 2, "b", count) // node 2 is never lost
			observer := c.JS(c.Connect(-1, "observer"))
			consumers := []string{hub.ReplicaDurable("a"), hub.ReplicaDurable("b"), "counter"}
			c.Lead(leader, events.IncidentStream, consumers...)

			var ids []string
			for i := range 3 {
				ids = append(ids, declareThrough(t, a, fmt.Sprintf("incident %d", i)))
			}
			tr := startTrickle([]*hub.Hub{a, b}, ids)
			defer tr.Stop()
			waitFor(t, 20*time.Second, "notes acknowledged before the loss", func() bool { return tr.ackedSince(time.Time{}) >= 20 })

			c.Stop(lost)
			c.WaitStreamLeader(events.IncidentStream)
			failedOver := time.Now()
			// Lag zero, once appends go on: the consumer has acknowledged
			// the last event the stream held just before.
			deadline := failedOver.Add(10 * time.Second)
			waitFor(t, 10*time.Second, "appends to go on after the loss", func() bool { return tr.ackedSince(failedOver) >= 5 })
			for _, durable := range consumers {
				for {
					floor, last := consumerFloor(observer, durable)
					if last > 0 && floor >= last {
						t.Logf("lost the %s (node %d): %s caught up (stream seq %d) %v after the new leader, %d notes acknowledged since", lose, lost, durable, last, time.Since(failedOver).Round(10*time.Millisecond), tr.ackedSince(failedOver))
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("lost the %s (node %d): %s's consumer at seq %d, stream at %d, 10 s after the new leader: the projector did not catch up", lose, lost, durable, floor, last)
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
			waitFor(t, 20*time.Second, "notes acknowledged after the loss", func() bool { return tr.ackedSince(failedOver) >= 20 })
			tr.Stop()

			texts := tr.texts()
			for name, h := range map[string]*hub.Hub{"a": a, "b": b} {
				waitFor(t, 30*time.Second, "every acknowledged note in replica "+name+"'s timeline and posted", func() bool {
					seen := map[string]int{}
					for _, id := range ids {
						for _, e := range timeline(t, h, id) {
							if e.Type == events.TypeNoteAdded {
								seen[e.Data.Text]++
							}
						}
					}
					for text, n := range seen {
						if n > 1 {
							t.Fatalf("note %q is %d times in replica %s's timeline", text, n, name)
						}
					}
					for _, text := range texts {
						if seen[text] != 1 || count.count(text) == 0 {
							return false
						}
					}
					return true
				})
			}
			for _, text := range texts {
				if n := count.count(text); n != 1 {
					t.Errorf("note %q: posted %d times", text, n)
				}
			}
			count.mu.Lock()
			t.Logf("%d notes acknowledged, %d posts the effects ledger did not skip", len(texts), count.attempts)
			count.mu.Unlock()
		})
	}
}

// runClusterHub runs hub replica name, with the counter module, connected
// to the cluster's node (which tells it of the others), with three
// replicas of everything it creates.
func runClusterHub(t *testing.T, c *natstest.Cluster, node int, name string, count *counter) *hub.Hub {
	t.Helper()
	return runHub(t, hub.Config{NATSURL: c.URL(node), Replicas: natstest.ClusterSize, NodeName: name,
		Targets: []string{hub.TargetAPI, hub.TargetTimeline, "counter"}, Modules: []module.Module{count.module()}})
}

// A hub on a cluster with --replicas 3 keeps three copies of every stream,
// bucket and durable consumer it creates.
func TestClusterHubReplicatesEverything(t *testing.T) {
	c := natstest.StartCluster(t)
	h := runClusterHub(t, c, 0, "a", newCounter())
	declareThrough(t, h, "replicated")
	js := c.JS(c.Connect(-1, "observer"))
	ctx := context.Background()
	// The checkpoint writer makes its stream once it runs.
	waitFor(t, 20*time.Second, "the checkpoint stream", func() bool {
		_, err := js.Stream(ctx, events.CheckpointStream)
		return err == nil
	})

	names := js.StreamNames(ctx)
	var streams []string
	for name := range names.Name() {
		streams = append(streams, name)
	}
	if err := names.Err(); err != nil {
		t.Fatal(err)
	}
	want := []string{events.IncidentStream, events.CheckpointStream, "KV_" + natsjs.EffectsBucket, "KV_" + natsjs.SnapshotsBucket,
		"KV_" + natsjs.EventIDsBucket, "KV_" + natsjs.IdempotencyBucket, "KV_" + natsjs.SignalsBucket, "OBJ_" + natsjs.ArchivesBucket}
	for _, name := range want {
		if !slices.Contains(streams, name) {
			t.Errorf("no stream %s among %v", name, streams)
		}
	}
	consumers := 0
	for _, name := range streams {
		s, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if info := s.CachedInfo(); info.Config.Replicas != natstest.ClusterSize || copies(info.Cluster) != natstest.ClusterSize {
			t.Errorf("stream %s: %d replicas configured, cluster %+v", name, info.Config.Replicas, info.Cluster)
		}
		list := s.ListConsumers(ctx)
		for ci := range list.Info() {
			if ci.Config.Durable == "" {
				continue // a reader's ephemeral consumer
			}
			consumers++
			if copies(ci.Cluster) != natstest.ClusterSize {
				t.Errorf("consumer %s on %s: cluster %+v, want %d replicas", ci.Name, name, ci.Cluster, natstest.ClusterSize)
			}
		}
		if err := list.Err(); err != nil {
			t.Fatal(err)
		}
	}
	if consumers < 2 {
		t.Errorf("%d durable consumers, want the timeline's and the counter's at least", consumers)
	}
}

// copies is how many nodes hold an asset: its leader, when elected, and
// the others.
func copies(c *jetstream.ClusterInfo) int {
	if c == nil {
		return 0
	}
	if c.Leader != "" {
		return len(c.Replicas) + 1
	}
	return len(c.Replicas)
}

// waitFor polls cond until it holds or d has passed.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A hub started while one node of its three is still down (nodes and
// hubs started together, a machine rebooting) waits for the cluster to
// place its streams instead of exiting with "no suitable peers".
func TestHubWaitsForTheClusterToForm(t *testing.T) {
	c := natstest.StartCluster(t)
	c.Stop(2)
	go func() {
		time.Sleep(3 * time.Second)
		c.Start(2)
	}()
	h := runClusterHub(t, c, 0, "a", newCounter())
	declareThrough(t, h, "after the cluster formed")
}
