// Package events is Hikeshi's public contract: the CloudEvents 1.0 envelope
// every fact about an incident travels in, the registry of event types, and
// the upcasters that turn older versions into current structs. It imports the
// standard library only, so an outside consumer needs nothing but this module
// and a NATS client.
package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// SpecVersion is the CloudEvents version of every envelope.
const SpecVersion = "1.0"

// ContentType is the only datacontenttype Hikeshi writes.
const ContentType = "application/json"

// Envelope is a CloudEvents 1.0 structured-mode JSON event. Extensions carry
// who did it (actor: the stable id of the authenticated identity, actorname:
// its display name, via: the identity that acted for the actor, when a
// trusted integration acts for a person), what caused it (causationid), which request or chain it
// belongs to (correlationid), the schema version of data (dataversion) and,
// on incident events, the hash of the incident's previous event (prevhash,
// see Hash).
type Envelope struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            string          `json:"type"`
	Subject         string          `json:"subject"`
	Time            time.Time       `json:"time"`
	DataContentType string          `json:"datacontenttype"`
	DataVersion     int             `json:"dataversion"`
	Actor           string          `json:"actor,omitempty"`
	ActorName       string          `json:"actorname,omitempty"`
	Via             string          `json:"via,omitempty"`
	CausationID     string          `json:"causationid,omitempty"`
	CorrelationID   string          `json:"correlationid,omitempty"`
	PrevHash        string          `json:"prevhash,omitempty"`
	Data            json.RawMessage `json:"data"`
}

// Meta is what a writer knows about an event besides its data.
type Meta struct {
	ID            string // empty: a new random id
	Source        string // empty: DefaultSource
	Actor         string
	ActorName     string // display name of Actor
	Via           string // who acted for Actor, if anyone
	CausationID   string
	CorrelationID string
	Time          time.Time // zero: now
}

// DefaultSource is the CloudEvents source of events written by the hub.
const DefaultSource = "urn:hikeshi:hub"

// ErrMalformed wraps every decoding failure, so callers can tell bad input
// from their own bugs.
var ErrMalformed = errors.New("malformed event")

// New wraps data for incident subject into an envelope, using the registered
// type and current version of data.
func New(subject string, data Data, m Meta) (Envelope, error) {
	spec, ok := Lookup(data.EventType())
	if !ok {
		return Envelope{}, fmt.Errorf("events: type %q is not registered", data.EventType())
	}
	raw, err := json.Marshal(data)
	if err != nil {
		return Envelope{}, fmt.Errorf("events: encode %s: %w", spec.Type, err)
	}
	if m.ID == "" {
		m.ID = NewID()
	}
	if m.Source == "" {
		m.Source = DefaultSource
	}
	if m.Time.IsZero() {
		m.Time = time.Now()
	}
	return Envelope{
		SpecVersion:     SpecVersion,
		ID:              m.ID,
		Source:          m.Source,
		Type:            spec.Type,
		Subject:         subject,
		Time:            m.Time.UTC(),
		DataContentType: ContentType,
		DataVersion:     spec.Version,
		Actor:           m.Actor,
		ActorName:       m.ActorName,
		Via:             m.Via,
		CausationID:     m.CausationID,
		CorrelationID:   m.CorrelationID,
		Data:            raw,
	}, nil
}

// Marshal encodes the envelope as structured-mode JSON, byte for byte what
// json.Marshal produces. It is on every append's path, so it writes the
// attributes directly instead of going through reflection and re-compacting
// data; anything unusual (invalid UTF-8, data that is not compact JSON)
// takes the standard encoder.
func (e Envelope) Marshal() ([]byte, error) {
	if !e.plain() {
		return json.Marshal(e)
	}
	b := make([]byte, 0, 320+len(e.Data))
	b = appendField(b, `{"specversion":`, e.SpecVersion)
	b = appendField(b, `,"id":`, e.ID)
	b = appendField(b, `,"source":`, e.Source)
	b = appendField(b, `,"type":`, e.Type)
	b = appendField(b, `,"subject":`, e.Subject)
	b = append(b, `,"time":"`...)
	b = e.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	b = appendField(b, `,"datacontenttype":`, e.DataContentType)
	b = append(b, `,"dataversion":`...)
	b = strconv.AppendInt(b, int64(e.DataVersion), 10)
	for _, f := range [...]struct{ name, v string }{{`,"actor":`, e.Actor}, {`,"actorname":`, e.ActorName}, {`,"via":`, e.Via}, {`,"causationid":`, e.CausationID}, {`,"correlationid":`, e.CorrelationID}, {`,"prevhash":`, e.PrevHash}} {
		if f.v != "" {
			b = appendField(b, f.name, f.v)
		}
	}
	b = append(b, `,"data":`...)
	b = append(b, e.Data...)
	return append(b, '}'), nil
}

// plain reports whether the fast encoder yields exactly json.Marshal's
// output: strings that need no escaping beyond quotes, a time json would
// format the same way, and data that is already compact JSON.
func (e Envelope) plain() bool {
	for _, v := range [...]string{e.SpecVersion, e.ID, e.Source, e.Type, e.Subject, e.DataContentType, e.Actor, e.ActorName, e.Via, e.CausationID, e.CorrelationID, e.PrevHash} {
		if !plainString(v) {
			return false
		}
	}
	if y := e.Time.Year(); y < 0 || y > 9999 || len(e.Data) == 0 {
		return false
	}
	return compactJSON(e.Data)
}

// plainString: printable ASCII or valid UTF-8 without the characters
// json.Marshal escapes (", \, <, >, &, control characters, U+2028/9).
func plainString(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == '"' || r == '\\' || r == '<' || r == '>' || r == '&' || r == '\u2028' || r == '\u2029' {
			return false
		}
	}
	return true
}

// compactJSON reports whether data is valid JSON that json.Compact (and so
// json.Marshal of a RawMessage) would leave unchanged.
func compactJSON(data []byte) bool {
	if !json.Valid(data) {
		return false
	}
	inString, escaped := false, false
	for _, c := range data {
		switch {
		case inString && escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case c == '"':
			inString = !inString
		case !inString && (c == ' ' || c == '\t' || c == '\n' || c == '\r'):
			return false
		case c == '<' || c == '>' || c == '&':
			return false // json.Marshal escapes these in RawMessage too
		}
	}
	return true
}

func appendField(b []byte, name, v string) []byte {
	b = append(b, name...)
	b = append(b, '"')
	b = append(b, v...)
	return append(b, '"')
}

// Unmarshal decodes and validates a structured-mode envelope. It never panics,
// whatever the input.
func Unmarshal(b []byte) (Envelope, error) {
	e, ok := unmarshalPlain(b)
	if !ok {
		return unmarshalStd(b)
	}
	if err := e.Validate(); err != nil {
		return Envelope{}, err
	}
	return e, nil
}

// unmarshalStd is Unmarshal through encoding/json, for any input.
func unmarshalStd(b []byte) (Envelope, error) {
	var e Envelope
	if err := json.Unmarshal(b, &e); err != nil {
		if trailing(err) {
			return Envelope{}, fmt.Errorf("%w: trailing data after the event", ErrMalformed)
		}
		return Envelope{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if err := e.Validate(); err != nil {
		return Envelope{}, err
	}
	return e, nil
}

// trailing reports whether json.Unmarshal refused input because something
// other than white space follows the value.
func trailing(err error) bool {
	var se *json.SyntaxError
	return errors.As(err, &se) && strings.HasSuffix(se.Error(), "after top-level value")
}

// Validate checks the attributes CloudEvents requires and Hikeshi relies on.
func (e Envelope) Validate() error {
	var missing []string
	if e.SpecVersion != SpecVersion {
		return fmt.Errorf("%w: specversion %q, want %q", ErrMalformed, e.SpecVersion, SpecVersion)
	}
	// In the order of their names, as the message lists them.
	for _, f := range [...]struct{ name, v string }{{"id", e.ID}, {"source", e.Source}, {"subject", e.Subject}, {"type", e.Type}} {
		if strings.TrimSpace(f.v) == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: missing %s", ErrMalformed, strings.Join(missing, ", "))
	}
	if e.Time.IsZero() {
		return fmt.Errorf("%w: missing time", ErrMalformed)
	}
	if e.DataContentType != "" && e.DataContentType != ContentType {
		return fmt.Errorf("%w: datacontenttype %q, want %q", ErrMalformed, e.DataContentType, ContentType)
	}
	if e.DataVersion < 1 {
		return fmt.Errorf("%w: dataversion %d, want >= 1", ErrMalformed, e.DataVersion)
	}
	return nil
}

// plainFields are the attributes of an envelope in the order Marshal writes
// them, with those it leaves out when empty marked optional.
var plainFields = [...]struct {
	key      string
	optional bool
}{
	{`"specversion":`, false}, {`"id":`, false}, {`"source":`, false}, {`"type":`, false},
	{`"subject":`, false}, {`"time":`, false}, {`"datacontenttype":`, false}, {`"dataversion":`, false},
	{`"actor":`, true}, {`"actorname":`, true}, {`"via":`, true}, {`"causationid":`, true},
	{`"correlationid":`, true}, {`"prevhash":`, true}, {`"data":`, false},
}

// unmarshalPlain decodes an envelope written as Marshal writes it (every
// attribute in its order, strings without escapes, no white space outside
// data), which is every envelope Hikeshi stores, without reflection; ok is
// false for anything else, which json.Unmarshal then decodes. What it
// accepts, it decodes exactly as json.Unmarshal does.
func unmarshalPlain(b []byte) (e Envelope, ok bool) {
	if len(b) < 2 || b[0] != '{' || b[len(b)-1] != '}' {
		return Envelope{}, false
	}
	rest := b[1 : len(b)-1]
	strs := [...]*string{&e.SpecVersion, &e.ID, &e.Source, &e.Type, &e.Subject, nil, &e.DataContentType, nil,
		&e.Actor, &e.ActorName, &e.Via, &e.CausationID, &e.CorrelationID, &e.PrevHash}
	for i, f := range plainFields {
		sep := min(i, 1) // the comma before every attribute but the first
		if len(rest) < sep+len(f.key) || (sep == 1 && rest[0] != ',') || string(rest[sep:sep+len(f.key)]) != f.key {
			if f.optional {
				continue
			}
			return Envelope{}, false
		}
		rest = rest[sep+len(f.key):]
		switch f.key {
		case `"time":`:
			q, r, ok := cutJSONString(rest)
			if !ok || e.Time.UnmarshalJSON(q) != nil {
				return Envelope{}, false
			}
			rest = r
		case `"dataversion":`:
			n := 0
			for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
				n++
			}
			if n == 0 || n > 18 || (rest[0] == '0' && n > 1) {
				return Envelope{}, false
			}
			v, err := strconv.Atoi(string(rest[:n]))
			if err != nil {
				return Envelope{}, false
			}
			e.DataVersion, rest = v, rest[n:]
		case `"data":`:
			if len(rest) == 0 || rest[0] == 'n' || isSpace(rest[0]) || isSpace(rest[len(rest)-1]) || !json.Valid(rest) {
				return Envelope{}, false
			}
			e.Data = append(json.RawMessage(nil), rest...)
			return e, true
		default:
			q, r, ok := cutJSONString(rest)
			if !ok {
				return Envelope{}, false
			}
			*strs[i] = string(q[1 : len(q)-1])
			rest = r
		}
	}
	return Envelope{}, false
}

// cutJSONString splits a JSON string without escapes or control characters
// that is valid UTF-8 (so that json.Unmarshal would yield its bytes as
// they are) off the front of b: q is the string with its quotes.
func cutJSONString(b []byte) (q, rest []byte, ok bool) {
	if len(b) == 0 || b[0] != '"' {
		return nil, nil, false
	}
	ascii := true
	for i := 1; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			if !ascii && !utf8.Valid(b[1:i]) {
				return nil, nil, false
			}
			return b[:i+1], b[i+1:], true
		case c == '\\' || c < 0x20:
			return nil, nil, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return nil, nil, false
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
