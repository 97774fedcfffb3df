package signals

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/events"
	"github.com/nats-io/nats.go/jetstream"
)

func (r *rig) group(key string) groupState {
	r.t.Helper()
	e, err := r.m.proj.st.kv.Get(context.Background(), "group."+natsjs.EffectKey(key))
	if err != nil {
		r.t.Fatal(err)
	}
	var g groupState
	if err := json.Unmarshal(e.Value(), &g); err != nil {
		r.t.Fatal(err)
	}
	return g
}

func (r *rig) publish(sigs []events.Signal) {
	r.t.Helper()
	if _, err := r.m.pub.Put(context.Background(), sigs); err != nil {
		r.t.Fatal(err)
	}
}

// Another writer changes a group's state behind the projector's cache:
// the batch's write conflicts, is discarded, and the batch is handled
// again from the bucket, counting each signal once.
func TestStateConflictRereads(t *testing.T) {
	setSecrets(t)
	r := newRig(t, rigOpts{yaml: incidentYAML})
	var first []events.Signal
	for i := range 10 {
		first = append(first, sigFor(i, 1, "firing"))
	}
	r.publish(first)
	r.run()
	r.waitHandled(10, 20*time.Second)
	// The other writer stores the same state at a new revision, with one
	// more count to tell its write from the projector's.
	g := r.group("group-0")
	must(t, g.Count == 10 && g.Firing == 10, "group after 10: %+v", g)
	g.Count = 100
	b, _ := json.Marshal(g)
	if _, err := r.m.proj.st.kv.Put(context.Background(), "group."+natsjs.EffectKey("group-0"), b); err != nil {
		t.Fatal(err)
	}
	var more []events.Signal
	for i := 10; i < 15; i++ {
		more = append(more, sigFor(i, 1, "firing"))
	}
	r.publish(more)
	r.waitHandled(15, 20*time.Second)
	g = r.group("group-0")
	must(t, g.Count == 105 && g.Firing == 15 && g.Seq == 15, "group after the conflict: %+v, want the other writer's 100 + 5", g)
	must(t, len(r.incidents()) == 1, "incidents: %d", len(r.incidents()))
}

// A process that dies after writing part of a batch's state, before its
// ack: the next start takes the batch over at once (not after AckWait)
// and counts nothing twice.
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
	c, err := ensureConsumer(ctx, r.bus.JS, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	msgs, _, err := next(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	must(t, len(msgs) == n, "fetched %d of %d", len(msgs), n)
	if err := r.m.proj.batch(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	// Half the fingerprints' writes never happened: the crash came after
	// the groups were written.
	for i := 0; i < n; i += 2 {
		if err := r.m.proj.st.kv.Delete(ctx, "fp."+natsjs.EffectKey("alertmanager", sigs[i].Fingerprint)); err != nil {
			t.Fatal(err)
		}
	}
	before := r.incidents()
	// The next process: a fresh module (empty cache) on the same bus.
	cfg, sec, err := Load(r.env.Config)
	if err != nil {
		t.Fatal(err)
	}
	if r.m, err = newModule(cfg, sec, r.env, deps{}); err != nil {
		t.Fatal(err)
	}
	r.run()
	r.waitHandled(n, 20*time.Second) // well inside the 5-minute AckWait
	for k := range groups {
		g := r.group("group-" + string(rune('0'+k)))
		must(t, g.Count == n/groups && g.Firing == n/groups, "group %d: %+v", k, g)
	}
	var fp fpState
	if _, err := r.m.proj.st.get(ctx, "fp."+natsjs.EffectKey("alertmanager", sigs[0].Fingerprint), &fp); err != nil {
		t.Fatal(err)
	}
	must(t, fp.Occurrences == 1 && fp.Status == "firing" && fp.Seq == 1, "fingerprint written on redelivery: %+v", fp)
	after := r.incidents()
	must(t, len(after) == groups, "incidents: %d", len(after))
	for id, evs := range after {
		must(t, len(evs) == len(before[id]), "incident %s: %v after redelivery, %v before", id, evs, before[id])
	}
}

// The one-pass decoding reads what the generic path reads, and leaves
// anything else to it.
func TestDecodeSignalMatchesGeneric(t *testing.T) {
	s := sigFor(7, 3, "resolved")
	s.Labels = map[string]string{"instance": "node-7"}
	s.Links = []events.SignalLink{{Title: "graph", URL: "https://grafana.example.test/d/1"}}
	key := events.SignalKey(s.Source, s.Fingerprint, s.Status, s.StartsAt)
	b, err := events.AppendSignal(nil, &s, key, time.Unix(1750000100, 0))
	if err != nil {
		t.Fatal(err)
	}
	e, sig, err := decodeSignal("signals.alertmanager."+key, 9, b)
	if err != nil {
		t.Fatal(err)
	}
	g, err := natsjs.DecodeRaw("signals.alertmanager."+key, 9, b)
	if err != nil {
		t.Fatal(err)
	}
	d, err := g.Decode()
	if err != nil {
		t.Fatal(err)
	}
	g.Data = nil
	must(t, reflect.DeepEqual(e, g), "envelope %+v, generic %+v", e, g)
	must(t, reflect.DeepEqual(sig, d.(*events.Signal)), "signal %+v, generic %+v", sig, d)
	note, err := events.New("inc-1", &events.NoteAdded{Text: "x"}, events.Meta{Actor: "a"})
	if err != nil {
		t.Fatal(err)
	}
	nb, _ := note.Marshal()
	for _, bad := range [][]byte{nb, []byte(`{"specversion":"1.0"}`), b[:len(b)-1]} {
		_, _, err := decodeSignal("signals.x.y", 1, bad)
		must(t, errors.Is(err, events.ErrMalformed), "%s: %v", bad, err)
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
