package signals

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/config"
	"github.com/hikeshi/hikeshi/services/signals/rules"
)

// Sources `hikeshi rules test --source` reads, each parsed as its endpoint
// parses it (callers are not verified: nothing is stored).
var testParsers = map[string]func([]byte) ([]events.Signal, error){
	"alertmanager": func(b []byte) ([]events.Signal, error) { return parseAlertmanager(b, "alertmanager") },
	"grafana":      func(b []byte) ([]events.Signal, error) { return parseAlertmanager(b, "grafana") },
	"aws":          parseAWSTest,
	"gcp-scc":      parseSCCTest,
	"generic":      parseGeneric,
	"escalation":   parseEscalation,
}

// TestSources names the sources Explain reads.
func TestSources() []string { return slices.Sorted(maps.Keys(testParsers)) }

// Explained is one signal of a payload and what the rules make of it.
type Explained struct {
	Signal   events.Signal  `json:"signal"`
	Decision rules.Decision `json:"decision"`
}

// Explain evaluates the rules of f's signals: section over what a sender
// sends to the endpoint of source (see TestSources), without touching
// anything: `hikeshi rules test --source alertmanager FILE < payload.json`.
// The configuration is checked as the hub checks it when it starts.
func Explain(f *config.File, source string, payload []byte) ([]Explained, error) {
	var c Config
	if ok, err := f.Section(Name, &c); err != nil {
		return nil, err
	} else if !ok {
		return nil, fmt.Errorf("%s has no signals: section", f.Path())
	}
	rs, err := c.compileRules()
	if err != nil {
		return nil, err
	}
	parse, ok := testParsers[source]
	if !ok {
		return nil, fmt.Errorf("source %q: want one of %s", source, strings.Join(TestSources(), ", "))
	}
	sigs, err := parse(payload)
	if err != nil {
		return nil, fmt.Errorf("%s payload: %w", source, err)
	}
	out := make([]Explained, len(sigs))
	for i := range sigs {
		if err := validate(&sigs[i]); err != nil {
			return nil, fmt.Errorf("%s payload: signals[%d]: %w", source, i, err)
		}
		out[i] = Explained{Signal: sigs[i], Decision: rs.Evaluate(&sigs[i])}
	}
	return out, nil
}

// parseAWSTest reads an EventBridge event, or an SNS notification carrying
// one, as the AWS endpoint does after verifying it.
func parseAWSTest(b []byte) ([]events.Signal, error) {
	var msg snsMessage
	if json.Unmarshal(b, &msg) == nil && msg.Type != "" {
		if msg.Type != "Notification" {
			return nil, bad("an SNS %s carries no event", msg.Type)
		}
		b = []byte(msg.Message)
	}
	return parseEventBridge(b)
}

// parseSCCTest reads a Pub/Sub push of an SCC notification, or the bare
// notification (as the console and gcloud show it), which it wraps.
func parseSCCTest(b []byte) ([]events.Signal, error) {
	var probe struct {
		Finding json.RawMessage `json:"finding"`
	}
	if json.Unmarshal(b, &probe) == nil && probe.Finding != nil {
		b, _ = json.Marshal(map[string]any{"message": map[string]string{"data": base64.StdEncoding.EncodeToString(b)}})
	}
	return parseSCC(b)
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
		decl := declaration(&x.Signal, &d)
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
