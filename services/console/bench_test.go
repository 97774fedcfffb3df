package console_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/hikeshi/hikeshi/services/hub"
)

// BenchmarkConsole measures the console on a hub with 10,000 incidents,
// one of them with 10,000 events: the time to answer the incidents list
// and the long incident's page (p50, p99, measured at the client over
// loopback), the weight of that page with its stylesheet and script, and
// the delay from a note appended through the API to its text shown in a
// connected browser. Run by make bench:
//
//	cd services && go test -run '^$' -bench Console -benchtime 1x ./console/
func BenchmarkConsole(b *testing.B) {
	for range b.N {
		benchConsole(b)
	}
}

const (
	benchIncidents = 10_000
	benchEvents    = 10_000
	benchRequests  = 200
	benchLive      = 40
)

func benchConsole(b *testing.B) {
	b.StopTimer()
	base, _ := startHubBus(b, hub.Config{})
	post := func(path string, body any) {
		raw, _ := json.Marshal(body)
		res, err := http.Post(base+path, "application/json", bytes.NewReader(raw))
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode >= 300 {
			b.Fatalf("%s: %d", path, res.StatusCode)
		}
	}
	parallel := func(n int, f func(i int)) {
		var wg sync.WaitGroup
		next := make(chan int)
		for range 8 {
			wg.Go(func() {
				for i := range next {
					f(i)
				}
			})
		}
		for i := range n {
			next <- i
		}
		close(next)
		wg.Wait()
	}
	start := time.Now()
	parallel(benchIncidents, func(i int) {
		post("/api/v1/incidents", map[string]any{"title": fmt.Sprintf("Incident %d", i), "service": fmt.Sprintf("svc%d", i%40),
			"severity": fmt.Sprintf("SEV%d", 1+i%5)})
	})
	parallel(benchEvents-1, func(i int) {
		post("/api/v1/incidents/INC-1/notes", map[string]string{"text": fmt.Sprintf("note %d", i)})
	})
	b.Logf("store: %d incidents, INC-1 with %d events, written in %s", benchIncidents, benchEvents, time.Since(start).Round(time.Second))
	get := func(path string) (time.Duration, int) {
		t0 := time.Now()
		res, err := http.Get(base + path)
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			b.Fatalf("%s: %d", path, res.StatusCode)
		}
		return time.Since(t0), int(n)
	}
	// The timeline projector catches up before anything is measured:
	// INC-1's last event is in the timeline.
	var inc struct{ Version uint64 }
	res, err := http.Get(base + "/api/v1/incidents/INC-1")
	if err != nil {
		b.Fatal(err)
	}
	_ = json.NewDecoder(res.Body).Decode(&inc)
	res.Body.Close()
	if res, err = http.Get(fmt.Sprintf("%s/api/v1/incidents/INC-1/timeline?after=%d&wait=30s", base, inc.Version-1)); err != nil {
		b.Fatal(err)
	}
	res.Body.Close()
	measure := func(path string) (p50, p99 time.Duration, size int) {
		ds := make([]time.Duration, benchRequests)
		for i := range ds {
			ds[i], size = get(path)
		}
		slices.Sort(ds)
		return ds[len(ds)/2], ds[len(ds)*99/100], size
	}
	b.StartTimer()
	l50, l99, _ := measure("/incidents?status=")
	p50, p99, pageBytes := measure("/incidents/INC-1")
	_, css := get("/static/console.css")
	_, js := get("/static/console.js")
	b.StopTimer()
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(l50), "list-p50-ms")
	b.ReportMetric(ms(l99), "list-p99-ms")
	b.ReportMetric(ms(p50), "incident-p50-ms")
	b.ReportMetric(ms(p99), "incident-p99-ms")
	b.ReportMetric(float64(pageBytes+css+js)/1024, "incident-page-KB")

	// The delay from append to shown, in a browser following INC-2.
	ctx := newTab(b, 1280, 900)
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/incidents/INC-2"), chromedp.WaitVisible(chromedp.ID("entries"))); err != nil {
		b.Fatal(err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](`document.getElementById("live-state").textContent.startsWith("Live")`)); err != nil {
		b.Fatal(err)
	}
	delays := make([]time.Duration, benchLive)
	for i := range delays {
		text := fmt.Sprintf("live note %d", i)
		t0 := time.Now()
		post("/api/v1/incidents/INC-2/notes", map[string]string{"text": text})
		if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](fmt.Sprintf(`document.getElementById("entries").textContent.includes(%q)`, text),
			chromedp.WithPollingInterval(5*time.Millisecond))); err != nil {
			b.Fatal(err)
		}
		delays[i] = time.Since(t0)
	}
	slices.Sort(delays)
	b.ReportMetric(ms(delays[len(delays)/2]), "live-p50-ms")
	b.ReportMetric(ms(delays[len(delays)*99/100]), "live-p99-ms")
}
