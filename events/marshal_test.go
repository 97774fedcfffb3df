package events_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/events"
)

// Marshal must produce exactly what the standard encoder produces, for the
// golden files and for envelopes that need escaping or odd data.
func TestMarshalMatchesStandardEncoder(t *testing.T) {
	var envs []events.Envelope
	files, err := filepath.Glob("testdata/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		env, err := events.Unmarshal(b)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		envs = append(envs, env)
	}
	base, err := events.New("inc-1", &events.NoteAdded{Text: "x"}, events.Meta{Actor: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	for _, change := range []func(e *events.Envelope){
		func(e *events.Envelope) {},
		func(e *events.Envelope) { e.Actor = `quote " and \ backslash` },
		func(e *events.Envelope) { e.Actor = "tab\tnewline\n" },
		func(e *events.Envelope) { e.Actor = "<script>&" },
		func(e *events.Envelope) { e.Actor = "bad utf8 \xff" },
		func(e *events.Envelope) { e.Actor = "line sep \u2028" },
		func(e *events.Envelope) { e.Actor = "日本語の名前" },
		func(e *events.Envelope) { e.CorrelationID, e.CausationID = "c-1", "e-0" },
		func(e *events.Envelope) { e.ActorName, e.Via = "Alice Liddell", "token:ci" },
		func(e *events.Envelope) { e.ActorName = "Zoë <admin>" },
		func(e *events.Envelope) { e.Data = json.RawMessage(`{ "text" : "spaced" }`) },
		func(e *events.Envelope) { e.Data = json.RawMessage(`{"text":"a < b"}`) },
		func(e *events.Envelope) { e.Data = json.RawMessage(`{"text":"esc \" \\ \n"}`) },
		func(e *events.Envelope) { e.Data = nil },
		func(e *events.Envelope) {
			e.Time = time.Date(2026, 11, 22, 1, 2, 3, 400, time.FixedZone("JST", 9*3600))
		},
		func(e *events.Envelope) { e.Time = time.Time{} },
	} {
		e := base
		change(&e)
		envs = append(envs, e)
	}
	for i, e := range envs {
		want, wantErr := json.Marshal(e)
		got, gotErr := e.Marshal()
		if (wantErr == nil) != (gotErr == nil) {
			t.Fatalf("envelope %d: error %v, standard encoder %v", i, gotErr, wantErr)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("envelope %d:\n got %s\nwant %s", i, got, want)
		}
	}
}
