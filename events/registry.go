package events

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
)

// Data is the payload of one event type. EventType returns the registered
// CloudEvents type, an explicit string that never depends on Go names.
type Data interface {
	EventType() string
}

// Upcaster turns the data of version N into the data of version N+1.
type Upcaster func(json.RawMessage) (json.RawMessage, error)

// Spec describes one registered event type.
type Spec struct {
	Type    string // CloudEvents type, e.g. io.hikeshi.incident.declared
	Name    string // last token of the NATS subject, e.g. declared
	Version int    // current version of data
	Doc     string // one line for the catalogue
	New     func() Data
	// Upcasters[v] lifts version v to v+1, for every v < Version.
	Upcasters map[int]Upcaster
}

var (
	regMu    sync.RWMutex
	registry = map[string]Spec{}
)

// Register adds a type to the registry. It panics on a programming error:
// a duplicate type or subject name, or a gap in the upcaster chain.
func Register(s Spec) {
	regMu.Lock()
	defer regMu.Unlock()
	if s.Type == "" || s.Name == "" || s.Version < 1 || s.New == nil {
		panic(fmt.Sprintf("events: incomplete spec %+v", s))
	}
	if _, dup := registry[s.Type]; dup {
		panic("events: type registered twice: " + s.Type)
	}
	for _, o := range registry {
		if o.Name == s.Name {
			panic("events: subject name registered twice: " + s.Name)
		}
	}
	for v := 1; v < s.Version; v++ {
		if s.Upcasters[v] == nil {
			panic(fmt.Sprintf("events: %s has no upcaster from version %d", s.Type, v))
		}
	}
	registry[s.Type] = s
}

// Lookup finds a registered type.
func Lookup(typ string) (Spec, bool) {
	regMu.RLock()
	defer regMu.RUnlock()
	s, ok := registry[typ]
	return s, ok
}

// Specs lists every registered type, sorted by type.
func Specs() []Spec {
	regMu.RLock()
	defer regMu.RUnlock()
	out := make([]Spec, 0, len(registry))
	for _, s := range registry {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b Spec) int {
		switch {
		case a.Type < b.Type:
			return -1
		case a.Type > b.Type:
			return 1
		}
		return 0
	})
	return out
}

// SubjectName is the subject token of a registered type.
func SubjectName(typ string) (string, error) {
	s, ok := Lookup(typ)
	if !ok {
		return "", fmt.Errorf("%w: unknown type %q", ErrMalformed, typ)
	}
	return s.Name, nil
}

// Decode returns the envelope's data as the current struct of its type,
// upcasting older versions first.
func (e Envelope) Decode() (Data, error) {
	s, ok := Lookup(e.Type)
	if !ok {
		return nil, fmt.Errorf("%w: unknown type %q", ErrMalformed, e.Type)
	}
	if e.DataVersion < 1 || e.DataVersion > s.Version {
		return nil, fmt.Errorf("%w: %s version %d is not known (current %d)", ErrMalformed, e.Type, e.DataVersion, s.Version)
	}
	if isNull(e.Data) {
		return nil, fmt.Errorf("%w: %s has no data", ErrMalformed, e.Type)
	}
	raw := e.Data
	for v := e.DataVersion; v < s.Version; v++ {
		var err error
		if raw, err = s.Upcasters[v](raw); err != nil {
			return nil, fmt.Errorf("%w: upcast %s v%d: %v", ErrMalformed, e.Type, v, err)
		}
	}
	if isNull(raw) {
		return nil, fmt.Errorf("%w: upcast %s to v%d left no data", ErrMalformed, e.Type, s.Version)
	}
	d := s.New()
	// Unknown fields are ignored: an optional field added by a newer
	// producer keeps the version, so older readers must tolerate it.
	if err := json.Unmarshal(raw, d); err != nil {
		if trailing(err) {
			return nil, fmt.Errorf("%w: %s data: trailing data", ErrMalformed, e.Type)
		}
		return nil, fmt.Errorf("%w: %s data: %v", ErrMalformed, e.Type, err)
	}
	return d, nil
}

// isNull reports whether raw is absent or JSON null, which would otherwise
// decode silently into an empty struct.
func isNull(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) == 0 || string(t) == "null"
}
