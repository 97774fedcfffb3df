package events

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"
)

// AppendSignal appends the envelope of s as an io.hikeshi.signal.received
// event (id and subject key, written at t, actor s.Source), byte for byte
// what New and Marshal produce. Ingest encodes every signal it accepts, so
// this encodes data once, straight into dst, and skips the scan Marshal
// makes of arbitrary data: json's encoder output is compact by
// construction.
func AppendSignal(dst []byte, s *Signal, key string, t time.Time) ([]byte, error) {
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
