package ingest

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/hikeshi/hikeshi/events"
)

// amJSON is parseAlertmanager without the scanner.
func amJSON(b []byte, source string) ([]events.Signal, error) {
	var p amPayload
	if err := decode(b, &p, false); err != nil {
		return nil, err
	}
	return p.signals(source)
}

// sameAsJSON checks that where scanAlertmanager accepts b, it reads what
// encoding/json reads, and that parseAlertmanager answers as without the
// scanner either way; it reports whether the scanner accepted.
func sameAsJSON(t testing.TB, b []byte) bool {
	t.Helper()
	var fast amPayload
	scanned := scanAlertmanager(b, &fast)
	if scanned {
		var slow amPayload
		if err := decode(b, &slow, false); err != nil {
			t.Fatalf("scanned what encoding/json refuses (%v): %q", err, b)
		}
		must(t, reflect.DeepEqual(fast, slow), "scanned %+v, encoding/json %+v: %q", fast, slow, b)
	}
	for _, source := range []string{"alertmanager", "grafana"} {
		got, err := parseAlertmanager(b, source)
		want, wantErr := amJSON(b, source)
		must(t, fmt.Sprint(err) == fmt.Sprint(wantErr) && reflect.DeepEqual(got, want),
			"%s: %+v, %v; encoding/json %+v, %v: %q", source, got, err, want, wantErr, b)
	}
	return scanned
}

// amBody is a delivery of the given alerts, each given by its fields.
func amBody(alerts ...string) string {
	return `{"version":"4","groupKey":"g","alerts":[{` + strings.Join(alerts, "},{") + `}]}`
}

// amMin are the fields an alert needs.
const amMin = `"status":"firing","startsAt":"2025-06-04T11:02:30Z","fingerprint":"f"`

// amCases are what the scanner reads (scanned) and what it leaves to
// encoding/json, for whatever reason.
var amCases = []struct {
	name, body string
	scanned    bool
}{
	{"escapes", amBody(amMin + `,"labels":{"alertname":"a\"b\\c\/d\b\f\n\r\t","k\u0065y":"\u00e9\u2028\u0000"}`), true},
	{"surrogates", amBody(amMin + `,"annotations":{"summary":"\ud83d\udd25 \ud800 \ud800x \udc00\ud800 \ud800\ud800\udc00 \ud800\u0041 \uDBFF\uDFFF"}`), true},
	{"raw unicode", amBody(amMin + `,"labels":{"alertname":"ディスク満杯 🔥","é":"\u2028"}`), true},
	{"escaped field names", `{"\u0076ersion":"4","groupKey":"{}:{alertname=\"X\"}","alerts":[{"st\u0061tus":"resolved","startsAt":"2025-06-04T11:02:30Z","fingerprint":"f"}]}`, true},
	{"empty maps and strings", amBody(amMin + `,"labels":{},"annotations":{"":""},"generatorURL":""`), true},
	{"repeated label", amBody(amMin + `,"labels":{"severity":"low","severity":"critical"}`), true},
	{"unknown fields", `{"version":"4","groupKey":"g","truncatedAlerts":0,"orgId":-1.5e+3,"n":123456789012345678901234567890E999,"title":"[FIRING:1]","state":"alerting","x":[[],{},[{"a":[null,true,false]}]],` +
		`"alerts":[{"status":"firing","startsAt":"2025-06-04T11:02:30Z","fingerprint":"f","values":{"B":44.23943737541908,"C":1,"D":0,"E":-0.0e-0},` +
		`"valueString":"[ var='B' labels={} value=44 ]","imageURL":"https://x.test/i.png","statusx":"y","labelsX":{"a":"\ud800\n"}}]}`, true},
	{"whitespace", " \r\n\t{ \"version\" :\t\"4\" ,\n\"groupKey\" : \"g\" , \"alerts\" : [ { \"status\" : \"firing\" , \"startsAt\" : \"2025-06-04T11:02:30Z\" , \"fingerprint\" : \"f\" , \"labels\" : { } } ] , \"groupLabels\" : { \"a\" : \"b\" } } \n", true},
	{"times", amBody(`"status":"firing","fingerprint":"a","startsAt":"2021-10-12T09:51:03.157076+02:00","endsAt":"0001-01-01T00:00:00Z"`,
		`"status":"resolved","fingerprint":"b","startsAt":"2025-06-04T11:02:30.123456789-07:00","endsAt":"2025-06-04T23:59:59.5+14:00"`,
		`"status":"resolved","fingerprint":"c","startsAt":"2025-06-04T11:02:30.1Z","endsAt":"2025-06-04T11:12:30.000000001Z"`), true},
	{"urls", amBody(amMin + `,"generatorURL":"http://p:9090/graph?g0.expr=up\u003d\u003d0\u0026g0.tab=1","silenceURL":"https://g/s","dashboardURL":"https://g/d","panelURL":"ftp://g/p","annotations":{"runbook_url":"https://r"}`), true},
	{"nesting", amBody(amMin + `,"values":` + strings.Repeat(`{"a":[`, 30) + strings.Repeat("]}", 30)), true},
	{"no alerts", `{"version":"4","groupKey":"g","alerts":[]}`, true},
	{"wrong version", strings.Replace(amBody(amMin), `"4"`, `"3"`, 1), true},
	{"no group key", strings.Replace(amBody(amMin), `"groupKey":"g",`, ``, 1), true},
	{"bad status", amBody(`"status":"gone","startsAt":"2025-06-04T11:02:30Z","fingerprint":"f"`), true},
	{"no start", amBody(`"status":"firing","fingerprint":"f"`), true},
	{"no fingerprint", amBody(`"status":"firing","startsAt":"2025-06-04T11:02:30Z"`), true},

	{"null map", amBody(amMin + `,"labels":null`), false},
	{"null string", amBody(amMin + `,"generatorURL":null`), false},
	{"null time", amBody(amMin + `,"endsAt":null`), false},
	{"null alerts", `{"version":"4","groupKey":"g","alerts":null}`, false},
	{"null alert", `{"version":"4","groupKey":"g","alerts":[null]}`, false},
	{"null body", `null`, false},
	{"array body", `[]`, false},
	{"repeated field", amBody(amMin + `,"status":"resolved"`), false},
	{"repeated labels", amBody(amMin + `,"labels":{"a":"1"},"labels":{"b":"2"}`), false},
	{"repeated alerts", strings.TrimSuffix(amBody(amMin), "}") + `,"alerts":[]}`, false},
	{"key case", amBody(amMin + `,"Labels":{"a":"1"}`), false},
	{"key upper case", strings.Replace(amBody(amMin), `"groupKey"`, `"GROUPKEY"`, 1), false},
	{"key Unicode fold", strings.Replace(amBody(amMin), `"groupKey"`, `"group\u212aey"`, 1), false},
	{"key long s", strings.Replace(amBody(amMin), `"status"`, `"ſtatus"`, 1), false},
	{"number for string", strings.Replace(amBody(amMin), `"4"`, `4`, 1), false},
	{"number label", amBody(amMin + `,"labels":{"a":1}`), false},
	{"bool label", amBody(amMin + `,"labels":{"a":true}`), false},
	{"trailing data", amBody(amMin) + ` {}`, false},
	{"trailing garbage", amBody(amMin) + `x`, false},
	{"invalid UTF-8", amBody(amMin + `,"labels":{"a":"` + "\xff" + `"}`), false},
	{"invalid UTF-8 ignored", amBody(amMin + `,"values":"` + "\xed\xa0\x80" + `"`), false},
	{"unknown escape", amBody(amMin + `,"labels":{"a":"\x"}`), false},
	{"quote escape", amBody(amMin + `,"labels":{"a":"\'"}`), false},
	{"short \\u", amBody(amMin + `,"labels":{"a":"\u12"}`), false},
	{"control character", amBody(amMin + `,"labels":{"a":"` + "\t" + `"}`), false},
	{"escaped time", amBody(amMin + `,"endsAt":"2025-01-01T00:00:00\u005a"`), false},
	{"bad time", amBody(amMin + `,"endsAt":"2025-13-01T00:00:00Z"`), false},
	{"leading zero", amBody(amMin + `,"values":{"a":01}`), false},
	{"bare minus", amBody(amMin + `,"values":-`), false},
	{"bare point", amBody(amMin + `,"values":1.`), false},
	{"bare exponent", amBody(amMin + `,"values":1e+`), false},
	{"plus sign", amBody(amMin + `,"values":+1`), false},
	{"trailing comma", amBody(amMin + `,"values":[1,]`), false},
	{"missing colon", amBody(amMin + `,"values":{"a" 1}`), false},
	{"short literal", amBody(amMin + `,"values":tru`), false},
	{"long literal", amBody(amMin + `,"values":nulll`), false},
	{"deep nesting", amBody(amMin + `,"values":` + strings.Repeat("[", 100) + strings.Repeat("]", 100)), false},
	{"alert not an object", `{"version":"4","groupKey":"g","alerts":[1]}`, false},
	{"not closed", amBody(amMin)[:40], false},
}

func TestScanAlertmanagerAgreesWithJSON(t *testing.T) {
	for _, name := range []string{"alertmanager-v4.json", "grafana.json"} {
		must(t, sameAsJSON(t, fixture(t, name)), "%s not scanned", name)
	}
	for _, c := range amCases {
		t.Run(c.name, func(t *testing.T) {
			must(t, sameAsJSON(t, []byte(c.body)) == c.scanned, "scanned is not %v: %s", c.scanned, c.body)
		})
	}
}
