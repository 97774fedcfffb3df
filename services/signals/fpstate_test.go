package signals

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/events"
	"github.com/nats-io/nats.go/jetstream"
)

const fpYAML = incidentYAML + `
    - name: chatty
      when: 'signal.severity == "low"'
      rate_limit: {max: 1, window: 1h}
`

// fpEntry is a fingerprint's stored state and its revision; ok is false
// when none is stored.
func (r *rig) fpEntry(fingerprint string) (fpState, uint64, bool) {
	r.t.Helper()
	e, err := r.m.proj.st.kv.Get(context.Background(), "fp."+natsjs.EffectKey("alertmanager", fingerprint))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return fpState{}, 0, false
	}
	if err != nil {
		r.t.Fatal(err)
	}
	var fp fpState
	if err := json.Unmarshal(e.Value(), &fp); err != nil {
		r.t.Fatal(err)
	}
	return fp, e.Revision(), true
}

// A fingerprint's state is written only where it is read: not for a
// signal routed nowhere, once per status change on the incident route,
// every occurrence under a rate limit. The group's firing count stays
// right across a restart that empties the cache.
func TestFingerprintStateOnlyWhereRead(t *testing.T) {
	setSecrets(t)
	r := newRig(t, rigOpts{yaml: fpYAML})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.m.proj.run(ctx) }()

	at := func(status string, minutes int) events.Signal {
		s := sigFor(0, 1, status)
		s.StartsAt = s.StartsAt.Add(time.Duration(minutes) * time.Minute)
		return s
	}
	quiet := sigFor(1, 1, "firing")
	quiet.Severity, quiet.Fingerprint = "info", "quiet"
	chatty := sigFor(2, 1, "firing")
	chatty.Severity, chatty.Fingerprint = "low", "chatty"
	chatty2 := chatty
	chatty2.StartsAt = chatty.StartsAt.Add(time.Minute)

	r.publish([]events.Signal{at("firing", 0), quiet, chatty})
	r.waitHandled(3, 20*time.Second)
	fp, rev, ok := r.fpEntry("fp-0")
	must(t, ok && fp.Status == "firing", "incident-routed fingerprint: %+v %v", fp, ok)
	_, _, ok = r.fpEntry("quiet")
	must(t, !ok, "a signal routed nowhere wrote its fingerprint's state")
	c, _, ok := r.fpEntry("chatty")
	must(t, ok && c.WindowCount == 1, "rate-limited fingerprint: %+v %v", c, ok)

	// The same status again: the group counts it, the fingerprint's state
	// is not written; a rate-limited occurrence is.
	r.publish([]events.Signal{at("firing", 1), chatty2})
	r.waitHandled(5, 20*time.Second)
	_, rev2, _ := r.fpEntry("fp-0")
	must(t, rev2 == rev, "fingerprint state rewritten for an unchanged status: revision %d, was %d", rev2, rev)
	c, _, _ = r.fpEntry("chatty")
	must(t, c.WindowCount == 2 && c.Suppressed == 1 && r.m.proj.limited.Load() == 1, "rate window: %+v", c)
	g := r.group("group-0")
	must(t, g.Count == 2 && g.Firing == 1, "group: %+v", g)

	// A new process (empty cache) reads the status it needs from the
	// bucket: a repeat does not count a second firing fingerprint, a
	// resolve ends it.
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	cfg, sec, err := Load(r.env.Config)
	if err != nil {
		t.Fatal(err)
	}
	if r.m, err = newModule(cfg, sec, r.env, deps{}); err != nil {
		t.Fatal(err)
	}
	r.run()
	r.publish([]events.Signal{at("firing", 2)})
	r.waitHandled(6, 20*time.Second)
	g = r.group("group-0")
	must(t, g.Count == 3 && g.Firing == 1, "group after restart: %+v", g)
	r.publish([]events.Signal{at("resolved", 2)})
	r.waitHandled(7, 20*time.Second)
	g = r.group("group-0")
	fp, _, _ = r.fpEntry("fp-0")
	must(t, g.Count == 4 && g.Firing == 0 && fp.Status == "resolved", "after the resolve: group %+v, fingerprint %+v", g, fp)
	r.publish([]events.Signal{at("firing", 3)})
	r.waitHandled(8, 20*time.Second)
	g = r.group("group-0")
	must(t, g.Firing == 1, "firing again: %+v", g)
}
