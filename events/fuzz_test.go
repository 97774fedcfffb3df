package events_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/hikeshi/hikeshi/events"
)

// FuzzUnmarshal feeds arbitrary bytes to Unmarshal and, when they pass, to
// Decode. Neither may panic, every refusal must be ErrMalformed, and what
// is accepted must survive a Marshal/Unmarshal round trip. The widget type
// is registered so that its upcasters see fuzzed input too.
func FuzzUnmarshal(f *testing.F) {
	registerWidget(f)
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no golden files to seed the corpus: %v", err)
	}
	for _, path := range files {
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add(widgetEnvelope(1, `{"name":"gear","size_cm":12}`))
	f.Add(widgetEnvelope(2, `{"label":"gear","size_cm":12}`))
	f.Add(widgetEnvelope(1, `{"name":"gear","size_cm":"12"}`))
	f.Add(widgetEnvelope(4, `{"label":"gear","size_mm":120}`))
	for _, s := range []string{
		``,
		`null`,
		`{}`,
		`[]`,
		`"1.0"`,
		`{"specversion":"1.0"}`,
		`{"specversion":"1.0","id":"a","source":"b","type":"io.hikeshi.incident.note_added","subject":"c","time":"2025-01-01T00:00:00Z","dataversion":1,"data":null}`,
		`{"specversion":"1.0","id":"a","source":"b","type":"io.hikeshi.incident.note_added","subject":"c","time":"2025-01-01T00:00:00Z","dataversion":1,"data":{"text":"x"}}}`,
		`{"specversion":"1.0","id":"a","source":"b","type":"io.hikeshi.incident.declared","subject":"c","time":"9999-12-31T23:59:59.999999999+23:59","dataversion":9223372036854775807,"data":{}}`,
		`{"data":{"data":{"data":[[[[[[[[[[]]]]]]]]]]}}}`,
		"\x00\xff\xfe{",
		`{"specversion":"1.0","id":"\ud800","source":"\u0000","type":"io.hikeshi.slack.channel_linked","subject":"é","time":"2025-01-01T00:00:00Z","dataversion":1,"data":{"system":"slack","typ":"x"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		env, err := events.Unmarshal(b)
		if err != nil {
			if !errors.Is(err, events.ErrMalformed) {
				t.Fatalf("Unmarshal error is not ErrMalformed: %v", err)
			}
			return
		}
		if err := env.Validate(); err != nil {
			t.Fatalf("Unmarshal accepted an envelope Validate refuses: %v", err)
		}
		again, err := env.Marshal()
		if err != nil {
			t.Fatalf("Marshal of an accepted envelope: %v", err)
		}
		if std, err := json.Marshal(env); err != nil || !bytes.Equal(std, again) {
			t.Fatalf("Marshal differs from the standard encoder:\n got %s\nwant %s (%v)", again, std, err)
		}
		back, err := events.Unmarshal(again)
		if err != nil {
			t.Fatalf("Unmarshal(Marshal(%+v)): %v", env, err)
		}
		if back.ID != env.ID || back.Type != env.Type || back.Subject != env.Subject ||
			back.DataVersion != env.DataVersion || !back.Time.Equal(env.Time) {
			t.Fatalf("round trip changed the envelope:\n%+v\n%+v", env, back)
		}
		d, err := env.Decode()
		if err != nil {
			if !errors.Is(err, events.ErrMalformed) {
				t.Fatalf("Decode error is not ErrMalformed: %v", err)
			}
			return
		}
		if d == nil || d.EventType() != env.Type {
			t.Fatalf("Decode = %#v for type %s", d, env.Type)
		}
	})
}
