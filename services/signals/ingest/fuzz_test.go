package ingest

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/hikeshi/hikeshi/events"
)

// Every parser, whatever the input: no panic, and either an error or
// signals that validate and encode.
func fuzzParser(f *testing.F, seeds []string, parse func([]byte) ([]events.Signal, error)) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkParsed(t, parse, b) })
}

func checkParsed(t *testing.T, parse func([]byte) ([]events.Signal, error), b []byte) {
	sigs, err := parse(b)
	if err != nil {
		// A refusal speaks JSON, never Go, and a hint never fails.
		mustSpeakJSON(t, err.Error())
		_, _ = sniff(b)
		return
	}
	for i := range sigs {
		if err := validate(&sigs[i]); err != nil {
			continue // the handler answers 400
		}
		key := sigs[i].Key()
		if _, err := events.AppendSignal(nil, &sigs[i], key, sigs[i].StartsAt); err != nil {
			t.Fatalf("valid signal does not encode: %v", err)
		}
	}
}

func seed(f *testing.F, name string) string { return string(fixture(f, name)) }

// FuzzAlertmanager also checks the scanner against encoding/json, on b
// and on b as a value and a key inside a delivery, where the scanner
// accepts it far more often.
func FuzzAlertmanager(f *testing.F) {
	for _, s := range []string{seed(f, "alertmanager-v4.json"), seed(f, "alertmanager-v4-eu.json"), seed(f, "grafana.json"),
		seed(f, "grafana-org2.json"), `{"version":"4","groupKey":"g","alerts":[{}]}`, `{"version":"1","orgId":12,"alerts":[]}`,
		`"a\u00e9\ud800\n"`, `{"a":[1,-2.5e3,true,null,""]}`, `"Status"`, `"ſtatus"`} {
		f.Add([]byte(s))
	}
	for _, c := range amCases {
		f.Add([]byte(c.body))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		sameAsJSON(t, b)
		for _, in := range []string{`,"labels":{"a":%s}`, `,"values":%s`, `,%s:"x"`} {
			sameAsJSON(t, []byte(amBody(amMin+fmt.Sprintf(in, b))))
		}
		checkParsed(t, func(b []byte) ([]events.Signal, error) { return parseAlertmanager(b, "alertmanager") }, b)
	})
}

func FuzzGrafana(f *testing.F) {
	fuzzParser(f, []string{seed(f, "grafana.json"), seed(f, "grafana-org2.json")},
		func(b []byte) ([]events.Signal, error) { return parseAlertmanager(b, "grafana") })
}

func FuzzEventBridge(f *testing.F) {
	fuzzParser(f, []string{seed(f, "guardduty-eventbridge.json"), seed(f, "securityhub-eventbridge.json"),
		seed(f, "guardduty-portprobe-updated.json"), seed(f, "guardduty-sample.json"),
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
