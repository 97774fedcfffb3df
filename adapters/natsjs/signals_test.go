package natsjs_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
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

// A store that never answers a single signal is given up on after the
// publisher's Timeout, even when the caller's context has no deadline:
// the delivery is refused, never left hanging or reported stored.
func TestPublishGivesUpWithoutAnswer(t *testing.T) {
	bus := natstest.Start(t)
	pub := natsjs.NewSignalPublisher(bus.JS)
	pub.Timeout = 200 * time.Millisecond
	// A subscriber that takes the request and never answers it.
	sub, err := bus.Conn.Subscribe("silent.signals", func(*nats.Msg) {})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := bus.Conn.Flush(); err != nil {
		t.Fatal(err)
	}
	m := nats.NewMsg("silent.signals")
	m.Data = []byte(`{}`)
	start := time.Now()
	done := make(chan error, 1)
	go func() {
		_, err := natsjs.PublishSignal(pub, context.Background(), m)
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, natsjs.ErrUnavailable) {
			t.Fatalf("no answer: %v", err)
		}
		if took := time.Since(start); took < pub.Timeout {
			t.Fatalf("gave up after %s, before the timeout", took)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("still waiting for an answer 10 s after a 200 ms timeout")
	}
}

// Single signals stored at once from many requests each keep their own
// envelope: what the stream holds under a signal's Msg-Id is that signal.
func TestConcurrentSinglePutsStoreTheirOwnSignal(t *testing.T) {
	bus := natstest.Start(t)
	pub := natsjs.NewSignalPublisher(bus.JS)
	const writers, each = 8, 100
	start := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				sig := events.Signal{Source: "am", Kind: "alert", Fingerprint: fmt.Sprintf("fp-%d-%d", w, i), Status: events.SignalFiring,
					Title: strings.Repeat("t", 1+(w*each+i)%300), Severity: "high", StartsAt: start}
				if n, err := pub.Put(context.Background(), []events.Signal{sig}); err != nil || n != 1 {
					t.Errorf("put %s: %d, %v", sig.Fingerprint, n, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if n := stored(t, bus); n != writers*each {
		t.Fatalf("stream holds %d, want %d", n, writers*each)
	}
	s, err := bus.JS.Stream(context.Background(), events.SignalStream)
	if err != nil {
		t.Fatal(err)
	}
	for seq := uint64(1); seq <= writers*each; seq++ {
		m, err := s.GetMsg(context.Background(), seq)
		if err != nil {
			t.Fatal(err)
		}
		var env struct {
			ID   string `json:"id"`
			Data struct {
				Fingerprint string `json:"fingerprint"`
				Title       string `json:"title"`
			} `json:"data"`
		}
		if err := json.Unmarshal(m.Data, &env); err != nil {
			t.Fatalf("seq %d: %v: %s", seq, err, m.Data)
		}
		var w, i int
		if _, err := fmt.Sscanf(env.Data.Fingerprint, "fp-%d-%d", &w, &i); err != nil {
			t.Fatalf("seq %d: fingerprint %q", seq, env.Data.Fingerprint)
		}
		want := events.SignalKey("am", env.Data.Fingerprint, events.SignalFiring, start)
		if id := m.Header.Get(nats.MsgIdHdr); id != want || env.ID != want || len(env.Data.Title) != 1+(w*each+i)%300 {
			t.Fatalf("seq %d: Msg-Id %q, id %q, title of %d bytes: not the signal %s's", seq, id, env.ID, len(env.Data.Title), env.Data.Fingerprint)
		}
	}
}
