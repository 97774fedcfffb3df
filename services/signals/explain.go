package signals

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/config"
)

// Explain evaluates the rules of f's signals: section over one normalised
// signal (the data of io.hikeshi.signal.received, as JSON) without
// touching anything: `hikeshi rules test FILE < signal.json`.
func Explain(f *config.File, signalJSON []byte) (Decision, error) {
	var c Config
	if ok, err := f.Section(Name, &c); err != nil {
		return Decision{}, err
	} else if !ok {
		return Decision{}, fmt.Errorf("%s has no signals: section", f.Path())
	}
	rs, err := c.compileRules()
	if err != nil {
		return Decision{}, err
	}
	var s events.Signal
	if err := decode(signalJSON, &s, true); err != nil {
		return Decision{}, err
	}
	if err := validate(&s); err != nil {
		return Decision{}, fmt.Errorf("signal: %w", err)
	}
	return rs.Evaluate(&s), nil
}

// Describe writes a decision for people.
func (d Decision) Describe(w io.Writer) {
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
	case d.Route == RouteIncident:
		fmt.Fprintf(w, "action: incident for group %q (service %q, severity %q, confidential %v)\n",
			d.GroupKey, d.Incident.Service, d.Incident.Severity, d.Incident.Confidential)
	default:
		fmt.Fprintf(w, "action: %s (group %q)\n", d.Route, d.GroupKey)
	}
	if d.Priority != "" {
		fmt.Fprintf(w, "priority: %s\n", d.Priority)
	}
	for _, k := range sortedKeys(d.Annotations) {
		fmt.Fprintf(w, "%s: %s\n", k, d.Annotations[k])
	}
	if d.RateLimit != nil {
		fmt.Fprintf(w, "rate limit: %d per %s per fingerprint\n", d.RateLimit.Max, d.RateLimit.Window)
	}
	b, _ := json.MarshalIndent(d, "", "  ")
	fmt.Fprintf(w, "\n%s\n", b)
}
