package events_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hikeshi/hikeshi/events"
)

// The widget is a test-only type at version 3, so the upcaster chain is
// exercised although every published type is still at version 1.
//
//	v1: {"name": "gear", "size_cm": 12}
//	v2: {"label": "gear", "size_cm": 12}   name renamed to label
//	v3: {"label": "gear", "size_mm": 120}  size in millimetres
const typeWidget = "io.hikeshi.test.widget"

type widget struct {
	Label  string `json:"label"`
	SizeMM int    `json:"size_mm"`
}

func (widget) EventType() string { return typeWidget }

// upcastCalls counts the upcasters run, indexed by the version they lift.
var upcastCalls [3]atomic.Int64

func widgetV1toV2(raw json.RawMessage) (json.RawMessage, error) {
	upcastCalls[1].Add(1)
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	if name, ok := m["name"]; ok {
		m["label"] = name
		delete(m, "name")
	}
	return json.Marshal(m)
}

func widgetV2toV3(raw json.RawMessage) (json.RawMessage, error) {
	upcastCalls[2].Add(1)
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	if cm, ok := m["size_cm"]; ok {
		var n int
		if err := json.Unmarshal(cm, &n); err != nil {
			return nil, fmt.Errorf("size_cm: %w", err)
		}
		m["size_mm"], _ = json.Marshal(n * 10)
		delete(m, "size_cm")
	}
	return json.Marshal(m)
}

// registerWidget registers the widget for the duration of tb.
func registerWidget(tb testing.TB) {
	tb.Helper()
	events.Register(events.Spec{
		Type:    typeWidget,
		Name:    "test_widget",
		Version: 3,
		Doc:     "A test-only type with two upcasters.",
		New:     func() events.Data { return &widget{} },
		Upcasters: map[int]events.Upcaster{
			1: widgetV1toV2,
			2: widgetV2toV3,
		},
	})
	tb.Cleanup(func() { events.Unregister(typeWidget) })
}

func widgetEnvelope(version int, data string) []byte {
	return fmt.Appendf(nil, `{"specversion":"1.0","id":"0195f58f-4dbe-7567-b277-1c7d8530873b",`+
		`"source":"urn:hikeshi:test","type":%q,"subject":"inc-1","time":"2025-04-02T08:12:44.35Z",`+
		`"datacontenttype":"application/json","dataversion":%d,"data":%s}`, typeWidget, version, data)
}

func TestUpcastOlderVersionsDecodeToCurrentStruct(t *testing.T) {
	registerWidget(t)
	want := &widget{Label: "gear", SizeMM: 120}
	for _, tc := range []struct {
		version    int
		data       string
		calls1to2  int64
		calls2to3  int64
		wantResult *widget
	}{
		{1, `{"name":"gear","size_cm":12}`, 1, 1, want},
		{2, `{"label":"gear","size_cm":12}`, 0, 1, want},
		{3, `{"label":"gear","size_mm":120}`, 0, 0, want},
	} {
		t.Run(fmt.Sprintf("v%d", tc.version), func(t *testing.T) {
			before1, before2 := upcastCalls[1].Load(), upcastCalls[2].Load()
			env, err := events.Unmarshal(widgetEnvelope(tc.version, tc.data))
			if err != nil {
				t.Fatalf("Unmarshal: %v", err)
			}
			got, err := env.Decode()
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !reflect.DeepEqual(got, tc.wantResult) {
				t.Errorf("Decode = %#v, want %#v", got, tc.wantResult)
			}
			if n := upcastCalls[1].Load() - before1; n != tc.calls1to2 {
				t.Errorf("upcaster 1→2 ran %d times, want %d", n, tc.calls1to2)
			}
			if n := upcastCalls[2].Load() - before2; n != tc.calls2to3 {
				t.Errorf("upcaster 2→3 ran %d times, want %d", n, tc.calls2to3)
			}
		})
	}
}

func TestUpcastRejects(t *testing.T) {
	registerWidget(t)
	for _, tc := range []struct {
		name    string
		version int
		typ     string
		data    string
		wantMsg string
	}{
		{"future version", 4, typeWidget, `{"label":"gear","size_mm":120}`, "version 4 is not known"},
		{"version zero", 0, typeWidget, `{"label":"gear","size_mm":120}`, "version 0 is not known"},
		{"unknown type", 1, "io.hikeshi.test.gadget", `{"label":"gear"}`, "unknown type"},
		{"upcaster fails", 1, typeWidget, `{"name":"gear","size_cm":"large"}`, "upcast io.hikeshi.test.widget v2"},
		{"old data not an object", 1, typeWidget, `[1,2]`, "upcast io.hikeshi.test.widget v1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Built directly: Unmarshal itself refuses version 0.
			env := events.Envelope{
				SpecVersion: events.SpecVersion, ID: "e-1", Source: "urn:hikeshi:test",
				Type: tc.typ, Subject: "inc-1", DataVersion: tc.version,
				Data: json.RawMessage(tc.data),
			}
			d, err := env.Decode()
			if !errors.Is(err, events.ErrMalformed) {
				t.Fatalf("Decode = %#v, %v; want ErrMalformed", d, err)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("error %q does not mention %q", err, tc.wantMsg)
			}
		})
	}
}

func TestRegisterPanics(t *testing.T) {
	newWidget := func() events.Data { return &widget{} }
	noop := func(raw json.RawMessage) (json.RawMessage, error) { return raw, nil }
	for _, tc := range []struct {
		name    string
		spec    events.Spec
		wantMsg string
	}{
		{"missing upcaster", events.Spec{
			Type: "io.hikeshi.test.gap", Name: "test_gap", Version: 3, New: newWidget,
			Upcasters: map[int]events.Upcaster{1: noop},
		}, "no upcaster from version 2"},
		{"no upcasters at all", events.Spec{
			Type: "io.hikeshi.test.gap", Name: "test_gap", Version: 2, New: newWidget,
		}, "no upcaster from version 1"},
		{"duplicate type", events.Spec{
			Type: events.TypeDeclared, Name: "test_declared_again", Version: 1, New: newWidget,
		}, "type registered twice"},
		{"duplicate subject name", events.Spec{
			Type: "io.hikeshi.test.declared", Name: "declared", Version: 1, New: newWidget,
		}, "subject name registered twice"},
		{"no constructor", events.Spec{
			Type: "io.hikeshi.test.empty", Name: "test_empty", Version: 1,
		}, "incomplete spec"},
		{"version zero", events.Spec{
			Type: "io.hikeshi.test.empty", Name: "test_empty", Version: 0, New: newWidget,
		}, "incomplete spec"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := events.Lookup(tc.spec.Type)
			msg := panicMessage(func() { events.Register(tc.spec) })
			if msg == "" {
				events.Unregister(tc.spec.Type)
				t.Fatal("Register did not panic")
			}
			if !strings.Contains(msg, tc.wantMsg) {
				t.Errorf("panic %q does not mention %q", msg, tc.wantMsg)
			}
			after, _ := events.Lookup(tc.spec.Type)
			if after.Name != before.Name || after.Version != before.Version {
				t.Errorf("registry changed by a refused spec: %+v → %+v", before, after)
			}
		})
	}
}

func panicMessage(f func()) (msg string) {
	defer func() {
		if r := recover(); r != nil {
			msg = fmt.Sprint(r)
		}
	}()
	f()
	return ""
}
