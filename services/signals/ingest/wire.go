package ingest

// The projector reads every stored signal, and encoding/json (a validating
// pass, then reflection) costs it more than evaluating and counting the
// signal; the Alertmanager and Grafana webhooks pay as much for every
// alert they deliver. scanner reads these known shapes directly: anything
// it is not sure it reads as encoding/json does — an unexpected field or
// type, a null, a repeated field, invalid UTF-8 — makes it give up, and
// the caller decodes with encoding/json, so it never accepts what
// encoding/json would refuse or reads something differently.

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/events"
)

// scanSignal decodes b into env (without Data) and sig, or reports false;
// sig must be zero.
func scanSignal(b []byte, env *events.Envelope, sig *events.Signal) bool {
	s := scanner{b: b}
	data := false
	ok := s.object(func(key string) bool {
		switch key {
		case "specversion":
			return s.str(&env.SpecVersion)
		case "id":
			return s.str(&env.ID)
		case "source":
			return s.str(&env.Source)
		case "type":
			return s.str(&env.Type)
		case "subject":
			return s.str(&env.Subject)
		case "time":
			return s.time(&env.Time)
		case "datacontenttype":
			return s.str(&env.DataContentType)
		case "dataversion":
			return s.int(&env.DataVersion)
		case "actor":
			return s.str(&env.Actor)
		case "causationid":
			return s.str(&env.CausationID)
		case "correlationid":
			return s.str(&env.CorrelationID)
		case "data":
			data = true
			return s.signal(sig)
		}
		return false
	})
	return ok && data && s.end()
}

type scanner struct {
	b []byte
	i int
	// text, when set, is b as a string: strings without escapes are then
	// sliced from it rather than each copied (the results keep it alive).
	text string
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// next consumes c after optional whitespace.
func (s *scanner) next(c byte) bool {
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// end reports whether only whitespace is left: encoding/json refuses
// trailing data.
func (s *scanner) end() bool {
	s.ws()
	return s.i == len(s.b)
}

// object reads {"key": value, …}, field reading each value.
func (s *scanner) object(field func(key string) bool) bool {
	if !s.next('{') {
		return false
	}
	if s.next('}') {
		return true
	}
	for {
		var key string
		if !s.str(&key) || !s.next(':') || !field(key) {
			return false
		}
		if s.next(',') {
			continue
		}
		return s.next('}')
	}
}

// array reads [value, …], elem reading each value.
func (s *scanner) array(elem func() bool) bool {
	if !s.next('[') {
		return false
	}
	if s.next(']') {
		return true
	}
	for {
		if !elem() {
			return false
		}
		if s.next(',') {
			continue
		}
		return s.next(']')
	}
}

// fields reads an object into a struct, names being the (at most 64)
// field names encoding/json knows and read reading the value of one. A
// repeated field (encoding/json would decode it over the first) or a key
// matching one only case-insensitively (encoding/json folds keys as
// strings.EqualFold does) gives up; any other key is skipped, as
// encoding/json ignores it.
func (s *scanner) fields(names []string, read func(key string) bool) bool {
	var seen uint64
	return s.object(func(key string) bool {
		for n, name := range names {
			if key == name {
				if seen&(1<<n) != 0 {
					return false
				}
				seen |= 1 << n
				return read(key)
			}
		}
		for _, name := range names {
			if strings.EqualFold(key, name) {
				return false
			}
		}
		return s.skip(0)
	})
}

// maxSkipDepth bounds the nesting of a skipped value, far inside
// encoding/json's own limit (10000) on the nesting of the whole value.
const maxSkipDepth = 64

// skip reads any value, checking its syntax as encoding/json does.
func (s *scanner) skip(depth int) bool {
	s.ws()
	if s.i == len(s.b) || depth > maxSkipDepth {
		return false
	}
	switch c := s.b[s.i]; {
	case c == '{':
		return s.object(func(string) bool { return s.skip(depth + 1) })
	case c == '[':
		return s.array(func() bool { return s.skip(depth + 1) })
	case c == '"':
		_, _, ok := s.quoted()
		return ok
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	}
	return s.number()
}

func (s *scanner) literal(lit string) bool {
	if len(s.b)-s.i < len(lit) || string(s.b[s.i:s.i+len(lit)]) != lit {
		return false
	}
	s.i += len(lit)
	return true
}

// number reads -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?; what may
// follow it is the caller's to check.
func (s *scanner) number() bool {
	s.accept("-")
	if !s.accept("0") && s.digits() == 0 {
		return false
	}
	if s.accept(".") && s.digits() == 0 {
		return false
	}
	if s.accept("eE") {
		s.accept("+-")
		return s.digits() > 0
	}
	return true
}

// num reads a number as its text, as encoding/json fills a json.Number.
func (s *scanner) num(dst *json.Number) bool {
	s.ws()
	start := s.i
	if !s.number() {
		return false
	}
	*dst = json.Number(s.b[start:s.i])
	return true
}

// accept consumes one of the bytes in set.
func (s *scanner) accept(set string) bool {
	if s.i < len(s.b) && strings.IndexByte(set, s.b[s.i]) >= 0 {
		s.i++
		return true
	}
	return false
}

func (s *scanner) digits() int {
	start := s.i
	for s.i < len(s.b) && '0' <= s.b[s.i] && s.b[s.i] <= '9' {
		s.i++
	}
	return s.i - start
}

// str reads a string.
func (s *scanner) str(dst *string) bool {
	raw, escaped, ok := s.quoted()
	switch {
	case !ok:
		return false
	case escaped:
		*dst = unescape(raw)
	case s.text != "":
		*dst = s.text[s.i-1-len(raw) : s.i-1]
	default:
		*dst = string(raw)
	}
	return true
}

// quoted reads a string token and returns what is between its quotes;
// not ok for what encoding/json refuses (control characters, unknown
// escapes) and for invalid UTF-8 (which it replaces).
func (s *scanner) quoted() (raw []byte, escaped, ok bool) {
	if !s.next('"') {
		return nil, false, false
	}
	b, start, ascii := s.b, s.i, true
	for i := start; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			s.i, raw = i+1, b[start:i]
			return raw, escaped, ascii || utf8.Valid(raw)
		case c == '\\':
			escaped = true
			if i++; i == len(b) {
				return nil, false, false
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if hex4(b[i+1:]) < 0 {
					return nil, false, false
				}
				i += 4
			default:
				return nil, false, false
			}
		case c < 0x20:
			return nil, false, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return nil, false, false
}

// unescape decodes what quoted accepted as encoding/json does, down to a
// lone surrogate becoming U+FFFD.
func unescape(raw []byte) string {
	var b strings.Builder
	b.Grow(len(raw)) // decoding only shortens
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		i++
		switch c = raw[i]; c {
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'u':
			r := hex4(raw[i+1:])
			i += 4
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if i+2 < len(raw) && raw[i+1] == '\\' && raw[i+2] == 'u' {
					r2 = hex4(raw[i+3:])
				}
				if r = utf16.DecodeRune(r, r2); r != utf8.RuneError {
					i += 6
				}
			}
			b.WriteRune(r)
		default: // '"', '\\', '/'
			b.WriteByte(c)
		}
	}
	return b.String()
}

// hex4 decodes 4 hex digits, or returns -1.
func hex4(b []byte) rune {
	if len(b) < 4 {
		return -1
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return -1
		}
		r = r<<4 | rune(c)
	}
	return r
}

// time reads a timestamp as time.Time's UnmarshalJSON does: the bytes
// between the quotes, unescaped.
func (s *scanner) time(dst *time.Time) bool {
	raw, escaped, ok := s.quoted()
	return ok && !escaped && dst.UnmarshalText(raw) == nil
}

// int reads a small non-negative integer.
func (s *scanner) int(dst *int) bool {
	s.ws()
	n, start := 0, s.i
	for ; s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' && s.i-start < 9; s.i++ {
		n = n*10 + int(s.b[s.i]-'0')
	}
	if s.i == start || (s.b[start] == '0' && s.i-start > 1) {
		return false
	}
	if s.i < len(s.b) {
		switch s.b[s.i] {
		case '.', 'e', 'E', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
			return false
		}
	}
	*dst = n
	return true
}

// labels reads an object of strings into *m, which it makes if nil:
// encoding/json adds to the map a field already holds.
func (s *scanner) labels(m *map[string]string) bool {
	if *m == nil {
		*m = map[string]string{}
	}
	return s.object(func(k string) bool {
		var v string
		if !s.str(&v) {
			return false
		}
		(*m)[k] = v
		return true
	})
}

func (s *scanner) signal(sig *events.Signal) bool {
	return s.object(func(key string) bool {
		switch key {
		case "source":
			return s.str(&sig.Source)
		case "kind":
			return s.str(&sig.Kind)
		case "fingerprint":
			return s.str(&sig.Fingerprint)
		case "status":
			return s.str(&sig.Status)
		case "title":
			return s.str(&sig.Title)
		case "summary":
			return s.str(&sig.Summary)
		case "severity":
			return s.str(&sig.Severity)
		case "labels":
			return s.labels(&sig.Labels)
		case "account":
			return s.str(&sig.Account)
		case "project":
			return s.str(&sig.Project)
		case "region":
			return s.str(&sig.Region)
		case "resource":
			return s.str(&sig.Resource)
		case "service":
			return s.str(&sig.Service)
		case "links":
			return s.links(&sig.Links)
		case "starts_at":
			return s.time(&sig.StartsAt)
		case "ends_at":
			return s.time(&sig.EndsAt)
		case "revision":
			return s.str(&sig.Revision)
		case "group_key":
			return s.str(&sig.GroupKey)
		case "reported_by":
			return s.str(&sig.ReportedBy)
		case "customer_impact":
			return s.str(&sig.CustomerImpact)
		}
		return false
	})
}

func (s *scanner) links(dst *[]events.SignalLink) bool {
	if *dst != nil {
		return false // encoding/json decodes a repeated one over the first's elements
	}
	*dst = []events.SignalLink{}
	return s.array(func() bool {
		var l events.SignalLink
		ok := s.object(func(key string) bool {
			switch key {
			case "title":
				return s.str(&l.Title)
			case "url":
				return s.str(&l.URL)
			}
			return false
		})
		*dst = append(*dst, l)
		return ok
	})
}

// DecodeSignal reads a stored signal in one pass over its bytes (see
// scanSignal), where the generic path decodes the envelope, then its data
// again. Anything but a current-version signal takes the generic path.
func DecodeSignal(subject string, s uint64, b []byte) (events.Stored, *events.Signal, error) {
	var env events.Envelope
	sig := new(events.Signal)
	if spec, ok := events.Lookup(events.TypeSignalReceived); ok && scanSignal(b, &env, sig) &&
		env.Type == events.TypeSignalReceived && env.DataVersion == spec.Version && env.Validate() == nil {
		return events.Stored{Seq: s, Subject: subject, Envelope: env}, sig, nil
	}
	e, err := natsjs.DecodeRaw(subject, s, b)
	if err != nil {
		return e, nil, err
	}
	data, err := e.Decode()
	if err != nil {
		return e, nil, err
	}
	sig, ok := data.(*events.Signal)
	if !ok {
		return e, nil, fmt.Errorf("%w: %s on the signal stream", events.ErrMalformed, e.Type)
	}
	return e, sig, nil
}
