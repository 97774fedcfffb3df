package ingest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// goTerms are what a sender must never read in a 400: Go's type names,
// its time layout, encoding/json's own wording.
var goTerms = []string{"time.Time", "float64", "int64", "string into", "Go struct", "Go value", "2006-01-02", "15:04:05",
	"json:", "signals.", "amPayload", "amAlert", "genericSignal", "guardDuty", "UnmarshalJSON", "json.Number"}

func mustSpeakJSON(t *testing.T, msg string) {
	t.Helper()
	for _, g := range goTerms {
		if strings.Contains(msg, g) {
			t.Errorf("message names %q: %s", g, msg)
		}
	}
}

// A refused payload names the JSON path of the bad field and why, in the
// sender's terms; a payload of another known sender's shape is told the
// endpoint that takes it.
func TestClearBadRequests(t *testing.T) {
	setSecrets(t)
	r := newRig(t, rigOpts{yaml: baseYAML})
	am := string(fixture(t, "alertmanager-v4.json"))
	gf := fixture(t, "grafana.json")
	gd := string(fixture(t, "guardduty-portprobe.json"))
	gen := `{"source":"datadog","fingerprint":"f","title":"t","severity":"high","starts_at":"2025-01-01T00:00:00Z"}`
	esc := `{"id":"ZD-1","title":"t","reported_by":"yuki","reported_at":"2025-01-01T00:00:00Z","customer_impact":"x"}`
	tok, aws := auth(testToken), map[string]string{"X-Hikeshi-Secret": "aws-secret"}
	grafana := func(b []byte) map[string]string {
		return map[string]string{grafanaSignatureHeader: hmacHex("grafana-hmac", b)}
	}
	for _, c := range []struct {
		name, path, body string
		hdr              map[string]string
		want             string
	}{
		{"alert time", PathAlertmanager, strings.Replace(am, `"startsAt": "2025-06-04T10:40:00Z"`, `"startsAt": "yesterday"`, 1), tok,
			`alerts[1].startsAt: \"yesterday\" is not an RFC 3339 time such as \"2025-06-04T11:02:30Z\"`},
		{"label type", PathAlertmanager, strings.Replace(am, `"severity": "warning", "service": "checkout", "project"`, `"severity": 3, "service": "checkout", "project"`, 1), tok,
			`alerts[0].labels.severity: expected a string, got the number 3`},
		{"repeated field", PathAlertmanager, strings.Replace(am, `"truncatedAlerts": 0`, `"alerts": 7`, 1), tok,
			`alerts: expected a list, got the number 7`},
		{"syntax", PathAlertmanager, `{"version": "4",}`, tok, `invalid JSON at byte 17: invalid character '}'`},
		{"empty", PathEscalations, ``, tok, `invalid JSON: the body is empty`},
		{"truncated", PathEscalations, `{"id": "ZD-1", "title": "t`, tok, `invalid JSON: the body ends inside a value`},
		{"generic time", PathGeneric, strings.Replace(gen, `2025-01-01T00:00:00Z`, `2025-01-01`, 1), tok,
			`starts_at: \"2025-01-01\" is not an RFC 3339 time`},
		{"generic list", PathGeneric, `[` + gen + `,` + strings.Replace(gen, `"title"`, `"labels":["a"],"title"`, 1) + `]`, tok,
			`signals[1].labels: expected an object, got a list`},
		{"generic unknown", PathGeneric, strings.Replace(gen, `"title"`, `"colour":"red","title"`, 1), tok, `colour: unknown field`},
		{"escalation epoch", PathEscalations, strings.Replace(esc, `"2025-01-01T00:00:00Z"`, `1733212800`, 1), tok,
			`reported_at: expected an RFC 3339 time such as \"2025-06-04T11:02:30Z\", got the number 1733212800`},
		{"guardduty severity", PathAWS, strings.Replace(gd, `"severity": 5,`, `"severity": "HIGH",`, 1), aws,
			`detail.severity: expected a number, got the string \"HIGH\"`},
		{"guardduty count", PathAWS, strings.Replace(gd, `"count": 1,`, `"count": 1.5,`, 1), aws,
			`detail.service.count: expected a whole number, got the number 1.5`},

		{"alertmanager at grafana", PathGrafana, am, grafana([]byte(am)),
			`looks like an Alertmanager webhook: send it to POST /api/v1/signals/alertmanager`},
		{"alertmanager at generic", PathGeneric, am, tok, `looks like an Alertmanager webhook: send it to POST /api/v1/signals/alertmanager`},
		{"alertmanager at aws", PathAWS, am, aws, `looks like an Alertmanager webhook: send it to POST /api/v1/signals/alertmanager`},
		{"grafana at alertmanager", PathAlertmanager, string(gf), tok, `looks like a Grafana webhook: send it to POST /api/v1/signals/grafana`},
		{"guardduty at alertmanager", PathAlertmanager, gd, tok, `looks like an EventBridge event: send it to POST /api/v1/signals/aws`},
		{"guardduty at generic", PathGeneric, gd, tok, `looks like an EventBridge event: send it to POST /api/v1/signals/aws`},
		{"escalation at generic", PathGeneric, esc, tok, `looks like an escalation: send it to POST /api/v1/escalations`},
		{"generic at escalations", PathEscalations, gen, tok, `looks like a generic signal: send it to POST /api/v1/signals`},
		{"generic at alertmanager", PathAlertmanager, gen, tok, `looks like a generic signal: send it to POST /api/v1/signals`},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, out := r.post(c.path, []byte(c.body), c.hdr)
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(out, c.want) {
				t.Errorf("%d %s; want 400 with %s", resp.StatusCode, out, c.want)
			}
			mustSpeakJSON(t, out)
		})
	}
	must(t, r.count() == 0, "refused deliveries stored %d signals", r.count())
}

// Messages from the parsers that endpoints do not reach (an SCC finding
// inside its push) name the path inside the payload too.
func TestSCCPathInMessage(t *testing.T) {
	finding := strings.Replace(string(fixture(t, "scc-finding.json")), `"createTime": "2025-06-06T03:12:46.540Z"`, `"createTime": "2025-06-06 03:12"`, 1)
	push, _ := json.Marshal(map[string]any{"message": map[string]any{"data": base64.StdEncoding.EncodeToString([]byte(finding))}})
	_, err := parseSCC(push)
	must(t, err != nil && strings.HasPrefix(err.Error(), `message.data.finding.createTime: "2025-06-06 03:12" is not an RFC 3339 time`), "%v", err)
	mustSpeakJSON(t, err.Error())
}

// Signal endpoints take JSON only, like the API: another Content-Type is
// 415, after the caller is verified (an unknown caller learns nothing).
func TestSignalEndpointsRefuseOtherMediaTypes(t *testing.T) {
	setSecrets(t)
	r := newRig(t, rigOpts{yaml: baseYAML})
	am := fixture(t, "alertmanager-v4.json")
	for _, c := range []struct {
		name, path, ctype string
		hdr               map[string]string
		status            int
	}{
		{"form", PathAlertmanager, "application/x-www-form-urlencoded", auth(testToken), 415},
		{"text", PathGeneric, "text/plain", auth(testToken), 415},
		{"none", PathEscalations, "", auth(testToken), 415},
		{"eventbridge as text", PathAWS, "text/plain", map[string]string{"X-Hikeshi-Secret": "aws-secret"}, 415},
		{"unknown caller first", PathAlertmanager, "text/plain", nil, 401},
		{"grafana unverified first", PathGrafana, "text/plain", map[string]string{grafanaSignatureHeader: "00ff"}, 401},
		{"json with charset", PathAlertmanager, "application/json; charset=utf-8", auth(testToken), 202},
	} {
		t.Run(c.name, func(t *testing.T) {
			hdr := map[string]string{"Content-Type": c.ctype}
			for k, v := range c.hdr {
				hdr[k] = v
			}
			resp, out := r.post(c.path, am, hdr)
			must(t, resp.StatusCode == c.status, "%d %s, want %d", resp.StatusCode, out, c.status)
			if c.status == 415 {
				must(t, strings.Contains(out, "unsupported_media_type") && strings.Contains(out, "application/json"), "%s", out)
			}
		})
	}
}

// hmacHex is Grafana's X-Grafana-Alerting-Signature of body.
func hmacHex(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}
