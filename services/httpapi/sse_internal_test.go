package httpapi

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/events"
)

func storedNote(t *testing.T, seq uint64) events.Stored {
	t.Helper()
	env, err := events.New("inc-1", &events.NoteAdded{Text: "n"}, events.Meta{Actor: "a"})
	if err != nil {
		t.Fatal(err)
	}
	return events.Stored{Seq: seq, Subject: "incidents.inc-1.note_added", Envelope: env}
}

// TestSlowSubscriberIsDropped: a subscriber that stops reading is dropped
// with a reason once liveBuffer events behind; the broadcast never waits
// for it and a subscriber that keeps reading receives every event.
func TestSlowSubscriberIsDropped(t *testing.T) {
	b := newBroadcaster(nil)
	kicked := false
	slow := &subscriber{ch: make(chan *frame, liveBuffer), kick: func() { kicked = true }}
	fast := &subscriber{ch: make(chan *frame, liveBuffer)}
	for _, s := range []*subscriber{slow, fast} {
		if _, ok := b.subscribe(s, 0); !ok {
			t.Fatal("subscribe refused")
		}
	}
	var got []uint64
	var wg sync.WaitGroup
	wg.Go(func() {
		for f := range fast.ch {
			got = append(got, f.seq)
		}
	})
	const n = 3 * liveBuffer
	for seq := uint64(1); seq <= n; seq++ {
		if err := b.publish(storedNote(t, seq)); err != nil {
			t.Fatal(err)
		}
		for len(fast.ch) > liveBuffer/2 { // the fast reader keeps up
			time.Sleep(time.Millisecond)
		}
	}
	b.closeAll("end of test")
	wg.Wait()
	if len(got) != n || got[0] != 1 || got[n-1] != n {
		t.Errorf("fast subscriber got %d events (%v…), want all %d in order", len(got), got[:min(3, len(got))], n)
	}
	queued := 0
	for range slow.ch { // closed when dropped
		queued++
	}
	if queued != liveBuffer || !strings.Contains(slow.dropped, "slow") || !kicked {
		t.Errorf("slow subscriber: %d queued, dropped %q, kicked %v; want %d, a reason, a kick", queued, slow.dropped, kicked, liveBuffer)
	}
	if b.subscribers() != 0 {
		t.Errorf("%d subscribers left", b.subscribers())
	}
}
