package ingest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/hikeshi/hikeshi/events"
)

// Sources `hikeshi rules test --source` reads, each parsed as its endpoint
// parses it (callers are not verified: nothing is stored).
var parsers = map[string]func([]byte) ([]events.Signal, error){
	"alertmanager": func(b []byte) ([]events.Signal, error) { return parseAlertmanager(b, "alertmanager") },
	"grafana":      func(b []byte) ([]events.Signal, error) { return parseAlertmanager(b, "grafana") },
	"aws":          parseAWSPayload,
	"gcp-scc":      parseSCCPayload,
	"generic":      parseGeneric,
	"escalation":   parseEscalation,
}

// Sources names the sources Parse reads.
func Sources() []string { return slices.Sorted(maps.Keys(parsers)) }

// Parse reads what a sender sends to the endpoint of source (see
// Sources) as that endpoint does, without verifying a caller or storing
// anything: for `hikeshi rules test`.
func Parse(source string, payload []byte) ([]events.Signal, error) {
	parse, ok := parsers[source]
	if !ok {
		return nil, fmt.Errorf("source %q: want one of %s", source, strings.Join(Sources(), ", "))
	}
	sigs, err := parse(payload)
	if err != nil {
		return nil, fmt.Errorf("%s payload: %w", source, err)
	}
	for i := range sigs {
		if err := validate(&sigs[i]); err != nil {
			return nil, fmt.Errorf("%s payload: signals[%d]: %w", source, i, err)
		}
	}
	return sigs, nil
}

// parseAWSPayload reads an EventBridge event, or an SNS notification carrying
// one, as the AWS endpoint does after verifying it.
func parseAWSPayload(b []byte) ([]events.Signal, error) {
	var msg snsMessage
	if json.Unmarshal(b, &msg) == nil && msg.Type != "" {
		if msg.Type != "Notification" {
			return nil, bad("an SNS %s carries no event", msg.Type)
		}
		b = []byte(msg.Message)
	}
	return parseEventBridge(b)
}

// parseSCCPayload reads a Pub/Sub push of an SCC notification, or the bare
// notification (as the console and gcloud show it), which it wraps.
func parseSCCPayload(b []byte) ([]events.Signal, error) {
	var probe struct {
		Finding json.RawMessage `json:"finding"`
	}
	if json.Unmarshal(b, &probe) == nil && probe.Finding != nil {
		b, _ = json.Marshal(map[string]any{"message": map[string]string{"data": base64.StdEncoding.EncodeToString(b)}})
	}
	return parseSCC(b)
}
