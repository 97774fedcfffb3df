package natsjs_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/adapters/natsjs/natstest"
	"github.com/hikeshi/hikeshi/events"
	"github.com/nats-io/nats.go"
)

// JetStream's answer is read by hand on the single-signal path: a stored
// signal, a copy inside the window, and a refusal (here, the wrong
// expected stream) are told apart; a refusal is never reported stored.
func TestPublishReadsJetStreamAnswers(t *testing.T) {
	bus := natstest.Start(t)
	pub := natsjs.NewSignalPublisher(bus.JS)
	sig := events.Signal{Source: "am", Kind: "alert", Fingerprint: "fp-1", Status: events.SignalFiring, Title: "t",
		Severity: "high", StartsAt: time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)}
	key := events.SignalKey(sig.Source, sig.Fingerprint, sig.Status, sig.StartsAt)
	msg := func() *nats.Msg {
		m := nats.NewMsg(events.SignalSubject(sig.Source, sig.Kind))
		var err error
		if m.Data, err = events.AppendSignal(nil, &sig, key, time.Now()); err != nil {
			t.Fatal(err)
		}
		m.Header.Set(nats.MsgIdHdr, key)
		return m
	}
	ctx := context.Background()
	dup, err := natsjs.PublishSignal(pub, ctx, msg())
	if err != nil || dup {
		t.Fatalf("first: dup=%v err=%v", dup, err)
	}
	dup, err = natsjs.PublishSignal(pub, ctx, msg())
	if err != nil || !dup {
		t.Fatalf("copy: dup=%v err=%v", dup, err)
	}
	m := msg()
	m.Header.Set(nats.MsgIdHdr, key+"-other")
	m.Header.Set("Nats-Expected-Stream", "NOT-SIGNALS")
	_, err = natsjs.PublishSignal(pub, ctx, m)
	if !errors.Is(err, natsjs.ErrUnavailable) || !strings.Contains(err.Error(), "JetStream:") {
		t.Fatalf("refused: %v", err)
	}
	if n := stored(t, bus); n != 1 {
		t.Fatalf("stream holds %d", n)
	}
	// A request given up on drops its inbox: its answer, arriving late,
	// is not the next request's.
	gone, cancel := context.WithCancel(ctx)
	cancel()
	sig.Fingerprint = "late"
	key = events.SignalKey(sig.Source, sig.Fingerprint, sig.Status, sig.StartsAt)
	_, err = natsjs.PublishSignal(pub, gone, msg())
	if !errors.Is(err, natsjs.ErrUnavailable) {
		t.Fatalf("given up: %v", err)
	}
	sig.Fingerprint = "next"
	key = events.SignalKey(sig.Source, sig.Fingerprint, sig.Status, sig.StartsAt)
	for i, want := range []bool{false, true} { // stored, then a copy: answers in step
		dup, err = natsjs.PublishSignal(pub, ctx, msg())
		if err != nil || dup != want {
			t.Fatalf("next #%d: dup=%v err=%v", i+1, dup, err)
		}
	}
}

func stored(t *testing.T, bus *natstest.Bus) uint64 {
	t.Helper()
	s, err := bus.JS.Stream(context.Background(), events.SignalStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}
