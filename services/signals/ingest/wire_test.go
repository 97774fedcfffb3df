package ingest

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/events"
)

// wireSamples are signals as the ingest stores them, with what makes
// strings hard: quotes, escapes, non-ASCII, empty labels and links.
func wireSamples(t testing.TB) [][]byte {
	full := sigFor(7, 3, "resolved")
	full.Labels = map[string]string{"instance": "node-7", "q": `a "quoted" \ value`, "jp": "ディスク満杯", "": ""}
	full.Links = []events.SignalLink{{Title: "graph", URL: "https://grafana.example.test/d/1?a=1&b=<2>"}, {URL: "https://x.test"}}
	full.Title, full.Summary = "Disk <full> on\tnode\n7 \u2028", "résumé"
	full.Account, full.Project, full.Region, full.Resource, full.Service = "123456789012", "proj", "ap-northeast-1", "i-0abc", "search"
	full.EndsAt = full.StartsAt.Add(time.Minute)
	full.Revision = "2025-06-04T11:40:00.5Z/3/8.5"
	esc := sigFor(1, 1, "firing")
	esc.Kind, esc.ReportedBy, esc.CustomerImpact = "escalation", "support@example.test", "checkout fails"
	esc.Labels = map[string]string{}
	var out [][]byte
	for _, s := range []events.Signal{sigFor(0, 1, "firing"), full, esc} {
		key := s.Key()
		b, err := events.AppendSignal(nil, &s, key, time.Unix(1750000100, 123456789))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// generic is what encoding/json makes of a stored signal.
func generic(b []byte) (events.Envelope, *events.Signal, error) {
	var w struct {
		events.Envelope
		Data *events.Signal `json:"data"`
	}
	err := json.Unmarshal(b, &w)
	return w.Envelope, w.Data, err
}

// The scanner reads what the ingest writes (else the projector would pay
// for encoding/json on every signal), and reads it as encoding/json does.
func TestScanSignalReadsStoredSignals(t *testing.T) {
	for _, b := range wireSamples(t) {
		var env events.Envelope
		var sig events.Signal
		must(t, scanSignal(b, &env, &sig), "not scanned: %s", b)
		genv, gsig, err := generic(b)
		if err != nil {
			t.Fatal(err)
		}
		must(t, reflect.DeepEqual(env, genv), "envelope %+v, encoding/json %+v", env, genv)
		must(t, reflect.DeepEqual(&sig, gsig), "signal %+v, encoding/json %+v", sig, gsig)
	}
}

// Whatever the bytes, the scanner either gives up or agrees with
// encoding/json: never more lenient, never different.
func FuzzScanSignal(f *testing.F) {
	for _, b := range wireSamples(f) {
		f.Add(b)
	}
	f.Add([]byte(`{"data":{"labels":{"a":"b","a":"c"},"links":[]},"dataversion":01}`))
	f.Add([]byte(`{"data":{"title":"\u00e9\ud800","starts_at":"2025-01-01T00:00:00\u005a"},"time":null}`))
	f.Add([]byte(`{"data":{"title":"` + "\xff" + `"},"dataversion":1e0} x`))
	f.Add([]byte(`{"data":{"links":[{"title":"a","url":"u"}],"links":[{"title":"b"}],"summary":"\ud83d\udd25\ud800\/"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var env events.Envelope
		var sig events.Signal
		if !scanSignal(b, &env, &sig) {
			return
		}
		genv, gsig, err := generic(b)
		if err != nil {
			t.Fatalf("scanned what encoding/json refuses (%v): %q", err, b)
		}
		if !reflect.DeepEqual(env, genv) || gsig == nil || !reflect.DeepEqual(sig, *gsig) {
			t.Fatalf("scanned %+v %+v, encoding/json %+v %+v: %q", env, sig, genv, gsig, b)
		}
	})
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
	e, sig, err := DecodeSignal("signals.alertmanager.alert", 9, b)
	if err != nil {
		t.Fatal(err)
	}
	g, err := natsjs.DecodeRaw("signals.alertmanager.alert", 9, b)
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
		_, _, err := DecodeSignal("signals.x.y", 1, bad)
		must(t, errors.Is(err, events.ErrMalformed), "%s: %v", bad, err)
	}
}
