package main

// The signals scenario: alerts/s accepted over HTTP (single-alert requests
// and batches of 100), ingest latency, alert → incident latency and the
// hub's heap after the storm, beside the raw JetStream publish rate and
// Prometheus Alertmanager's own ingest (POST /api/v2/alerts), measured in
// the same run with the same load generator.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hikeshi/hikeshi/events"
	hkconfig "github.com/hikeshi/hikeshi/services/config"
	"github.com/hikeshi/hikeshi/services/hub"
	"github.com/hikeshi/hikeshi/services/module"
	"github.com/hikeshi/hikeshi/services/signals"
	"github.com/nats-io/nats.go"
)

const signalsToken = "bench-signals-token"

const signalsYAML = `
signals:
  token_env: HIKESHI_BENCH_SIGNALS_TOKEN
  count_every: 100
  rules:
    - name: page
      when: 'signal.severity == "critical"'
      route: incident
`

// alertmanagerBinary is where Debian's prometheus-alertmanager installs it.
var alertmanagerBinary = []string{"/usr/bin/prometheus-alertmanager", "/usr/bin/alertmanager"}

type amAlert struct {
	Status      string            `json:"status,omitempty"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    time.Time         `json:"startsAt"`
	Fingerprint string            `json:"fingerprint,omitempty"`
}

// stormAlert is alert i of the storm; group g = i / 100 (100 per group).
func stormAlert(run, i int, start time.Time) amAlert {
	g := i / 100
	return amAlert{Status: "firing", StartsAt: start, Fingerprint: fmt.Sprintf("%08x%08x", run, i),
		Labels: map[string]string{"alertname": fmt.Sprintf("DiskFull%d", g), "severity": "critical",
			"service": "search", "instance": fmt.Sprintf("node-%d", i)},
		Annotations: map[string]string{"summary": "disk almost full"}}
}

// webhook wraps alerts as Alertmanager's webhook v4 for one group.
func webhook(alerts []amAlert) []byte {
	b, _ := json.Marshal(map[string]any{"version": "4", "status": "firing", "receiver": "hikeshi",
		"groupKey": `{}:{alertname="` + alerts[0].Labels["alertname"] + `"}`, "alerts": alerts})
	return b
}

// v2alerts is Alertmanager's own API body.
func v2alerts(alerts []amAlert) []byte {
	out := make([]map[string]any, len(alerts))
	for i, a := range alerts {
		out[i] = map[string]any{"labels": a.Labels, "annotations": a.Annotations, "startsAt": a.StartsAt}
	}
	b, _ := json.Marshal(out)
	return b
}

// load posts n alerts in requests of size batch from c workers and
// returns alerts/s and each request's latency.
func load(ctx context.Context, client *http.Client, url string, hdr map[string]string, n, batch, c int,
	body func(alerts []amAlert) []byte, alert func(i int) amAlert) (float64, []time.Duration, error) {
	reqs := (n + batch - 1) / batch
	bodies := make([][]byte, reqs)
	for r := range reqs {
		var as []amAlert
		for i := r * batch; i < min(n, (r+1)*batch); i++ {
			as = append(as, alert(i))
		}
		bodies[r] = body(as)
	}
	var next atomic.Int64
	lat := make([]time.Duration, reqs)
	var firstErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				r := int(next.Add(1)) - 1
				if r >= reqs || ctx.Err() != nil {
					return
				}
				t := time.Now()
				err := postOnce(ctx, client, url, hdr, bodies[r])
				lat[r] = time.Since(t)
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	return float64(n) / time.Since(start).Seconds(), lat, firstErr
}

func postOnce(ctx context.Context, client *http.Client, url string, hdr map[string]string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("POST %s: %s: %s", url, resp.Status, b)
	}
	return nil
}

func pct(d []time.Duration, p float64) float64 {
	s := slices.Clone(d)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return float64(s[min(len(s)-1, int(float64(len(s))*p))].Microseconds()) / 1000
}

func signalsScenario(ctx context.Context, cfg config, run int, col *collector) error {
	const sc = "signals"
	n := cfg.n
	// Raw: the same normalised signals published straight to the stream.
	b, err := startBus(ctx, cfg, "signals-raw")
	if err != nil {
		return err
	}
	rawRate, err := rawSignals(ctx, b, n, cfg.c)
	b.close()
	if err != nil {
		return err
	}
	col.add(sc, "raw", "alerts/s", rawRate)

	h, stopHub, err := startSignalsHub(ctx, cfg)
	if err != nil {
		return err
	}
	defer stopHub()
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 2 * cfg.c, DisableCompression: true}}
	url := "http://" + h.Addr() + "/api/v1/signals/alertmanager"
	hdr := map[string]string{"Authorization": "Bearer " + signalsToken}
	start := time.Now().UTC().Truncate(time.Second)
	// Single alerts: half the storm; batches of 100: the other half.
	half := n / 2
	progress("signals run %d: %d single-alert requests", run, half)
	single, lat, err := load(ctx, client, url, hdr, half, 1, cfg.c, webhook, func(i int) amAlert { return stormAlert(run, i, start) })
	if err != nil {
		return err
	}
	col.add(sc, "hub 1", "alerts/s", single)
	col.add(sc, "hub 1 p50", "ms", pct(lat, 0.50))
	col.add(sc, "hub 1 p99", "ms", pct(lat, 0.99))
	progress("signals run %d: %d alerts in batches of 100", run, n-half)
	batch, blat, err := load(ctx, client, url, hdr, n-half, 100, cfg.c, webhook, func(i int) amAlert { return stormAlert(run, half+i, start) })
	if err != nil {
		return err
	}
	col.add(sc, "hub 100", "alerts/s", batch)
	col.add(sc, "hub 100 p99", "ms", pct(blat, 0.99))

	// Alert → incident: a new group's first alert until the incident is
	// listed by the API (stored, evaluated, declared, projected).
	var probes []time.Duration
	base, err := countIncidents(ctx, client, "http://"+h.Addr())
	if err != nil {
		return err
	}
	// Wait for the storm's groups first, so probes measure an idle hub.
	groups := (n + 99) / 100
	for base < groups {
		time.Sleep(50 * time.Millisecond)
		if base, err = countIncidents(ctx, client, "http://"+h.Addr()); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	for p := range 20 {
		a := stormAlert(run, 1_000_000_000+p*100, start)
		t := time.Now()
		if err := postOnce(ctx, client, url, hdr, webhook([]amAlert{a})); err != nil {
			return err
		}
		for {
			k, err := countIncidents(ctx, client, "http://"+h.Addr())
			if err != nil {
				return err
			}
			if k > base+p {
				break
			}
			time.Sleep(time.Millisecond)
		}
		probes = append(probes, time.Since(t))
	}
	col.add(sc, "→incident", "ms", pct(probes, 0.5))
	col.add(sc, "heap", "MiB", heapMiB())
	// Settled: once the server has dropped the block caches of the storm
	// (10 s without access), what is left is what the hub keeps; only
	// JetStream's Msg-Id map for the 2-minute dedup window still grows
	// with the alerts received in it.
	sleepCtx(ctx, cacheExpiry)
	col.add(sc, "heap settled", "MiB", heapMiB())

	// Alertmanager's own ingest, same load generator, loopback.
	am, stop, err := startAlertmanager(ctx, cfg)
	if errors.Is(err, errNoAlertmanager) {
		if run == 1 {
			progress("signals: Alertmanager baseline skipped: %v (apt-get install -y prometheus-alertmanager)", err)
		}
		return nil
	}
	if err != nil {
		return err
	}
	defer stop()
	amURL := am + "/api/v2/alerts"
	s1, l1, err := load(ctx, client, amURL, nil, half, 1, cfg.c, v2alerts, func(i int) amAlert { return stormAlert(run, i, start) })
	if err != nil {
		return err
	}
	col.add(sc, "am 1", "alerts/s", s1)
	col.add(sc, "am 1 p50", "ms", pct(l1, 0.50))
	col.add(sc, "am 1 p99", "ms", pct(l1, 0.99))
	s100, l100, err := load(ctx, client, amURL, nil, n-half, 100, cfg.c, v2alerts, func(i int) amAlert { return stormAlert(run, half+i, start) })
	if err != nil {
		return err
	}
	col.add(sc, "am 100", "alerts/s", s100)
	col.add(sc, "am 100 p99", "ms", pct(l100, 0.99))
	return nil
}

// startSignalsHub runs a hub with the signals module (signalsYAML) in a
// temporary data dir until stop.
func startSignalsHub(ctx context.Context, cfg config) (h *hub.Hub, stop func(), err error) {
	os.Setenv("HIKESHI_BENCH_SIGNALS_TOKEN", signalsToken)
	file, err := hkconfig.Parse("bench.yaml", []byte(signalsYAML))
	if err != nil {
		return nil, nil, err
	}
	dir, err := tempDir("signals-hub")
	if err != nil {
		return nil, nil, err
	}
	h, err = hub.Start(ctx, hub.Config{DataDir: dir, Listen: "127.0.0.1:0", Logger: slog.Default(), File: file,
		Modules: []module.Module{signals.Module}})
	if err != nil {
		return nil, nil, err
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- h.Run(rctx) }()
	return h, func() {
		cancel()
		<-done
		if !cfg.keep {
			_ = os.RemoveAll(dir)
		}
	}, nil
}

// cacheExpiry is a little more than the server's block cache expiry.
const cacheExpiry = 12 * time.Second

// heapMiB is the heap in use after two collections (the second frees what
// sync.Pools dropped in the first).
func heapMiB() float64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return float64(ms.HeapAlloc) / (1 << 20)
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func countIncidents(ctx context.Context, client *http.Client, base string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/incidents?limit=100000", nil)
	if err != nil {
		return 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var out struct {
		Incidents []json.RawMessage `json:"incidents"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return 0, err
	}
	return len(out.Incidents), nil
}

// rawSignals publishes n signal envelopes to the SIGNALS stream from c
// writers, each waiting for its ack, as the ingest path does.
func rawSignals(ctx context.Context, b *bus, n, c int) (float64, error) {
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, c)
	per := split(n, c)
	offset := 0
	for w := range c {
		from, count := offset, per[w]
		offset += count
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := from; i < from+count; i++ {
				s := events.Signal{Source: "raw", Kind: "alert", Fingerprint: fmt.Sprint(i), Status: "firing", Title: "DiskFull",
					Severity: "critical", StartsAt: start, GroupKey: "g"}
				key := events.SignalKey(s.Source, s.Fingerprint, s.Status, s.StartsAt)
				env, err := events.New(key, &s, events.Meta{ID: key})
				if err != nil {
					errs <- err
					return
				}
				data, _ := env.Marshal()
				m := nats.NewMsg(events.SignalSubject("raw", "alert"))
				m.Data = data
				m.Header.Set(nats.MsgIdHdr, key)
				if _, err := b.js.PublishMsg(ctx, m); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return 0, err
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

var errNoAlertmanager = errors.New("prometheus-alertmanager is not installed")

// startAlertmanager runs Debian's Alertmanager on a free loopback port with
// a temporary storage path and a do-nothing receiver.
func startAlertmanager(ctx context.Context, cfg config) (string, func(), error) {
	bin := ""
	for _, p := range alertmanagerBinary {
		if _, err := os.Stat(p); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		return "", nil, errNoAlertmanager
	}
	dir, err := tempDir("alertmanager")
	if err != nil {
		return "", nil, err
	}
	conf := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(conf, []byte("route:\n  receiver: none\nreceivers:\n  - name: none\n"), 0o600); err != nil {
		return "", nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.CommandContext(ctx, bin, "--config.file="+conf, "--storage.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--cluster.listen-address=", "--log.level=error")
	cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if !cfg.keep {
			_ = os.RemoveAll(dir)
		}
	}
	base := "http://" + addr
	for deadline := time.Now().Add(10 * time.Second); ; {
		resp, err := http.Get(base + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return base, stop, nil
			}
		}
		if time.Now().After(deadline) {
			stop()
			return "", nil, fmt.Errorf("alertmanager did not become ready on %s", addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
