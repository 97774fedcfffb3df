package projection_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/adapters/natsjs/natstest"
	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/projection"
)

// recorder is a projector's handler that records the sequences it was
// handed and fails as told.
type recorder struct {
	mu   sync.Mutex
	seen []uint64
	fail map[uint64]error
}

func (r *recorder) handle(_ context.Context, e events.Stored) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen = append(r.seen, e.Seq)
	return r.fail[e.Seq]
}

// take returns the sequences handled since the last take.
func (r *recorder) take() []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.seen
	r.seen = nil
	return s
}

// note appends a note to incident id, whose last event is at after.
func note(t *testing.T, bus *natstest.Bus, id string, after uint64) {
	t.Helper()
	env, err := events.New(id, &events.NoteAdded{Text: "late"}, events.Meta{})
	if err == nil {
		_, _, err = bus.Store.Append(t.Context(), env, after)
	}
	if err != nil {
		t.Fatal(err)
	}
}

func seqs(from, to uint64) []uint64 {
	var s []uint64
	for i := from; i <= to; i++ {
		s = append(s, i)
	}
	return s
}

// Replay hands the projector its events in order, places the consumer
// after the last so that a runner continues there, dead-letters what no
// retry can handle, and refuses to skip events or to share the consumer.
func TestReplayHandsEventsAgainAndPlacesTheConsumer(t *testing.T) {
	bus := natstest.Start(t)
	ctx := t.Context()
	id := events.NewID()
	appendNotes(t, bus, id, 4) // seqs 1..5
	rec := &recorder{fail: map[uint64]error{3: fmt.Errorf("%w: refused", projection.ErrPermanent)}}
	p := projection.Projector{Durable: "sidefx", Handle: rec.handle}
	cfg := projection.Config{Dial: bus.Dial, JS: bus.JS, Logger: slog.New(slog.DiscardHandler), AckWait: time.Minute}

	// No consumer yet: from the start, and the consumer is made after 5.
	st, err := projection.Replay(ctx, cfg, p, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := rec.take(); !slices.Equal(got, seqs(1, 5)) || st.Events != 5 || st.First != 1 || st.Last != 5 || st.DeadLettered != 1 {
		t.Fatalf("replay handled %v (%+v); want 1..5 with seq 3 dead-lettered", got, st)
	}
	dl, err := bus.JS.Stream(ctx, natsjs.DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	if m, err := dl.GetLastMsgForSubject(ctx, natsjs.DeadLetterPrefix+".sidefx"); err != nil || m.Header.Get("reason_poisoned") == "" {
		t.Fatalf("no dead letter for seq 3: %v", err)
	}

	// A runner continues after the replayed events.
	delete(rec.fail, 3)
	runCtx, stop := context.WithCancel(ctx)
	r, err := projection.New(runCtx, cfg, []projection.Projector{p})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.Run(runCtx) }()
	<-r.Running()
	note(t, bus, id, 5) // seq 6
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		rec.mu.Lock()
		n := len(rec.seen)
		rec.mu.Unlock()
		if n > 0 {
			break
		}
	}
	if _, err := projection.Replay(ctx, cfg, p, 0, nil); !errors.Is(err, projection.ErrConsumerInUse) {
		t.Errorf("replay while a runner consumes: %v, want ErrConsumerInUse", err)
	}
	stop()
	<-done
	if got := rec.take(); !slices.Equal(got, []uint64{6}) {
		t.Fatalf("the runner after the replay handled %v; want only 6", got)
	}

	// From the middle; a start past what the consumer handled is refused.
	note(t, bus, id, 6) // seq 7
	note(t, bus, id, 7) // seq 8
	if _, err := projection.Replay(ctx, cfg, p, 8, nil); err == nil || rec.take() != nil {
		t.Errorf("replay from 8 with the consumer at 6: %v; want refused, nothing handled", err)
	}
	if st, err := projection.Replay(ctx, cfg, p, 4, nil); err != nil || !slices.Equal(rec.take(), seqs(4, 8)) || st.Last != 8 {
		t.Errorf("replay from 4: %+v, %v; want 4..8", st, err)
	}

	// An event that keeps failing stops the replay; the consumer stays.
	rec.fail[5] = errors.New("remote down")
	if st, err := projection.Replay(ctx, cfg, p, 1, nil); err == nil || st.Last != 4 {
		t.Errorf("replay over a failing event: %+v, %v; want stopped after 4", st, err)
	}
	if got := rec.take(); !slices.Equal(got, append(seqs(1, 5), 5, 5, 5, 5, 5)) {
		t.Errorf("replay over a failing event handed %v; want 1..5, then 5 retried to six attempts", got)
	}
	c, err := bus.JS.PushConsumer(ctx, events.IncidentStream, "sidefx")
	if err != nil {
		t.Fatal(err)
	}
	if info := c.CachedInfo(); info.AckFloor.Stream != 8 || info.NumPending != 0 {
		t.Errorf("consumer after the failed replay at %d with %d pending; want left after 8", info.AckFloor.Stream, info.NumPending)
	}
}
