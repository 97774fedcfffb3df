package events

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

// hardText holds every character json.Marshal treats specially: quotes,
// backslashes, control characters, DEL, HTML characters, U+2028 and U+2029,
// invalid UTF-8 (a stray continuation byte, a cut rune, a surrogate, an
// overlong form, 0xff), multi-byte runes, U+FFFD itself and an emoji.
var hardText = func() string {
	var b strings.Builder
	for c := range 0x20 {
		b.WriteByte(byte(c))
	}
	b.WriteString("\x7f\"quote\" back\\slash </a> & é 日本 \ufffd 🔥 \u2028\u2029 \x80 \xe2\x80 \xed\xa0\x80 \xc0\xaf \xff end")
	return b.String()
}()

// checkAppendSignal compares AppendSignal with New and Marshal, and the
// data encoder with json.Marshal, which must fail exactly when it does.
func checkAppendSignal(t *testing.T, s Signal, at time.Time) {
	t.Helper()
	data, ok := appendSignalData([]byte("x"), &s)
	want, err := json.Marshal(&s)
	switch {
	case ok != (err == nil):
		t.Fatalf("direct encoder ok=%v, json.Marshal: %v", ok, err)
	case ok && !bytes.Equal(data[1:], want):
		t.Fatalf("direct encoder:\n%q\njson.Marshal:\n%q", data[1:], want)
	}

	key := SignalKey(s.Source, s.Fingerprint, s.Status, s.StartsAt)
	got, gotErr := AppendSignal([]byte("prefix"), &s, key, at)
	std, stdErr := appendSignal([]byte("prefix"), &s, key, at, false)
	if (gotErr == nil) != (stdErr == nil) || gotErr != nil && gotErr.Error() != stdErr.Error() || !bytes.Equal(got, std) {
		t.Fatalf("AppendSignal %q, %v\nwith encoding/json %q, %v", got, gotErr, std, stdErr)
	}
	e, err := New(key, &s, Meta{ID: key, Actor: s.Source, Time: at})
	if err == nil {
		want, err = e.Marshal()
	}
	if (err == nil) != (gotErr == nil) {
		t.Fatalf("AppendSignal error %v, New+Marshal error %v", gotErr, err)
	}
	if err == nil && !bytes.Equal(got, append([]byte("prefix"), want...)) {
		t.Fatalf("AppendSignal:\n%s\nNew+Marshal:\n%s", got, want)
	}
}

// fullSignal sets every field of Signal; TestAppendSignalIsNewAndMarshal
// checks that it does.
func fullSignal(text string, at time.Time) Signal {
	return Signal{Source: "alertmanager", Kind: "alert" + text, Fingerprint: "f" + text, Status: SignalFiring + text,
		Title: "t" + text, Summary: "s" + text, Severity: "critical" + text,
		Labels:  map[string]string{"b": "2", "a": "1" + text, text: text},
		Account: "ac" + text, Project: "p" + text, Region: "r" + text, Resource: "res" + text, Service: "svc" + text,
		Links:    []SignalLink{{Title: "runbook" + text, URL: "https://x.example/?a=1&b=2" + text}, {URL: text}},
		StartsAt: at, EndsAt: at.Add(time.Hour), Revision: "rev" + text, GroupKey: `{}:{a="1"}` + text,
		ReportedBy: "rb" + text, CustomerImpact: "ci" + text}
}

// AppendSignal must write exactly what New and Marshal write, whatever the
// text, labels, links and times of the signal, and whether the envelope
// takes the fast path or not.
func TestAppendSignalIsNewAndMarshal(t *testing.T) {
	at := time.Date(2025, 6, 1, 12, 0, 0, 123456789, time.FixedZone("JST", 9*3600))
	full := fullSignal(hardText, at)
	for i, v := 0, reflect.ValueOf(full); i < v.NumField(); i++ {
		if v.Field(i).IsZero() {
			t.Fatalf("fullSignal leaves %s empty", v.Type().Field(i).Name)
		}
	}
	cases := map[string]Signal{
		"empty":            {},
		"only source":      {Source: "aws"},
		"empty containers": {Source: "aws", Labels: map[string]string{}, Links: []SignalLink{}},
		"full":             full,
		"full plain text":  fullSignal("", at),
		"bad source":       {Source: "bad\"source", Title: hardText, StartsAt: at, EndsAt: at.Add(time.Hour)},
		"labels sorted by bytes": {Source: "aws", Labels: map[string]string{
			"a": "", "A": "", "B": "", "b": "", "ab": "", "a\x00": "", "": "", "Z": "", "aa": "", "a b": "", "a.b": "",
			"a_b": "", "<k>": "", "&": "", "é": "", "e": "", "\xff": "dup", "\xfe": "dup", "\u2028": "", "🔥": "", "\"": "", "\\": ""}},
		"links": {Source: "aws", Links: []SignalLink{{}, {Title: "a"}, {URL: "u"}, {Title: "<t>", URL: "https://x/?a&b"}}},
	}
	for name, s := range cases {
		t.Run(name, func(t *testing.T) { checkAppendSignal(t, s, at) })
	}

	times := map[string]time.Time{
		"utc, no nanos":    time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC),
		"tenths":           time.Date(2025, 6, 1, 12, 0, 0, 100000000, time.UTC),
		"nanos":            time.Date(2025, 6, 1, 12, 0, 0, 1, time.UTC),
		"west":             time.Date(2025, 6, 1, 12, 0, 0, 5000, time.FixedZone("", -(3*3600+30*60))),
		"offset seconds":   time.Date(1890, 1, 1, 0, 0, 0, 0, time.FixedZone("LMT", 9*3600+18*60+59)),
		"local":            time.Date(2025, 6, 1, 12, 0, 0, 7, time.Local),
		"zero":             {},
		"zero elsewhere":   time.Time{}.In(time.FixedZone("", 3600)),
		"unix epoch":       time.Unix(0, 0),
		"year 0":           time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC),
		"year 9999":        time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.FixedZone("", 23*3600+59*60)),
		"year 10000":       time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		"year -1":          time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC),
		"offset 24h":       time.Date(2025, 6, 1, 12, 0, 0, 0, time.FixedZone("", 24*3600)),
		"offset -100h":     time.Date(2025, 6, 1, 12, 0, 0, 0, time.FixedZone("", -100*3600)),
		"utc in year 9999": time.Date(9999, 12, 31, 23, 0, 0, 0, time.FixedZone("", -3600)),
	}
	for name, tm := range times {
		t.Run("starts "+name, func(t *testing.T) { checkAppendSignal(t, Signal{Source: "aws", StartsAt: tm}, at) })
		t.Run("ends "+name, func(t *testing.T) { checkAppendSignal(t, Signal{Source: "aws", StartsAt: at, EndsAt: tm}, at) })
		if !tm.IsZero() { // New writes a zero time as now
			t.Run("envelope "+name, func(t *testing.T) { checkAppendSignal(t, fullSignal("", at), tm) })
		}
	}
}

// A field added to Signal or SignalLink, or a changed tag, must reach the
// direct encoder: until directSignal's list matches, every signal takes
// encoding/json.
func TestSignalFieldsKnown(t *testing.T) {
	if !directSignal {
		t.Fatal("Signal or SignalLink differ from the fields appendSignalData writes; teach it the change and update directSignal")
	}
	if fieldsAre[SignalLink]("Title string title,omitempty") || fieldsAre[SignalLink]("Title string title", "URL string url") {
		t.Fatal("fieldsAre misses a missing field or a changed tag")
	}
}

// FuzzAppendSignal builds signals from fuzzed text: fields are the pieces
// of text between '|', labels and links pairs of pieces (an empty string is
// a nil map or slice), times seconds, nanoseconds and a zone offset.
func FuzzAppendSignal(f *testing.F) {
	f.Add("alertmanager", "alert|f1|firing|Disk <full>|", "a|1|b|2", "runbook|https://x/?a&b", int64(1750000000), int64(123456789), int32(9*3600), int64(0))
	f.Add("aws", hardText, hardText+"|"+hardText, "|", int64(-62135596800), int64(0), int32(0), int64(1))
	f.Add("a", "", "x", "x", int64(253402300800), int64(1), int32(-86400), int64(-62135596801))
	f.Fuzz(func(t *testing.T, source, text, labels, links string, sec, nsec int64, zone int32, endSec int64) {
		loc := time.FixedZone("", int(zone))
		pieces := strings.Split(text, "|")
		piece := func(i int) string { return pieces[i%len(pieces)] }
		s := Signal{Source: source, Kind: piece(0), Fingerprint: piece(1), Status: piece(2), Title: piece(3), Summary: piece(4),
			Severity: piece(5), Account: piece(6), Project: piece(7), Region: piece(8), Resource: piece(9), Service: piece(10),
			GroupKey: piece(11), ReportedBy: piece(12), CustomerImpact: piece(13), Revision: piece(14), StartsAt: time.Unix(sec, nsec).In(loc)}
		if endSec != 0 {
			s.EndsAt = time.Unix(endSec, nsec).In(loc)
		}
		if labels != "" {
			s.Labels = map[string]string{}
			for p := strings.Split(labels, "|"); len(p) >= 2; p = p[2:] {
				s.Labels[p[0]] = p[1]
			}
		}
		if links != "" {
			s.Links = []SignalLink{}
			for p := strings.Split(links, "|"); len(p) >= 2; p = p[2:] {
				s.Links = append(s.Links, SignalLink{Title: p[0], URL: p[1]})
			}
		}
		checkAppendSignal(t, s, time.Unix(1750000100, 123456789))
	})
}

// BenchmarkAppendSignal encodes a typical Alertmanager alert with the
// direct encoder and with encoding/json.
func BenchmarkAppendSignal(b *testing.B) {
	s := Signal{Source: "alertmanager", Kind: "alert", Fingerprint: "c4b8a6e3d2f19a07", Status: SignalFiring,
		Title: "KafkaConsumerLag", Summary: "Consumer group checkout-events is 120000 messages behind.", Severity: "high",
		Labels: map[string]string{"alertname": "KafkaConsumerLag", "consumergroup": "checkout-events",
			"instance": "kafka-exporter:9308", "job": "kafka", "severity": "warning"},
		Resource: "kafka-exporter:9308", Service: "checkout",
		Links:    []SignalLink{{Title: "generator", URL: "http://prometheus.acme.internal:9090/graph?g0.expr=kafka_consumergroup_lag"}},
		StartsAt: time.Date(2025, 6, 4, 11, 2, 30, 512000000, time.UTC), GroupKey: `{}:{alertname="KafkaConsumerLag"}`}
	key := SignalKey(s.Source, s.Fingerprint, s.Status, s.StartsAt)
	at := time.Unix(1750000100, 123456789)
	for _, direct := range []bool{false, true} {
		b.Run(map[bool]string{false: "json", true: "direct"}[direct], func(b *testing.B) {
			b.ReportAllocs()
			dst := make([]byte, 0, 4096)
			for b.Loop() {
				var err error
				if dst, err = appendSignal(dst[:0], &s, key, at, direct); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
