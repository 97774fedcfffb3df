package signals

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// stormSize is 10,000 alerts in 100 groups in the normal suite;
// HIKESHI_STORM=100000 runs the full storm (1,000 groups).
func stormSize(t *testing.T) (alerts, groups int) {
	alerts, groups = 10_000, 100
	if v := os.Getenv("HIKESHI_STORM"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 100 {
			t.Fatalf("HIKESHI_STORM=%q: want a number >= 100", v)
		}
		alerts, groups = n, n/100
	}
	if testing.Short() {
		alerts, groups = 2_000, 20
	}
	return alerts, groups
}

// The storm: every alert goes through the HTTP endpoint in group-sized
// batches, is stored exactly once (each is delivered twice, as by two
// Alertmanager HA peers), and yields one incident per group.
func TestStorm(t *testing.T) {
	setSecrets(t)
	r := newRig(t, rigOpts{yaml: incidentYAML})
	alerts, groups := stormSize(t)
	per := alerts / groups
	var failed atomic.Int64
	var wg sync.WaitGroup
	jobs := make(chan int)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for g := range jobs {
				// Alerts of group g are g, g+groups, …: send them as one
				// Alertmanager group notification of `per` alerts.
				body := stormGroupBatch(g, groups, per)
				for range 2 {
					resp, _ := r.post(PathAlertmanager, body, auth(testToken))
					if resp.StatusCode != http.StatusAccepted {
						failed.Add(1)
					}
				}
			}
		}()
	}
	start := time.Now()
	r.run()
	for g := range groups {
		jobs <- g
	}
	close(jobs)
	wg.Wait()
	accepted := time.Since(start)
	must(t, failed.Load() == 0, "%d deliveries not accepted", failed.Load())
	must(t, r.count() == uint64(alerts), "stream holds %d signals, want %d (every accepted alert exactly once)", r.count(), alerts)
	r.waitHandled(uint64(alerts), 5*time.Minute)
	incidents := r.incidents()
	must(t, len(incidents) == groups, "%d incidents for %d groups", len(incidents), groups)
	events := 0
	for _, evs := range incidents {
		events += len(evs)
	}
	// Declared, first, and one count every 50: bounded by groups.
	must(t, events <= groups*(2+per/50), "%d incident events for %d groups", events, groups)
	t.Logf("%d alerts (%d deliveries of %d) accepted in %s; %d incidents, %d incident events; all handled after %s",
		alerts, 2*groups, per, accepted.Round(time.Millisecond), len(incidents), events, time.Since(start).Round(time.Millisecond))
}

func stormGroupBatch(g, groups, per int) []byte {
	type alert struct {
		Status      string            `json:"status"`
		Labels      map[string]string `json:"labels"`
		StartsAt    time.Time         `json:"startsAt"`
		Fingerprint string            `json:"fingerprint"`
	}
	alerts := make([]alert, 0, per)
	for k := range per {
		i := g + k*groups
		alerts = append(alerts, alert{Status: "firing", StartsAt: time.Unix(1750000000, 0).UTC(), Fingerprint: fmt.Sprintf("%016x", i),
			Labels: map[string]string{"alertname": fmt.Sprintf("DiskFull%d", g), "severity": "critical", "service": "search", "instance": fmt.Sprintf("node-%d", i)}})
	}
	b, _ := json.Marshal(map[string]any{"version": "4", "status": "firing", "receiver": "hikeshi",
		"groupKey": fmt.Sprintf(`{}:{alertname="DiskFull%d"}`, g), "alerts": alerts})
	return b
}
