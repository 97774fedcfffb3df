package projector

import (
	"encoding/json"
	"fmt"
	"github.com/hikeshi/hikeshi/adapters/jiratest"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/services/signals/ingest"
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
	return alerts, groups
}

// The storm: every alert goes through the HTTP endpoint in group-sized
// batches, is stored exactly once (each is delivered twice, as by two
// Alertmanager HA peers), and yields one incident per group.
func TestStorm(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: storm test; runs in make test")
	}
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
					resp, _ := r.post(ingest.PathAlertmanager, body, auth(testToken))
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
	// Declared, and the records of the joins (100 to a record, one more where
	// a batch ends inside a group): bounded by groups, not alerts.
	must(t, events <= groups*(2+per/50), "%d incident events for %d groups", events, groups)
	t.Logf("%d alerts (%d deliveries of %d) accepted in %s; %d incidents, %d incident events; all handled after %s",
		alerts, 2*groups, per, accepted.Round(time.Millisecond), len(incidents), events, time.Since(start).Round(time.Millisecond))
}

func stormGroupBatch(g, groups, per int) []byte {
	alerts := make([]stormAlert, 0, per)
	for k := range per {
		i := g + k*groups
		alerts = append(alerts, stormAlert{Status: "firing", StartsAt: time.Unix(1750000000, 0).UTC(), Fingerprint: fmt.Sprintf("%016x", i),
			Labels: map[string]string{"alertname": fmt.Sprintf("DiskFull%d", g), "severity": "critical", "service": "search", "instance": fmt.Sprintf("node-%d", i)}})
	}
	return webhookV4(fmt.Sprintf(`{}:{alertname="DiskFull%d"}`, g), alerts)
}

// stormAlert is an alert of a storm's webhooks.
type stormAlert struct {
	Status      string            `json:"status"`
	Labels      map[string]string `json:"labels"`
	StartsAt    time.Time         `json:"startsAt"`
	Fingerprint string            `json:"fingerprint"`
}

// webhookV4 is an Alertmanager notification of alerts for groupKey.
func webhookV4(groupKey string, alerts []stormAlert) []byte {
	b, _ := json.Marshal(map[string]any{"version": "4", "status": "firing", "receiver": "hikeshi",
		"groupKey": groupKey, "alerts": alerts})
	return b
}

// The ticket storm: as in real storms, the same few alerts of each group
// fire again and again (a new start each time). Every occurrence is
// stored, but the tracker hears of each fingerprint once — found by
// label, created, enriched — and repeats inside the rate window are
// counted only, so its calls are bounded by fingerprints, not alerts.
func TestStormTicketsBoundedByFingerprints(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: ticket storm test; runs in make test")
	}
	setSecrets(t)
	t.Setenv("SIG_JIRA", "jira-token")
	fake := jiratest.New(t, "Basic YWxlcnRzQGFjbWUudGVzdDpqaXJhLXRva2Vu")
	r := newRig(t, rigOpts{yaml: strings.Replace(jiraYAML(fake.URL), `'signal.kind == "finding"'`, `'signal.source == "alertmanager"'`, 1)})
	alerts, groups := stormSize(t)
	alerts, groups = alerts/5, groups/5 // every alert is a ticket step: keep the suite quick
	const fps = 5                       // distinct alerts per group
	per := alerts / groups
	r.run()
	var failed atomic.Int64
	var wg sync.WaitGroup
	jobs := make(chan int)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for g := range jobs {
				if resp, _ := r.post(ingest.PathAlertmanager, repeatingBatch(g, per, fps), auth(testToken)); resp.StatusCode != http.StatusAccepted {
					failed.Add(1)
				}
			}
		}()
	}
	for g := range groups {
		jobs <- g
	}
	close(jobs)
	wg.Wait()
	must(t, failed.Load() == 0, "%d deliveries not accepted", failed.Load())
	must(t, r.count() == uint64(alerts), "stream holds %d signals, want %d", r.count(), alerts)
	r.waitHandled(uint64(alerts), 5*time.Minute)
	issues, calls := fake.Snapshot()
	distinct := groups * fps
	must(t, len(issues) == distinct, "%d issues for %d distinct fingerprints", len(issues), distinct)
	// Per fingerprint: search, create and the enrichment comment, then a
	// "fired again" comment for occurrences 2 to 4 (rate_limit max 4 per
	// hour in jiraYAML); the other per/fps-4 occurrences are counted only.
	must(t, per/fps > 4 && len(calls) <= (3+4-1)*distinct, "%d JIRA calls for %d alerts of %d fingerprints in %d groups", len(calls), alerts, distinct, groups)
	t.Logf("%d alerts, %d groups, %d fingerprints: %d JIRA calls, %d issues", alerts, groups, distinct, len(calls), len(issues))
}

// repeatingBatch is group g's notification: per alerts over fps
// fingerprints, each occurrence of a fingerprint starting later.
func repeatingBatch(g, per, fps int) []byte {
	alerts := make([]stormAlert, 0, per)
	for k := range per {
		alerts = append(alerts, stormAlert{Status: "firing", StartsAt: time.Unix(1750000000+int64(k/fps)*60, 0).UTC(),
			Fingerprint: fmt.Sprintf("g%04d-f%d", g, k%fps),
			Labels:      map[string]string{"alertname": fmt.Sprintf("Backlog%d", k%fps), "severity": "high", "queue": fmt.Sprintf("q%d", g)}})
	}
	return webhookV4(fmt.Sprintf(`{}:{queue="q%d"}`, g), alerts)
}
