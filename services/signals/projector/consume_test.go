package projector

import (
	"context"
	"errors"
	"fmt"
	"github.com/hikeshi/hikeshi/services/signals/ingest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/events"
	"github.com/nats-io/nats.go/jetstream"
)

func (r *rig) group(key string) groupState {
	r.t.Helper()
	var g groupState
	if !r.state("group."+natsjs.EffectKey(key), &g) {
		r.t.Fatalf("no state for group %s", key)
	}
	return g
}

func (r *rig) publish(sigs []events.Signal) {
	r.t.Helper()
	if _, err := r.pub.Put(context.Background(), sigs); err != nil {
		r.t.Fatal(err)
	}
}

// The state file is a view of the stream: lost, it is rebuilt from the
// signals kept, counting each once and declaring nothing twice.
func TestStateFileRebuilt(t *testing.T) {
	setSecrets(t)
	r := newRig(t, rigOpts{yaml: incidentYAML})
	var sigs []events.Signal
	for i := range 10 {
		sigs = append(sigs, sigFor(i, 2, "firing"))
	}
	r.publish(sigs)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.p.Run(ctx) }()
	r.waitHandled(10, 20*time.Second)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	before := r.incidents()
	must(t, len(before) == 2, "incidents: %d", len(before))
	for _, f := range []string{StateFile, StateFile + "-wal", StateFile + "-shm"} {
		if err := os.Remove(filepath.Join(r.env.DataDir, f)); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
	}
	r.restart()
	r.run()
	r.publish([]events.Signal{sigFor(10, 2, "firing")})
	r.waitHandled(11, 20*time.Second)
	g := r.group("group-0")
	must(t, g.Count == 6 && g.Firing == 6 && g.Seq == 11, "group-0 rebuilt: %+v", g)
	after := r.incidents()
	must(t, len(after) == 2, "incidents after the rebuild: %d", len(after))
	for id, evs := range after {
		must(t, len(evs) >= len(before[id]), "incident %s: %v after, %v before", id, evs, before[id])
	}
}

// A process that dies after handling part of a batch, before committing
// it, and one that dies after the commit, before its ack: the next start
// takes over at once (not after AckWait), counts nothing twice and
// declares nothing twice.
func TestBatchRedeliveredAfterCrash(t *testing.T) {
	setSecrets(t)
	r := newRig(t, rigOpts{yaml: incidentYAML})
	const n, groups = 40, 2
	var sigs []events.Signal
	for i := range n {
		sigs = append(sigs, sigFor(i, groups, "firing"))
	}
	r.publish(sigs)
	ctx := context.Background()
	if err := r.p.st.open(ctx, filepath.Join(r.env.DataDir, StateFile)); err != nil {
		t.Fatal(err)
	}
	c, err := ensureConsumer(ctx, r.bus.JS, r.env.Logger, 5*time.Minute, 0)
	if err != nil {
		t.Fatal(err)
	}
	msgs, _, err := next(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	must(t, len(msgs) == n, "fetched %d of %d", len(msgs), n)
	// The first half committed, never acked.
	if err := r.p.batch(ctx, msgs[:n/2]); err != nil {
		t.Fatal(err)
	}
	// The second half handled and its occurrences recorded, never committed.
	for _, m := range msgs[n/2:] {
		e, sig, err := ingest.DecodeSignal(m.Subject(), seq(m), m.Data())
		if err != nil {
			t.Fatal(err)
		}
		if err := r.p.handle(ctx, e, sig); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.p.records(ctx); err != nil {
		t.Fatal(err)
	}
	r.p.st.discard()
	if err := r.p.st.close(); err != nil {
		t.Fatal(err)
	}
	before := r.incidents()
	r.restart()
	r.run()
	r.waitHandled(n, 20*time.Second) // well inside the 5-minute AckWait
	for k := range groups {
		g := r.group("group-" + string(rune('0'+k)))
		must(t, g.Count == n/groups && g.Firing == n/groups, "group %d: %+v", k, g)
	}
	var fp fpState
	must(t, r.state("fp."+natsjs.EffectKey("alertmanager", sigs[0].Fingerprint), &fp), "fingerprint state missing")
	must(t, fp.Occurrences == 1 && fp.Status == "firing" && fp.Seq == 1, "fingerprint: %+v", fp)
	after := r.incidents()
	must(t, len(after) == groups, "incidents: %d", len(after))
	for id, evs := range after {
		must(t, len(evs) == len(before[id]), "incident %s: %v after redelivery, %v before", id, evs, before[id])
	}
}

// The filter of known keys never forgets one (a false "new" would skip
// a state's read) and rarely claims one it was not given.
func TestBloomKnowsEveryKey(t *testing.T) {
	b := newBloom()
	for i := range 100_000 {
		b.add(fmt.Sprintf("fp.alertmanager.%08x", i))
	}
	false1 := 0
	for i := range 100_000 {
		must(t, b.has(fmt.Sprintf("fp.alertmanager.%08x", i)), "key %d forgotten", i)
		if b.has(fmt.Sprintf("fp.grafana.%08x", i)) {
			false1++
		}
	}
	must(t, false1 < 1_000, "%d of 100,000 unknown keys claimed", false1)
}

// The push consumer of an earlier version is replaced by the pull
// consumer, from its ack floor.
func TestPushConsumerReplaced(t *testing.T) {
	setSecrets(t)
	r := newRig(t, rigOpts{yaml: incidentYAML})
	var sigs []events.Signal
	for i := range 5 {
		sigs = append(sigs, sigFor(i, 1, "firing"))
	}
	r.publish(sigs)
	ctx := context.Background()
	if _, err := r.bus.JS.CreatePushConsumer(ctx, events.SignalStream, jetstream.ConsumerConfig{
		Durable: Durable, DeliverSubject: "_hikeshi.deliver." + Durable, DeliverGroup: Durable,
		FilterSubject: events.SignalSubjectPrefix + ".>", AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 1,
	}); err != nil {
		t.Fatal(err)
	}
	r.run()
	r.waitHandled(5, 20*time.Second)
	c, err := r.bus.JS.Consumer(ctx, events.SignalStream, Durable)
	if err != nil {
		t.Fatal(err)
	}
	cfg := c.CachedInfo().Config
	must(t, cfg.DeliverSubject == "" && cfg.AckPolicy == jetstream.AckAllPolicy, "consumer: %+v", cfg)
	must(t, r.group("group-0").Count == 5, "group: %+v", r.group("group-0"))
}

// A consumer deleted under a running projector (an operator's mistake, a
// cluster that lost it) is made again after the committed signal, and the
// projector goes on: nothing waits for a restart, nothing is counted twice.
func TestConsumerDeletedWhileRunningIsMadeAgain(t *testing.T) {
	setSecrets(t)
	r := newRig(t, rigOpts{yaml: incidentYAML})
	r.run()
	var sigs []events.Signal
	for i := range 10 {
		sigs = append(sigs, sigFor(i, 2, "firing"))
	}
	r.publish(sigs[:5])
	r.waitHandled(5, 20*time.Second)
	if err := r.bus.JS.DeleteConsumer(context.Background(), events.SignalStream, Durable); err != nil {
		t.Fatal(err)
	}
	r.publish(sigs[5:])
	r.waitHandled(10, 15*time.Second)
	g := r.group("group-0")
	must(t, g.Count == 5 && g.Seq == 9, "group-0: %+v", g)
}
