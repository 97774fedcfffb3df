package natstest_test

import (
	"context"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/adapters/natsjs/natstest"
	"github.com/hikeshi/hikeshi/events"
)

// The cluster keeps taking appends with its stream leader stopped, and the
// node started again on its files catches up: what node-loss tests rely on.
func TestClusterSurvivesANodeAndTakesItBack(t *testing.T) {
	c := natstest.StartCluster(t)
	js := c.JS(c.Connect(-1, t.Name()))
	ctx := context.Background()
	if err := natsjs.EnsureTopology(ctx, js, natsjs.Topology{Replicas: natstest.ClusterSize}); err != nil {
		t.Fatal(err)
	}
	store, err := natsjs.NewStore(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	id := events.NewID()
	appendNote := func(last uint64) uint64 {
		t.Helper()
		env, _ := events.New(id, &events.NoteAdded{Text: "n"}, events.Meta{})
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			seq, _, err := store.Append(ctx, env, last)
			if err == nil {
				return seq
			}
			if time.Now().After(deadline) {
				t.Fatalf("append after seq %d: %v", last, err)
			}
		}
	}
	decl, _ := events.New(id, &events.Declared{Title: "t", Service: "s", Severity: events.SEV3, DeclaredBy: "a", CaseNumber: "INC-1"}, events.Meta{})
	last, _, err := store.Append(ctx, decl, 0)
	if err != nil {
		t.Fatal(err)
	}
	leader := c.WaitStreamLeader(events.IncidentStream)
	c.Stop(leader)
	if c.Server(leader) != nil {
		t.Fatal("a stopped node still has a server")
	}
	if now := c.WaitStreamLeader(events.IncidentStream); now == leader {
		t.Fatalf("node %d still leads after it stopped", now)
	}
	last = appendNote(last)

	c.Start(leader)
	c.WaitReady()
	c.Lead(leader, events.IncidentStream)
	if got := c.Node(c.Server(leader).Name()); got != leader {
		t.Fatalf("node named %s is %d, want %d", c.Server(leader).Name(), got, leader)
	}
	appendNote(last)
}
