package signals

// The projector reads every stored signal, and encoding/json (a validating
// pass, then reflection over the envelope and the signal) costs it more
// than evaluating and counting the signal. scanSignal reads the shape that
// events.AppendSignal writes directly; anything it does not expect — an
// unknown field, a null, an escape it cannot copy, invalid UTF-8 — makes it
// give up, and the caller decodes with encoding/json, so it never accepts
// what encoding/json would refuse or read something differently.

import (
	"encoding/json"
	"time"
	"unicode/utf8"

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
	s.ws()
	return ok && data && s.i == len(s.b)
}

type scanner struct {
	b []byte
	i int
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

// str reads a string. One with escapes is handed to encoding/json.
func (s *scanner) str(dst *string) bool {
	raw, escaped, ok := s.quoted()
	switch {
	case !ok:
		return false
	case escaped:
		return json.Unmarshal(s.b[s.i-len(raw)-2:s.i], dst) == nil
	}
	*dst = string(raw)
	return true
}

// quoted reads a string token and returns what is between its quotes;
// not ok for control characters and, unescaped, invalid UTF-8 (which
// encoding/json replaces).
func (s *scanner) quoted() (raw []byte, escaped, ok bool) {
	if !s.next('"') {
		return nil, false, false
	}
	start, ascii := s.i, true
	for ; s.i < len(s.b); s.i++ {
		switch c := s.b[s.i]; {
		case c == '"':
			raw = s.b[start:s.i]
			s.i++
			return raw, escaped, escaped || ascii || utf8.Valid(raw)
		case c == '\\':
			escaped = true
			s.i++ // the escaped character, possibly a quote
		case c < 0x20:
			return nil, false, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return nil, false, false
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
			// encoding/json keeps the map it decodes into, adding to it.
			if sig.Labels == nil {
				sig.Labels = map[string]string{}
			}
			return s.object(func(k string) bool {
				var v string
				if !s.str(&v) {
					return false
				}
				sig.Labels[k] = v
				return true
			})
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
	if !s.next('[') {
		return false
	}
	links := []events.SignalLink{}
	if !s.next(']') {
		for {
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
			if !ok {
				return false
			}
			links = append(links, l)
			if s.next(',') {
				continue
			}
			if !s.next(']') {
				return false
			}
			break
		}
	}
	*dst = links
	return true
}
