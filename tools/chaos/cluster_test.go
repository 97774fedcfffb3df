//go:build chaos

package chaos

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// clients is how many clients write at once, each on its own incident.
const clients = 8

// startLoadOnTwoHubs starts a cluster, two hubs and the clients' load.
func startLoadOnTwoHubs(t *testing.T, ctx context.Context) (*cluster, []*hub, *load) {
	t.Helper()
	c := newCluster(t, nil, nil)
	t.Cleanup(c.dump)
	hubs := []*hub{c.startHub("a", nil), c.startHub("b", nil)}
	var incidents []string
	for i := range clients {
		incidents = append(incidents, declare(t, ctx, hubs[i%2], fmt.Sprintf("chaos %d", i)))
	}
	l := startLoad(t, ctx, hubs, incidents, false)
	t.Cleanup(l.stop)
	l.waitAcks(200, 60*time.Second)
	l.warmedUp()
	return c, hubs, l
}

// TestNodeLossUnderLoad SIGKILLs the stream's leader while clients write
// through both hubs, restarts it, then does the same to a follower. Every
// acknowledged note is on the stream exactly once and in both hubs'
// timelines, and after each loss both timelines resume within 10 s.
func TestNodeLossUnderLoad(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c, hubs, l := startLoadOnTwoHubs(t, ctx)

	leader, others := c.leader()
	for _, step := range []struct {
		what string
		n    *node
	}{{"the leader's loss", leader}, {"a follower's loss", others[0]}} {
		if step.n != leader {
			// The follower is one that is not leading now.
			_, others := c.leader()
			step.n = others[0]
		}
		t.Logf("SIGKILL %s (%s)", step.n.name, step.what)
		lostAt := time.Now()
		step.n.kill()
		timelineResumes(t, ctx, l, hubs, lostAt, step.what)
		l.waitAcks(200, 60*time.Second)
		c.restart(step.n)
		c.replicasCurrent(60 * time.Second)
		l.waitAcks(100, 60*time.Second)
	}
	l.stop()
	l.report()
	l.verify(ctx, c, hubs)
}

// TestRollingRestart restarts the three nodes one at a time, as an
// upgrade does, while clients write: no acknowledged write is lost.
func TestRollingRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c, hubs, l := startLoadOnTwoHubs(t, ctx)
	for _, n := range c.nodes {
		t.Logf("restarting %s", n.name)
		lostAt := time.Now()
		n.stop(t)
		timelineResumes(t, ctx, l, hubs, lostAt, n.name+"'s restart")
		c.restart(n)
		c.replicasCurrent(60 * time.Second)
		l.waitAcks(100, 60*time.Second)
	}
	l.stop()
	l.report()
	l.verify(ctx, c, hubs)
}
