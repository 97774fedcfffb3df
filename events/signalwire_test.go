package events

import (
	"bytes"
	"testing"
	"time"
)

// AppendSignal must write exactly what New and Marshal write, including
// for text json escapes and a source the fast path cannot take.
func TestAppendSignalIsNewAndMarshal(t *testing.T) {
	at := time.Date(2025, 6, 1, 12, 0, 0, 123456789, time.FixedZone("JST", 9*3600))
	for _, s := range []Signal{
		{Source: "alertmanager", Kind: "alert", Fingerprint: "f1", Status: SignalFiring, Title: "Disk <full> & \"hot\"\u2028",
			Severity: "critical", Labels: map[string]string{"b": "2", "a": "1"}, StartsAt: at, GroupKey: "{}:{a=\"1\"}",
			Links: []SignalLink{{Title: "runbook", URL: "https://x.example/?a=1&b=2"}}},
		{Source: "bad\"source", Kind: "alert", Fingerprint: "f2", Status: SignalResolved, Title: "t", Severity: "info",
			StartsAt: at, EndsAt: at.Add(time.Hour), GroupKey: "g"},
	} {
		key := SignalKey(s.Source, s.Fingerprint, s.Status, s.StartsAt)
		e, err := New(key, &s, Meta{ID: key, Actor: s.Source, Time: at})
		if err != nil {
			t.Fatal(err)
		}
		want, err := e.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		got, err := AppendSignal([]byte("prefix"), &s, key, at)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, append([]byte("prefix"), want...)) {
			t.Fatalf("AppendSignal:\n%s\nNew+Marshal:\n%s", got, want)
		}
	}
}
