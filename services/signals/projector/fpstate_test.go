package projector

import (
	"context"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/events"
)

const fpYAML = incidentYAML + `
    - name: chatty
      when: 'signal.severity == "low"'
      rate_limit: {max: 1, window: 1h}
`

// fpEntry is a fingerprint's committed state; ok is false when none is.
func (r *rig) fpEntry(fingerprint string) (fpState, bool) {
	r.t.Helper()
	var fp fpState
	ok := r.state("fp."+natsjs.EffectKey("alertmanager", fingerprint), &fp)
	return fp, ok
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
	go func() { done <- r.p.Run(ctx) }()

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
	fp, ok := r.fpEntry("fp-0")
	must(t, ok && fp.Status == "firing" && fp.Seq == 1, "incident-routed fingerprint: %+v %v", fp, ok)
	_, ok = r.fpEntry("quiet")
	must(t, !ok, "a signal routed nowhere wrote its fingerprint's state")
	c, ok := r.fpEntry("chatty")
	must(t, ok && c.WindowCount == 1, "rate-limited fingerprint: %+v %v", c, ok)

	// The same status and start again, after the stream's Msg-Id window:
	// stored, but neither the group nor the fingerprint counts it.
	r.publishLate(at("firing", 0))
	r.waitHandled(4, 20*time.Second)
	fp, _ = r.fpEntry("fp-0")
	must(t, fp.Seq == 1 && fp.Occurrences == 1, "fingerprint state rewritten for a repeat: %+v", fp)
	must(t, r.group("group-0").Count == 1 && r.p.repeated.Load() == 1, "repeat counted: %+v", r.group("group-0"))

	// A new episode with the same status: the group counts it and the
	// fingerprint records its start; a rate-limited occurrence is written.
	r.publish([]events.Signal{at("firing", 1), chatty2})
	r.waitHandled(6, 20*time.Second)
	fp, _ = r.fpEntry("fp-0")
	must(t, fp.Seq == 5 && fp.Start.Equal(at("firing", 1).StartsAt), "new episode: %+v", fp)
	c, _ = r.fpEntry("chatty")
	must(t, c.WindowCount == 2 && c.Suppressed == 1 && r.p.limited.Load() == 1, "rate window: %+v", c)
	g := r.group("group-0")
	must(t, g.Count == 2 && g.Firing == 1, "group: %+v", g)

	// A new process (empty cache) reads the status it needs from the
	// bucket: a repeat does not count a second firing fingerprint, a
	// resolve ends it.
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	r.restart()
	r.run()
	r.publish([]events.Signal{at("firing", 2)})
	r.waitHandled(7, 20*time.Second)
	g = r.group("group-0")
	must(t, g.Count == 3 && g.Firing == 1, "group after restart: %+v", g)
	r.publish([]events.Signal{at("resolved", 2)})
	r.waitHandled(8, 20*time.Second)
	g = r.group("group-0")
	fp, _ = r.fpEntry("fp-0")
	must(t, g.Count == 4 && g.Firing == 0 && fp.Status == "resolved", "after the resolve: group %+v, fingerprint %+v", g, fp)
	// The resolved episode fires again (sent with its first start), then
	// a new episode while it fires: counted, the same firing fingerprint.
	r.publishLate(at("firing", 2))
	r.publish([]events.Signal{at("firing", 3)})
	r.waitHandled(10, 20*time.Second)
	g = r.group("group-0")
	must(t, g.Firing == 1 && g.Count == 6, "firing again: %+v", g)
}
