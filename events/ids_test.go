package events_test

import (
	"encoding/hex"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/events"
)

func TestValidID(t *testing.T) {
	valid := []string{
		events.NewID(),
		events.DeriveID("incident", "key-1"),
		"INC-42",
		"inc_1",
		"a",
		strings.Repeat("a", 64),
	}
	for _, s := range valid {
		if !events.ValidID(s) {
			t.Errorf("ValidID(%q) = false, want true", s)
		}
	}
	invalid := []string{
		"",
		strings.Repeat("a", 65),
		"a.b",  // a subject separator
		"a*",   // wildcards
		"a>",   //
		"a b",  // white space
		"a\tb", //
		"a/b",
		"café",
		"inc-1\n",
	}
	for _, s := range invalid {
		if events.ValidID(s) {
			t.Errorf("ValidID(%q) = true, want false", s)
		}
	}
}

// TestDeriveIDIsStable pins the derivation: changing it would give a
// retried request a new event id, and the bus would store it twice.
func TestDeriveIDIsStable(t *testing.T) {
	const incident = "0196a5ae-8e09-7745-9975-6a96c8c1d3fd"
	got := events.DeriveID("event", incident, "game-day-2025-05-declare")
	if want := "e312e2c8-b83d-8024-8253-e5d7d0171c62"; got != want {
		t.Errorf("DeriveID = %s, want %s", got, want)
	}
	if again := events.DeriveID("event", incident, "game-day-2025-05-declare"); again != got {
		t.Errorf("DeriveID is not deterministic: %s then %s", got, again)
	}
	if !uuidV8.MatchString(got) {
		t.Errorf("DeriveID = %s, want a UUIDv8", got)
	}
}

func TestDeriveIDSeparatesParts(t *testing.T) {
	seen := map[string][]string{}
	for _, parts := range [][]string{
		{"event", "inc-1", "key"},
		{"event", "inc-1", "key2"},
		{"event", "inc-2", "key"},
		{"incident", "inc-1", "key"},
		{"event", "inc-1key"},
		{"eventinc-1", "key"},
		{"event", "inc-1", "key", ""},
		{"event inc-1 key"},
		{},
	} {
		id := events.DeriveID(parts...)
		if !uuidV8.MatchString(id) {
			t.Errorf("DeriveID(%q) = %s, want a UUIDv8", parts, id)
		}
		if other, dup := seen[id]; dup {
			t.Errorf("DeriveID(%q) = DeriveID(%q) = %s", parts, other, id)
		}
		seen[id] = parts
	}
}

func TestNewIDFormatAndTime(t *testing.T) {
	before := time.Now().UnixMilli()
	id := events.NewID()
	after := time.Now().UnixMilli()
	if !uuidV7.MatchString(id) {
		t.Fatalf("NewID = %s, want a UUIDv7", id)
	}
	b, err := hex.DecodeString(strings.ReplaceAll(id, "-", "")[:12])
	if err != nil {
		t.Fatal(err)
	}
	var ms int64
	for _, c := range b {
		ms = ms<<8 | int64(c)
	}
	// More than 4096 ids in one millisecond borrow the next millisecond, so
	// the timestamp may run slightly ahead of the clock, never behind.
	if ms < before || ms > after+1000 {
		t.Errorf("NewID timestamp %d ms, want between %d and %d", ms, before, after)
	}
}

func TestNewIDIsStrictlyIncreasing(t *testing.T) {
	// Many ids per millisecond: ordering must not depend on the random bits.
	prev := events.NewID()
	for range 20000 {
		id := events.NewID()
		if id <= prev {
			t.Fatalf("NewID %s after %s: not increasing", id, prev)
		}
		prev = id
	}
	time.Sleep(2 * time.Millisecond)
	if id := events.NewID(); id <= prev {
		t.Fatalf("NewID %s after %s and a pause: not increasing", id, prev)
	}
}

func TestNewIDIsUniqueAcrossGoroutines(t *testing.T) {
	const workers, each = 8, 2000
	ids := make([][]string, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for range each {
				ids[w] = append(ids[w], events.NewID())
			}
		})
	}
	wg.Wait()
	seen := make(map[string]bool, workers*each)
	for _, list := range ids {
		for i, id := range list {
			if seen[id] {
				t.Fatalf("NewID returned %s twice", id)
			}
			seen[id] = true
			if i > 0 && id <= list[i-1] {
				t.Fatalf("NewID %s after %s in one goroutine: not increasing", id, list[i-1])
			}
		}
	}
}

// TestDerivedTellsKeyedIDs: the command side looks up only ids a retry can
// produce again.
func TestDerivedTellsKeyedIDs(t *testing.T) {
	if id := events.DeriveID("event", "inc-1", "key"); !events.Derived(id) {
		t.Errorf("Derived(%s) = false, want true", id)
	}
	for _, id := range []string{events.NewID(), "", "evt-01", "slack:Ev123"} {
		if events.Derived(id) {
			t.Errorf("Derived(%q) = true, want false", id)
		}
	}
}
