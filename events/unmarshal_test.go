package events_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/hikeshi/hikeshi/events"
)

// goldenEnvelopes are the golden files' envelopes, each as Marshal writes it.
func goldenEnvelopes(tb testing.TB) [][]byte {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil || len(files) == 0 {
		tb.Fatalf("no golden files: %v", err)
	}
	var out [][]byte
	for _, path := range files {
		b, err := os.ReadFile(path)
		if err != nil {
			tb.Fatal(err)
		}
		env, err := events.UnmarshalStd(b)
		if err != nil {
			tb.Fatalf("%s: %v", path, err)
		}
		m, err := env.Marshal()
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// TestUnmarshalPlainDecodesWhatMarshalWrites: every envelope as Marshal
// writes it, with and without its optional attributes, takes the fast
// decoder, which yields exactly what encoding/json does.
func TestUnmarshalPlainDecodesWhatMarshalWrites(t *testing.T) {
	full := events.Envelope{
		SpecVersion: "1.0", ID: "0195f58f-4dbe-7567-b277-1c7d8530873b", Source: "urn:hikeshi:hub",
		Type: "io.hikeshi.incident.note_added", Subject: "incidents.x.note_added", DataContentType: "application/json",
		DataVersion: 1, Actor: "person:ana@example.com", ActorName: "Ana Ñúñez", Via: "slack:U1",
		CausationID: "c", CorrelationID: "d", PrevHash: "e", Data: []byte(`{"text":"a \"quoted\" note ✓"}`),
	}
	if err := full.Time.UnmarshalJSON([]byte(`"2025-04-02T08:12:44.35+02:00"`)); err != nil {
		t.Fatal(err)
	}
	bare := full
	bare.Actor, bare.ActorName, bare.Via, bare.CausationID, bare.CorrelationID, bare.PrevHash = "", "", "", "", "", ""
	inputs := goldenEnvelopes(t)
	for _, env := range []events.Envelope{full, bare} {
		b, err := env.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		inputs = append(inputs, b)
	}
	for _, b := range inputs {
		got, ok := events.UnmarshalPlain(b)
		if !ok {
			t.Errorf("fast decoder refused %s", b)
			continue
		}
		want, err := events.UnmarshalStd(b)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("fast decoder of %s:\n got %#v\nwant %#v", b, got, want)
		}
	}
}

// TestUnmarshalPlainLeavesTheRestToEncodingJSON: input that is not as
// Marshal writes it is refused by the fast decoder, so that encoding/json
// decides (and Unmarshal answers as before).
func TestUnmarshalPlainLeavesTheRestToEncodingJSON(t *testing.T) {
	b := goldenEnvelopes(t)[0]
	s := string(b)
	for name, in := range map[string]string{
		"escaped string":       strings.Replace(s, `"id":"`, `"id":"\u0041`, 1),
		"invalid UTF-8":        strings.Replace(s, `"id":"`, "\"id\":\"\xff", 1),
		"white space":          strings.Replace(s, `"id":`, `"id": `, 1),
		"trailing white space": s + " ",
		"keys reordered":       strings.Replace(strings.Replace(s, `"specversion":"1.0","id"`, `"id"`, 1), `"source"`, `"specversion":"1.0","source"`, 1),
		"duplicate key":        strings.Replace(s, `"data":`, `"id":"other","data":`, 1),
		"key in other case":    strings.Replace(s, `"id":`, `"ID":`, 1),
		"null data":            s[:strings.Index(s, `"data":`)] + `"data":null}`,
		"data then more":       s[:len(s)-1] + `,"extra":1}`,
		"negative version":     strings.Replace(s, `"dataversion":1`, `"dataversion":-1`, 1),
		"version as float":     strings.Replace(s, `"dataversion":1`, `"dataversion":1.0`, 1),
		"bad time":             strings.Replace(s, `"time":"`, `"time":"x`, 1),
	} {
		if env, ok := events.UnmarshalPlain([]byte(in)); ok {
			t.Errorf("%s: fast decoder accepted %s as %#v", name, in, env)
		}
		std, stdErr := events.UnmarshalStd([]byte(in))
		got, err := events.Unmarshal([]byte(in))
		if (err == nil) != (stdErr == nil) || !reflect.DeepEqual(got, std) {
			t.Errorf("%s: Unmarshal = %#v, %v; encoding/json: %#v, %v", name, got, err, std, stdErr)
		}
	}
}

// FuzzUnmarshalPlain: whatever the fast decoder accepts, encoding/json
// decodes to the same envelope.
func FuzzUnmarshalPlain(f *testing.F) {
	for _, b := range goldenEnvelopes(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, ok := events.UnmarshalPlain(b)
		if !ok {
			return
		}
		var want events.Envelope
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatalf("fast decoder accepted %q, encoding/json refuses it: %v", b, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("fast decoder of %q:\n got %#v\nwant %#v", b, got, want)
		}
	})
}
