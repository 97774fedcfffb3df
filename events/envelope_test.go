package events_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/events"
)

var (
	uuidV7 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	uuidV8 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
)

func TestNewFillsDefaults(t *testing.T) {
	data := &events.SeverityChanged{From: events.SEV3, To: events.SEV2, Reason: "spreading"}
	before := time.Now()
	env, err := events.New("inc-1", data, events.Meta{})
	after := time.Now()
	if err != nil {
		t.Fatal(err)
	}
	if env.SpecVersion != "1.0" {
		t.Errorf("specversion = %q", env.SpecVersion)
	}
	if !uuidV7.MatchString(env.ID) {
		t.Errorf("id = %q, want a UUIDv7", env.ID)
	}
	if env.Source != "urn:hikeshi:hub" {
		t.Errorf("source = %q", env.Source)
	}
	if env.Type != events.TypeSeverityChanged || env.Subject != "inc-1" {
		t.Errorf("type, subject = %q, %q", env.Type, env.Subject)
	}
	if env.Time.Before(before.Truncate(time.Millisecond)) || env.Time.After(after) || env.Time.Location() != time.UTC {
		t.Errorf("time = %v, want UTC between %v and %v", env.Time, before, after)
	}
	if env.DataContentType != "application/json" {
		t.Errorf("datacontenttype = %q", env.DataContentType)
	}
	if env.DataVersion != 1 {
		t.Errorf("dataversion = %d, want 1", env.DataVersion)
	}
	if env.Actor != "" || env.CausationID != "" || env.CorrelationID != "" {
		t.Errorf("extensions set without Meta: %+v", env)
	}
	if string(env.Data) != `{"from":"SEV3","to":"SEV2","reason":"spreading"}` {
		t.Errorf("data = %s", env.Data)
	}
	second, _ := events.New("inc-1", data, events.Meta{})
	if second.ID == env.ID {
		t.Errorf("two envelopes share id %s", env.ID)
	}
}

func TestNewKeepsMeta(t *testing.T) {
	at := time.Date(2025, 3, 14, 11, 26, 53, 612e6, time.FixedZone("CEST", 2*3600))
	m := events.Meta{ID: "evt-1", Source: "urn:hikeshi:test", Actor: "alice",
		CausationID: "evt-0", CorrelationID: "req-9", Time: at}
	env, err := events.New("inc-1", &events.NoteAdded{Text: "hello"}, m)
	if err != nil {
		t.Fatal(err)
	}
	if env.ID != "evt-1" || env.Source != "urn:hikeshi:test" || env.Actor != "alice" ||
		env.CausationID != "evt-0" || env.CorrelationID != "req-9" {
		t.Errorf("meta not kept: %+v", env)
	}
	if !env.Time.Equal(at) || env.Time.Location() != time.UTC {
		t.Errorf("time = %v, want %v in UTC", env.Time, at)
	}
}

func TestNewRejectsUnregisteredType(t *testing.T) {
	for _, d := range []events.Data{
		events.Linked{System: "slack"}, // no type: NewLinked was not used
		events.NewLinked("io.hikeshi.pagerduty.linked", events.Linked{System: "pagerduty"}),
	} {
		if env, err := events.New("inc-1", d, events.Meta{}); err == nil {
			t.Errorf("New(%#v) = %+v, want an error", d, env)
		}
	}
}

func TestEnvelopeRoundTrip(t *testing.T) {
	for _, s := range events.Specs() {
		t.Run(s.Type, func(t *testing.T) {
			data := s.New()
			env, err := events.New("inc-1", data, events.Meta{Actor: "alice", CausationID: "c", CorrelationID: "r"})
			if err != nil {
				t.Fatal(err)
			}
			b, err := env.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			back, err := events.Unmarshal(b)
			if err != nil {
				t.Fatalf("Unmarshal(%s): %v", b, err)
			}
			if !reflect.DeepEqual(back, env) {
				t.Errorf("round trip:\n got %+v\nwant %+v", back, env)
			}
			got, err := back.Decode()
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, data) || got.EventType() != s.Type {
				t.Errorf("Decode = %#v, want %#v", got, data)
			}
		})
	}
}

// validEnvelope is a minimal envelope Unmarshal accepts; each case below
// changes one thing.
func validEnvelope() map[string]any {
	return map[string]any{
		"specversion":     "1.0",
		"id":              "019593fa-5dac-7777-9879-783d0077d30e",
		"source":          "urn:hikeshi:hub",
		"type":            events.TypeNoteAdded,
		"subject":         "inc-1",
		"time":            "2025-03-14T09:26:53.612Z",
		"datacontenttype": "application/json",
		"dataversion":     1,
		"data":            map[string]any{"text": "hello"},
	}
}

func encode(t *testing.T, m map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestUnmarshalAccepts(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(map[string]any)
	}{
		{"as is", func(map[string]any) {}},
		{"no datacontenttype", func(m map[string]any) { delete(m, "datacontenttype") }},
		{"unknown extension", func(m map[string]any) { m["traceparent"] = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" }},
		{"time with offset", func(m map[string]any) { m["time"] = "2025-03-14T11:26:53.612+02:00" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := validEnvelope()
			tc.change(m)
			env, err := events.Unmarshal(append(encode(t, m), " \n\t"...))
			if err != nil {
				t.Fatalf("Unmarshal: %v", err)
			}
			want := time.Date(2025, 3, 14, 9, 26, 53, 612e6, time.UTC)
			if env.ID != "019593fa-5dac-7777-9879-783d0077d30e" || env.Type != events.TypeNoteAdded || !env.Time.Equal(want) {
				t.Errorf("Unmarshal = %+v", env)
			}
			d, err := env.Decode()
			if err != nil || !reflect.DeepEqual(d, &events.NoteAdded{Text: "hello"}) {
				t.Errorf("Decode = %#v, %v", d, err)
			}
		})
	}
}

func TestUnmarshalRejects(t *testing.T) {
	for _, tc := range []struct {
		name    string
		change  func(map[string]any)
		raw     string // used instead of the changed envelope when set
		suffix  string // appended to the encoded envelope
		wantMsg string
	}{
		{name: "missing id", change: func(m map[string]any) { delete(m, "id") }, wantMsg: "missing id"},
		{name: "blank id", change: func(m map[string]any) { m["id"] = "  " }, wantMsg: "missing id"},
		{name: "missing source", change: func(m map[string]any) { delete(m, "source") }, wantMsg: "missing source"},
		{name: "missing type", change: func(m map[string]any) { delete(m, "type") }, wantMsg: "missing type"},
		{name: "missing subject", change: func(m map[string]any) { delete(m, "subject") }, wantMsg: "missing subject"},
		{name: "missing id and subject", change: func(m map[string]any) { delete(m, "id"); delete(m, "subject") }, wantMsg: "missing id, subject"},
		{name: "missing time", change: func(m map[string]any) { delete(m, "time") }, wantMsg: "missing time"},
		{name: "time not RFC 3339", change: func(m map[string]any) { m["time"] = "14/03/2025 09:26" }, wantMsg: "time"},
		{name: "missing specversion", change: func(m map[string]any) { delete(m, "specversion") }, wantMsg: "specversion"},
		{name: "specversion 0.3", change: func(m map[string]any) { m["specversion"] = "0.3" }, wantMsg: "specversion"},
		{name: "specversion as number", change: func(m map[string]any) { m["specversion"] = 1.0 }, wantMsg: "specversion"},
		{name: "text content type", change: func(m map[string]any) { m["datacontenttype"] = "text/plain" }, wantMsg: "datacontenttype"},
		{name: "xml content type", change: func(m map[string]any) { m["datacontenttype"] = "application/xml" }, wantMsg: "datacontenttype"},
		{name: "missing dataversion", change: func(m map[string]any) { delete(m, "dataversion") }, wantMsg: "dataversion"},
		{name: "negative dataversion", change: func(m map[string]any) { m["dataversion"] = -1 }, wantMsg: "dataversion"},
		{name: "trailing object", suffix: ` {}`, wantMsg: "trailing data"},
		{name: "trailing brace", suffix: `}`, wantMsg: "trailing data"},
		{name: "trailing bracket", suffix: `]`, wantMsg: "trailing data"},
		{name: "trailing text", suffix: ` x`, wantMsg: "trailing data"},
		{name: "second event", suffix: "\n" + `{"specversion":"1.0"}`, wantMsg: "trailing data"},
		{name: "empty", raw: ``, wantMsg: "end of JSON input"},
		{name: "null", raw: `null`, wantMsg: "specversion"},
		{name: "array", raw: `[]`, wantMsg: "cannot unmarshal"},
		{name: "truncated", raw: `{"specversion":"1.0","id":`, wantMsg: "end of JSON input"},
		{name: "not JSON", raw: `<event/>`, wantMsg: "invalid character"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := validEnvelope()
			if tc.change != nil {
				tc.change(m)
			}
			b := append(encode(t, m), tc.suffix...)
			if tc.change == nil && tc.suffix == "" {
				b = []byte(tc.raw)
			}
			env, err := events.Unmarshal(b)
			if !errors.Is(err, events.ErrMalformed) {
				t.Fatalf("Unmarshal(%s) = %+v, %v; want ErrMalformed", b, env, err)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("error %q does not mention %q", err, tc.wantMsg)
			}
			if !reflect.DeepEqual(env, events.Envelope{}) {
				t.Errorf("Unmarshal returned a partial envelope with its error: %+v", env)
			}
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	for _, tc := range []struct {
		name    string
		change  func(map[string]any)
		wantMsg string
	}{
		{"wrong field type", func(m map[string]any) { m["data"] = map[string]any{"text": 42} }, "cannot unmarshal number"},
		{"data is a string", func(m map[string]any) { m["data"] = "hello" }, "cannot unmarshal string"},
		{"data is an array", func(m map[string]any) { m["data"] = []string{"hello"} }, "cannot unmarshal array"},
		{"data is null", func(m map[string]any) { m["data"] = nil }, "has no data"},
		{"no data", func(m map[string]any) { delete(m, "data") }, "has no data"},
		{"future version", func(m map[string]any) { m["dataversion"] = 2 }, "version 2 is not known"},
		{"unknown type", func(m map[string]any) { m["type"] = "io.hikeshi.incident.archived" }, "unknown type"},
		{"type in another case", func(m map[string]any) { m["type"] = "io.hikeshi.incident.NOTE_ADDED" }, "unknown type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := validEnvelope()
			tc.change(m)
			env, err := events.Unmarshal(encode(t, m))
			if err != nil {
				t.Fatalf("Unmarshal: %v (the envelope itself is valid)", err)
			}
			d, err := env.Decode()
			if !errors.Is(err, events.ErrMalformed) {
				t.Fatalf("Decode = %#v, %v; want ErrMalformed", d, err)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("error %q does not mention %q", err, tc.wantMsg)
			}
			if d != nil {
				t.Errorf("Decode returned data with its error: %#v", d)
			}
		})
	}
}

func TestSubjectName(t *testing.T) {
	if name, err := events.SubjectName(events.TypeSeverityChanged); err != nil || name != "severity_changed" {
		t.Errorf("SubjectName = %q, %v", name, err)
	}
	if _, err := events.SubjectName("io.hikeshi.incident.archived"); !errors.Is(err, events.ErrMalformed) {
		t.Errorf("SubjectName(unknown) error = %v, want ErrMalformed", err)
	}
}

func TestSpecs(t *testing.T) {
	specs := events.Specs()
	want := []string{
		events.TypeRoleMappingChanged,
		events.TypeTokenCreated,
		events.TypeTokenRevoked,
		events.TypeGitHubPostmortemOpened,
		events.TypeGitHubPostmortemRequested,
		events.TypeClosed,
		events.TypeCommanderAssigned,
		events.TypeDeclared,
		events.TypeEvidenceAdded,
		events.TypeEvidenceHandedOver,
		events.TypeMilestoneRecorded,
		events.TypeNoteAdded,
		events.TypeSeverityChanged,
		events.TypeStatusUpdated,
		events.TypeJiraCaseLinked,
		events.TypeNotifySent,
		events.TypeSignalOccurrences,
		events.TypeSignalReceived,
		events.TypeTriageAccepted,
		events.TypeTriageDismissed,
		events.TypeTriageOpened,
		events.TypeSlackAnnouncementRequested,
		events.TypeSlackChannelLinked,
		events.TypeSlackConversationArchived,
		events.TypeSlackMembersChanged,
		events.TypeSlackMessageFlagged,
		events.TypeSlackStatusRequested,
	}
	var got []string
	names := map[string]bool{}
	for _, s := range specs {
		got = append(got, s.Type)
		if names[s.Name] {
			t.Errorf("subject name %q used twice", s.Name)
		}
		names[s.Name] = true
		if !events.ValidID(s.Name) {
			t.Errorf("%s: subject name %q is not a subject token", s.Type, s.Name)
		}
		if s.Doc == "" {
			t.Errorf("%s has no Doc", s.Type)
		}
		if d := s.New(); d.EventType() != s.Type {
			t.Errorf("%s: New().EventType() = %q", s.Type, d.EventType())
		}
		if l, ok := events.Lookup(s.Type); !ok || l.Name != s.Name {
			t.Errorf("Lookup(%s) = %+v, %v", s.Type, l, ok)
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Specs() types =\n%q\nwant (sorted)\n%q", got, want)
	}
}

// An optional field added by a newer producer keeps the version, so a reader
// that does not know it must still decode the event.
func TestDecodeIgnoresFieldsFromNewerProducers(t *testing.T) {
	env, err := events.New("inc-1", &events.NoteAdded{Text: "hi"}, events.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	env.Data = json.RawMessage(`{"text":"hi","colour":"red"}`)
	d, err := env.Decode()
	if err != nil {
		t.Fatalf("Decode with an added optional field: %v", err)
	}
	if n, ok := d.(*events.NoteAdded); !ok || n.Text != "hi" {
		t.Fatalf("decoded %#v, want NoteAdded{Text: hi}", d)
	}
}
