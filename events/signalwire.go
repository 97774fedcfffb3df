package events

import (
	"bytes"
	"encoding/json"
	"reflect"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// AppendSignal appends the envelope of s as an io.hikeshi.signal.received
// event (id and subject key, written at t, actor s.Source), byte for byte
// what New and Marshal produce. Ingest encodes every signal it accepts, so
// this writes envelope and data straight into dst, without reflection and
// without the scan Marshal makes of arbitrary data.
func AppendSignal(dst []byte, s *Signal, key string, t time.Time) ([]byte, error) {
	return appendSignal(dst, s, key, t, directSignal)
}

// appendSignal is AppendSignal; direct false encodes data with
// encoding/json, the reference the tests and benchmarks compare with.
func appendSignal(dst []byte, s *Signal, key string, t time.Time, direct bool) ([]byte, error) {
	t = t.UTC()
	spec, ok := Lookup(TypeSignalReceived)
	if y := t.Year(); y < 0 || y > 9999 || !plainString(key) || !plainString(s.Source) || s.Source == "" || !ok {
		e, err := New(key, s, Meta{ID: key, Actor: s.Source, Time: t})
		if err != nil {
			return dst, err
		}
		b, err := e.Marshal()
		return append(dst, b...), err
	}
	b := appendField(dst, `{"specversion":`, SpecVersion)
	b = appendField(b, `,"id":`, key)
	b = appendField(b, `,"source":`, DefaultSource)
	b = appendField(b, `,"type":`, TypeSignalReceived)
	b = appendField(b, `,"subject":`, key)
	b = append(b, `,"time":"`...)
	b = t.AppendFormat(b, time.RFC3339Nano)
	b = appendField(b, `","datacontenttype":`, ContentType)
	b = append(b, `,"dataversion":`...)
	b = strconv.AppendInt(b, int64(spec.Version), 10)
	b = appendField(b, `,"actor":`, s.Source)
	b = append(b, `,"data":`...)
	if direct {
		if d, ok := appendSignalData(b, s); ok {
			return append(d, '}'), nil
		}
		// A time json refuses: encoding/json below returns its error.
	}
	w := appender{b}
	if err := json.NewEncoder(&w).Encode(s); err != nil {
		return dst, err
	}
	// Encode ends the value with a newline; Marshal does not.
	return append(bytes.TrimSuffix(w.b, []byte("\n")), '}'), nil
}

type appender struct{ b []byte }

func (a *appender) Write(p []byte) (int, error) {
	a.b = append(a.b, p...)
	return len(p), nil
}

// directSignal reports whether Signal and SignalLink still have exactly the
// fields (name, type, json tag, order) appendSignalData writes. A field it
// does not know sends every signal through encoding/json rather than
// leaving the field out; TestSignalFieldsKnown fails until both agree.
var directSignal = fieldsAre[Signal](
	"Source string source",
	"Kind string kind",
	"Fingerprint string fingerprint",
	"Status string status",
	"Title string title",
	"Summary string summary,omitempty",
	"Severity string severity",
	"Labels map[string]string labels,omitempty",
	"Account string account,omitempty",
	"Project string project,omitempty",
	"Region string region,omitempty",
	"Resource string resource,omitempty",
	"Service string service,omitempty",
	"Links []events.SignalLink links,omitempty",
	"StartsAt time.Time starts_at",
	"EndsAt time.Time ends_at,omitzero",
	"Revision string revision,omitempty",
	"GroupKey string group_key",
	"ReportedBy string reported_by,omitempty",
	"CustomerImpact string customer_impact,omitempty",
) && fieldsAre[SignalLink](
	"Title string title,omitempty",
	"URL string url",
)

func fieldsAre[T any](want ...string) bool {
	t := reflect.TypeFor[T]()
	if t.NumField() != len(want) {
		return false
	}
	for i, w := range want {
		f := t.Field(i)
		if f.Name+" "+f.Type.String()+" "+f.Tag.Get("json") != w {
			return false
		}
	}
	return true
}

// appendSignalData appends s as json.Marshal encodes it, in field order and
// with the tags' omitempty and omitzero. It reports false, for the caller
// to use encoding/json, when a time has no RFC 3339 form (a year outside
// [0,9999], a zone offset of 24 hours or more), which json refuses.
func appendSignalData(b []byte, s *Signal) ([]byte, bool) {
	b = appendJSONString(append(b, `{"source":`...), s.Source)
	b = appendJSONString(append(b, `,"kind":`...), s.Kind)
	b = appendJSONString(append(b, `,"fingerprint":`...), s.Fingerprint)
	b = appendJSONString(append(b, `,"status":`...), s.Status)
	b = appendJSONString(append(b, `,"title":`...), s.Title)
	b = appendOmitEmpty(b, `,"summary":`, s.Summary)
	b = appendJSONString(append(b, `,"severity":`...), s.Severity)
	if len(s.Labels) > 0 {
		// json sorts map keys by their bytes, before escaping.
		keys := make([]string, 0, 16) // on the stack for most alerts
		for k := range s.Labels {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = append(b, `,"labels":{`...)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(appendJSONString(b, k), ':')
			b = appendJSONString(b, s.Labels[k])
		}
		b = append(b, '}')
	}
	b = appendOmitEmpty(b, `,"account":`, s.Account)
	b = appendOmitEmpty(b, `,"project":`, s.Project)
	b = appendOmitEmpty(b, `,"region":`, s.Region)
	b = appendOmitEmpty(b, `,"resource":`, s.Resource)
	b = appendOmitEmpty(b, `,"service":`, s.Service)
	if len(s.Links) > 0 {
		b = append(b, `,"links":[`...)
		for i, l := range s.Links {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, '{')
			if l.Title != "" {
				b = append(appendJSONString(append(b, `"title":`...), l.Title), ',')
			}
			b = append(appendJSONString(append(b, `"url":`...), l.URL), '}')
		}
		b = append(b, ']')
	}
	var ok bool
	if b, ok = appendJSONTime(append(b, `,"starts_at":`...), s.StartsAt); !ok {
		return b, false
	}
	// omitzero uses time.Time's IsZero: the zero instant in any location.
	if !s.EndsAt.IsZero() {
		if b, ok = appendJSONTime(append(b, `,"ends_at":`...), s.EndsAt); !ok {
			return b, false
		}
	}
	b = appendOmitEmpty(b, `,"revision":`, s.Revision)
	b = appendJSONString(append(b, `,"group_key":`...), s.GroupKey)
	b = appendOmitEmpty(b, `,"reported_by":`, s.ReportedBy)
	b = appendOmitEmpty(b, `,"customer_impact":`, s.CustomerImpact)
	return append(b, '}'), true
}

func appendOmitEmpty(b []byte, name, v string) []byte {
	if v == "" {
		return b
	}
	return appendJSONString(append(b, name...), v)
}

// appendJSONTime is Time.MarshalJSON without its allocation: AppendText
// writes and refuses the same strict RFC 3339.
func appendJSONTime(b []byte, t time.Time) ([]byte, bool) {
	b, err := t.AppendText(append(b, '"'))
	return append(b, '"'), err == nil
}

// jsonSafe[c] reports whether json.Marshal writes the ASCII byte c as is.
var jsonSafe = func() (safe [utf8.RuneSelf]bool) {
	for c := range safe {
		safe[c] = c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return safe
}()

// appendJSONString appends s quoted as json.Marshal writes it: HTML
// characters and control characters escaped (\b \f \n \r \t by name),
// invalid UTF-8 as U+FFFD, and U+2028 and U+2029, which break JavaScript,
// escaped.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf && jsonSafe[c] {
			i++
			continue
		}
		r, size := rune(c), 1
		if c >= utf8.RuneSelf {
			if r, size = utf8.DecodeRuneInString(s[i:]); size > 1 && r != '\u2028' && r != '\u2029' {
				i += size
				continue
			}
		}
		b = append(b, s[start:i]...)
		switch {
		case size > 1: // U+2028 or U+2029
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
		case c >= utf8.RuneSelf:
			b = append(b, `\ufffd`...) // an invalid byte
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == '\b':
			b = append(b, `\b`...)
		case c == '\f':
			b = append(b, `\f`...)
		case c == '\n':
			b = append(b, `\n`...)
		case c == '\r':
			b = append(b, `\r`...)
		case c == '\t':
			b = append(b, `\t`...)
		default:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
