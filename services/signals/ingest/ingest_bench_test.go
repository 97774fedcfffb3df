package ingest

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/events"
)

// BenchmarkIngest is the HTTP handler's cost per request, without the
// network: verify, parse, encode and store on a real embedded JetStream.
func BenchmarkIngest(b *testing.B) {
	for _, per := range []int{1, 100} {
		b.Run(fmt.Sprintf("alerts=%d", per), func(b *testing.B) {
			b.Setenv("SIG_TOKEN", testToken)
			r := newRig(b, rigOpts{yaml: "signals:\n  token_env: SIG_TOKEN\n"})
			h := r.h.Routes()["POST "+PathAlertmanager]
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				body := benchBatch(i, per)
				req := httptest.NewRequest(http.MethodPost, PathAlertmanager, bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+testToken)
				req.Header.Set("Content-Type", "application/json")
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != http.StatusAccepted {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
			}
			b.ReportMetric(float64(b.N*per)/b.Elapsed().Seconds(), "alerts/s")
		})
	}
}

func benchBatch(n, per int) []byte {
	var buf bytes.Buffer
	fmt.Fprintf(&buf, `{"version":"4","status":"firing","receiver":"hikeshi","groupKey":"{}:{alertname=\"DiskFull%d\"}","alerts":[`, n)
	for k := range per {
		if k > 0 {
			buf.WriteByte(',')
		}
		fmt.Fprintf(&buf, `{"status":"firing","labels":{"alertname":"DiskFull%d","severity":"critical","service":"search","instance":"node-%d"},"annotations":{"summary":"disk almost full"},"startsAt":%q,"fingerprint":"%08x%08x"}`,
			n, k, time.Unix(1750000000, 0).UTC().Format(time.RFC3339), n, k)
	}
	buf.WriteString("]}")
	return buf.Bytes()
}

// BenchmarkParseAlertmanager compares the scanner with encoding/json on
// the body BenchmarkIngest sends.
func BenchmarkParseAlertmanager(b *testing.B) {
	for _, per := range []int{1, 100} {
		body := benchBatch(0, per)
		for _, p := range []struct {
			name  string
			parse func([]byte, string) ([]events.Signal, error)
		}{{"scan", parseAlertmanager}, {"json", amJSON}} {
			b.Run(fmt.Sprintf("alerts=%d/%s", per, p.name), func(b *testing.B) {
				b.SetBytes(int64(len(body)))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := p.parse(body, "alertmanager"); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
