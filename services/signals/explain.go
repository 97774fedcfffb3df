package signals

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/config"
	"github.com/hikeshi/hikeshi/services/signals/ingest"
	"github.com/hikeshi/hikeshi/services/signals/projector"
	"github.com/hikeshi/hikeshi/services/signals/rules"
)

// Explained is one signal of a payload and what the rules make of it.
type Explained struct {
	Signal   events.Signal  `json:"signal"`
	Decision rules.Decision `json:"decision"`
}

// Explain evaluates the rules of f's signals: section over what a sender
// sends to the endpoint of source (see ingest.Sources), without touching
// anything: `hikeshi rules test --source alertmanager FILE < payload.json`.
// The configuration is checked as the hub checks it when it starts.
func Explain(f *config.File, source string, payload []byte) ([]Explained, error) {
	var c Config
	if ok, err := f.Section(Name, &c); err != nil {
		return nil, err
	} else if !ok {
		return nil, fmt.Errorf("%s has no signals: section", f.Path())
	}
	rs, err := c.Projector.Compile()
	if err != nil {
		return nil, err
	}
	sigs, err := ingest.Parse(source, payload)
	if err != nil {
		return nil, err
	}
	out := make([]Explained, len(sigs))
	for i := range sigs {
		out[i] = Explained{Signal: sigs[i], Decision: rs.Evaluate(&sigs[i])}
	}
	return out, nil
}

// Describe writes the signal and its decision for people.
func (x Explained) Describe(w io.Writer) {
	sig, _ := json.MarshalIndent(x.Signal, "", "  ")
	fmt.Fprintf(w, "signal (the data of %s):\n%s\n", events.TypeSignalReceived, sig)
	d := x.Decision
	if len(d.Rules) == 0 {
		fmt.Fprintln(w, "matched: no rule (the default applies)")
	} else {
		fmt.Fprintf(w, "matched: %s\n", strings.Join(d.Rules, " → "))
	}
	if d.Flagged != "" {
		fmt.Fprintf(w, "FLAGGED: %s; routed by the default\n", d.Flagged)
	}
	switch {
	case d.Drop:
		fmt.Fprintln(w, "action: drop (stored, nothing else)")
	case d.Route == rules.RouteIncident:
		decl := projector.Declaration(&x.Signal, &d)
		fmt.Fprintf(w, "action: incident for group %q (service %q, severity %s, confidential %v)\n",
			d.GroupKey, decl.Service, decl.Severity, decl.Confidential)
	default:
		fmt.Fprintf(w, "action: %s (group %q)\n", d.Route, d.GroupKey)
	}
	if d.Priority != "" {
		fmt.Fprintf(w, "priority: %s\n", d.Priority)
	}
	for _, k := range slices.Sorted(maps.Keys(d.Annotations)) {
		fmt.Fprintf(w, "%s: %s\n", k, d.Annotations[k])
	}
	if d.RateLimit != nil {
		fmt.Fprintf(w, "rate limit: %d per %s per fingerprint\n", d.RateLimit.Max, d.RateLimit.Window)
	}
	b, _ := json.MarshalIndent(d, "", "  ")
	fmt.Fprintf(w, "decision:\n%s\n", b)
}
