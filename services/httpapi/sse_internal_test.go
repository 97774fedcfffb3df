package httpapi

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/access"
)

// woken gives s a wake that signals the channel returned, for tests that
// read the ring themselves.
func woken(s *subscriber) <-chan struct{} {
	ch := make(chan struct{}, 1)
	s.wake = func() {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	return ch
}

func storedNote(t *testing.T, seq uint64) events.Stored {
	t.Helper()
	env, err := events.New("inc-1", &events.NoteAdded{Text: "n"}, events.Meta{Actor: "a"})
	if err != nil {
		t.Fatal(err)
	}
	return events.Stored{Seq: seq, Subject: "incidents.inc-1.note_added", Envelope: env}
}

// TestSlowSubscriberIsDropped: a subscriber that stops reading is dropped
// with a reason once far behind; the broadcast never waits for it and a
// subscriber that keeps reading receives every event.
func TestSlowSubscriberIsDropped(t *testing.T) {
	b := newBroadcaster(nil)
	kicked := false
	slow := &subscriber{kick: func() { kicked = true }}
	fast := &subscriber{}
	wake := woken(fast)
	for _, s := range []*subscriber{slow, fast} {
		if _, ok := b.subscribe(s, 0); !ok {
			t.Fatal("subscribe refused")
		}
	}
	var got []uint64
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			frames, reason := b.read(fast, nil)
			for _, f := range frames {
				got = append(got, f.seq)
			}
			if reason != "" {
				return
			}
			if b.park(fast) {
				<-wake
			}
		}
	})
	const n = 3 * liveRing
	for seq := uint64(1); seq <= n; seq++ {
		if err := b.publish(storedNote(t, seq)); err != nil {
			t.Fatal(err)
		}
		for behind(b, fast) > liveRing/2 { // the fast reader keeps up
			time.Sleep(time.Millisecond)
		}
	}
	b.closeAll("end of test", 0)
	wg.Wait()
	if len(got) != n || got[0] != 1 || got[n-1] != n {
		t.Errorf("fast subscriber got %d events, want all %d in order", len(got), n)
	}
	if frames, reason := b.read(slow, nil); len(frames) != 0 || !strings.Contains(reason, "slow") || !kicked {
		t.Errorf("slow subscriber: %d frames, dropped %q, kicked %v; want none, a reason and a kick", len(frames), reason, kicked)
	}
	if b.subscribers() != 0 {
		t.Errorf("%d subscribers left", b.subscribers())
	}
}

func behind(b *broadcaster, s *subscriber) uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.head - s.next
}

// TestQuietIncidentClientIsKept: a client following one incident is not
// woken by other incidents' events, nor dropped for not reading them.
func TestQuietIncidentClientIsKept(t *testing.T) {
	b := newBroadcaster(nil)
	quiet := &subscriber{incident: "quiet"}
	wake := woken(quiet)
	if _, ok := b.subscribe(quiet, 0); !ok {
		t.Fatal("subscribe refused")
	}
	frames, reason := b.read(quiet, nil)
	if len(frames) != 0 || reason != "" || !b.park(quiet) {
		t.Fatalf("read %d frames, reason %q, or not parked", len(frames), reason)
	}
	for seq := uint64(1); seq <= 2*liveRing; seq++ {
		if err := b.publish(storedNote(t, seq)); err != nil { // incident inc-1
			t.Fatal(err)
		}
	}
	select {
	case <-wake:
		t.Fatal("woken by another incident's events")
	default:
	}
	if frames, reason := b.read(quiet, nil); len(frames) != 0 || reason != "" {
		t.Errorf("quiet client: %d frames, dropped %q; want none and kept", len(frames), reason)
	}
}

// TestParkedClientsLeaveNothingBehind: clients that followed many quiet
// incidents, or every incident, parked and left leave nothing behind.
func TestParkedClientsLeaveNothingBehind(t *testing.T) {
	b := newBroadcaster(nil)
	for i := range 100 {
		s := &subscriber{incident: "quiet-" + strconv.Itoa(i%51)}
		if i%2 == 0 {
			s.incident = "" // every incident
		}
		woken(s)
		if _, ok := b.subscribe(s, 0); !ok {
			t.Fatal("subscribe refused")
		}
		b.read(s, nil)
		if !b.park(s) {
			t.Fatal("not parked with nothing to read")
		}
		b.unsubscribe(s)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.parked) != 0 || len(b.byIncident) != 0 || len(b.subs) != 0 || b.firehose != 0 {
		t.Errorf("after every client left: %d parked, %d incidents, %d clients, %d of every incident", len(b.parked), len(b.byIncident), len(b.subs), b.firehose)
	}
}

// TestParkedClientIsWokenOnce: a parked client is woken by the next event
// it follows or by its drop, once, and not by other incidents' events;
// a client with something left to read is not parked.
func TestParkedClientIsWokenOnce(t *testing.T) {
	b := newBroadcaster(nil)
	var wakes [2]int
	one := &subscriber{incident: "inc-1", wake: func() { wakes[0]++ }}
	all := &subscriber{wake: func() { wakes[1]++ }}
	for _, s := range []*subscriber{one, all} {
		if _, ok := b.subscribe(s, 0); !ok || !b.park(s) {
			t.Fatal("subscribe refused or not parked")
		}
	}
	other, err := events.New("inc-2", &events.NoteAdded{Text: "n"}, events.Meta{Actor: "a"})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.publish(events.Stored{Seq: 1, Subject: "incidents.inc-2.note_added", Envelope: other}); err != nil {
		t.Fatal(err)
	}
	if wakes != [2]int{0, 1} {
		t.Fatalf("after another incident's event: woken %v, want [0 1]", wakes)
	}
	for seq := uint64(2); seq <= 4; seq++ {
		if err := b.publish(storedNote(t, seq)); err != nil {
			t.Fatal(err)
		}
	}
	if wakes != [2]int{1, 1} {
		t.Fatalf("after three events of its incident: woken %v, want [1 1] (once each until they read)", wakes)
	}
	if b.park(one) {
		t.Fatal("parked with three events unread")
	}
	if frames, _ := b.read(one, nil); len(frames) != 3 || !b.park(one) {
		t.Fatalf("read %d frames, want 3, then parked", len(frames))
	}
	b.closeAll("stopping", 0)
	if wakes != [2]int{2, 2} {
		t.Errorf("after the drop: woken %v, want [2 2]", wakes)
	}
}

// TestCatchUpDoesNotRewindNeedToKnow: events read to catch a client up
// are history; an old commander assignment among them must not make the
// live stream follow the old commander instead of the current one.
func TestCatchUpDoesNotRewindNeedToKnow(t *testing.T) {
	const id = "inc-1"
	ev := func(seq uint64, d events.Data) events.Stored {
		env, err := events.New(id, d, events.Meta{Actor: "a"})
		if err != nil {
			t.Fatal(err)
		}
		name, _ := events.SubjectName(env.Type)
		return events.Stored{Seq: seq, Subject: "incidents." + id + "." + name, Envelope: env}
	}
	b := newBroadcaster(nil)
	declared := ev(1, &events.Declared{Title: "t", Service: "s", Severity: events.SEV1, DeclaredBy: "x", Confidential: true, Codename: "c"})
	toFirst := ev(2, &events.CommanderAssigned{User: "first"})
	toSecond := ev(3, &events.CommanderAssigned{User: "second"})
	for _, e := range []events.Stored{declared, toFirst, toSecond} {
		if err := b.publish(e); err != nil {
			t.Fatal(err)
		}
	}
	// A client resuming after seq 1 reads the first assignment again.
	if _, err := b.frame(t.Context(), toFirst, false); err != nil {
		t.Fatal(err)
	}
	note, err := b.frame(t.Context(), ev(4, &events.NoteAdded{Text: "n"}), true)
	if err != nil {
		t.Fatal(err)
	}
	second := &subscriber{who: &access.Identity{ID: "second", Kind: access.Local, Role: access.Responder}}
	first := &subscriber{who: &access.Identity{ID: "first", Kind: access.Local, Role: access.Responder}}
	if !second.sees(note) || first.sees(note) {
		t.Fatalf("after a catch-up, the current commander sees the note: %v, the former one: %v", second.sees(note), first.sees(note))
	}
}

// TestUnfollowedEventsAreNotLookedUp: an event of an incident no client
// follows costs no need-to-know lookup (which reads the incident), yet a
// commander change among such events still counts once a client follows.
func TestUnfollowedEventsAreNotLookedUp(t *testing.T) {
	ev := func(id string, seq uint64, d events.Data) events.Stored {
		env, err := events.New(id, d, events.Meta{Actor: "a"})
		if err != nil {
			t.Fatal(err)
		}
		name, _ := events.SubjectName(env.Type)
		return events.Stored{Seq: seq, Subject: "incidents." + id + "." + name, Envelope: env}
	}
	b := newBroadcaster(nil)
	var looked []string
	b.lookup = func(_ context.Context, id string) (*access.Incident, error) {
		looked = append(looked, id)
		return &access.Incident{DeclaredBy: "x"}, nil
	}
	follower := &subscriber{incident: "followed", who: &access.Identity{ID: "second", Kind: access.Local, Role: access.Responder}}
	if _, ok := b.subscribe(follower, 0); !ok {
		t.Fatal("subscribe refused")
	}
	seq := uint64(0)
	publish := func(e events.Stored) {
		t.Helper()
		if err := b.publish(e); err != nil {
			t.Fatal(err)
		}
	}
	for range 10 {
		seq++
		publish(ev("other", seq, &events.NoteAdded{Text: "n"}))
	}
	seq++
	publish(ev("quiet", seq, &events.Declared{Title: "t", Service: "s", Severity: events.SEV1, DeclaredBy: "x", Confidential: true, Codename: "c"}))
	seq++
	publish(ev("quiet", seq, &events.CommanderAssigned{User: "second"}))
	if len(looked) != 0 {
		t.Errorf("need-to-know looked up for incidents no client follows: %v", looked)
	}
	seq++
	publish(ev("followed", seq, &events.NoteAdded{Text: "n"}))
	if len(looked) != 1 || looked[0] != "followed" {
		t.Errorf("looked up %v, want the followed incident once", looked)
	}
	frames, _ := b.read(follower, nil)
	if len(frames) != 1 || frames[0].incident != "followed" {
		t.Fatalf("follower read %d frames, want its incident's one", len(frames))
	}
	// The quiet incident's commander change was tracked without a client.
	note, err := b.frame(t.Context(), ev("quiet", seq+1, &events.NoteAdded{Text: "n"}), true)
	if err != nil {
		t.Fatal(err)
	}
	if !follower.sees(note) || len(looked) != 1 {
		t.Errorf("the new commander sees the quiet incident's note: %v (lookups %v), want true without a lookup", follower.sees(note), looked)
	}
}
