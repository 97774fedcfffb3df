package signals

import (
	"encoding/json"
	"testing"

	"github.com/hikeshi/hikeshi/events"
)

// Every parser, whatever the input: no panic, and either an error or
// signals that validate and encode.
func fuzzParser(f *testing.F, seeds []string, parse func([]byte) ([]events.Signal, error)) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		sigs, err := parse(b)
		if err != nil {
			return
		}
		for i := range sigs {
			if err := validate(&sigs[i]); err != nil {
				continue // the handler answers 400
			}
			key := events.SignalKey(sigs[i].Source, sigs[i].Fingerprint, sigs[i].Status, sigs[i].StartsAt)
			if _, err := events.AppendSignal(nil, &sigs[i], key, sigs[i].StartsAt); err != nil {
				t.Fatalf("valid signal does not encode: %v", err)
			}
		}
	})
}

func seed(f *testing.F, name string) string { return string(fixture(f, name)) }

func FuzzAlertmanager(f *testing.F) {
	fuzzParser(f, []string{seed(f, "alertmanager-v4.json"), `{"version":"4","groupKey":"g","alerts":[{}]}`},
		func(b []byte) ([]events.Signal, error) { return parseAlertmanager(b, "alertmanager") })
}

func FuzzGrafana(f *testing.F) {
	fuzzParser(f, []string{seed(f, "grafana.json")},
		func(b []byte) ([]events.Signal, error) { return parseAlertmanager(b, "grafana") })
}

func FuzzEventBridge(f *testing.F) {
	fuzzParser(f, []string{seed(f, "guardduty-eventbridge.json"), seed(f, "securityhub-eventbridge.json"),
		`{"id":"1","detail-type":"X","detail":{},"time":"2025-01-01T00:00:00Z"}`}, parseEventBridge)
}

func FuzzSCC(f *testing.F) {
	data, _ := json.Marshal(map[string]any{"message": map[string]any{"data": fixture(f, "scc-finding.json")}})
	fuzzParser(f, []string{string(data)}, parseSCC)
}

func FuzzGeneric(f *testing.F) {
	fuzzParser(f, []string{`{"source":"x","fingerprint":"f","title":"t","severity":"high","starts_at":"2025-01-01T00:00:00Z"}`, `[]`}, parseGeneric)
}

func FuzzEscalation(f *testing.F) {
	fuzzParser(f, []string{`{"id":"ZD-1","title":"t","reported_by":"a","reported_at":"2025-01-01T00:00:00Z","customer_impact":"x"}`}, parseEscalation)
}

// The SNS envelope decoder and canonical string never panic.
func FuzzSNSEnvelope(f *testing.F) {
	f.Add(fixture(f, "sns-subscription-confirmation.json"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var m snsMessage
		if decode(b, &m, false) == nil {
			_ = snsStringToSign(&m)
			_, _ = checkSNSURL("SigningCertURL", m.SigningCertURL)
		}
	})
}
