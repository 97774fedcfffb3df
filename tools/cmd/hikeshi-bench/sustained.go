package main

// The sustained signals scenario: distinct alerts, one per request, at the
// highest rate the client reaches for a while (60 s by default), to the
// hub's Alertmanager webhook and to Alertmanager's own API in the same run,
// from the same clients: wrk with wrk/alerts.lua (an outside load
// generator) and this program's own (in a process of its own too). During the hub's wrk run the signals
// projector's lag and the process's memory are sampled every second.

import (
	"bufio"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/hub"
	"github.com/hikeshi/hikeshi/services/signals/projector"
)

//go:embed wrk/alerts.lua
var alertsLua []byte

type sustainedConfig struct {
	duration    time.Duration
	connections int
	cpuProfile  string // prefix of the profiles of the hub's wrk runs
	// liveEvery, when set, also reads the live heap (after a collection)
	// this often during the hub's wrk run.
	liveEvery  time.Duration
	memProfile string // heap profile at the end of the hub's wrk run
}

// wrkResult is the line wrk/alerts.lua prints at the end.
type wrkResult struct {
	requests, non2xx, errors int
	seconds, p50, p99        float64
}

func (r wrkResult) rate() float64 { return float64(r.requests-r.non2xx-r.errors) / r.seconds }

func sustainedScenario(ctx context.Context, cfg config, run int, col *collector) error {
	const sc = "sustained"
	su := cfg.sustained
	dir, err := tempDir("sustained")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	script := filepath.Join(dir, "alerts.lua")
	if err := os.WriteFile(script, alertsLua, 0o600); err != nil {
		return err
	}
	h, stopHub, err := startSignalsHub(ctx, cfg)
	if err != nil {
		return err
	}
	defer stopHub()
	url := "http://" + h.Addr() + "/api/v1/signals/alertmanager"

	progress("sustained run %d: wrk on the hub for %s", run, su.duration)
	var res wrkResult
	samples, err := sampling(ctx, h, su.liveEvery, func() error {
		stopProfile, err := startCPUProfile(su.cpuProfile, fmt.Sprintf(".%d.cpu", run))
		if err != nil {
			return err
		}
		defer stopProfile()
		res, err = runWrk(ctx, script, url, su, "webhook", signalsToken, fmt.Sprint(run, time.Now().Unix()%100000))
		return err
	})
	if err != nil {
		return err
	}
	col.add(sc, "hub wrk", "alerts/s", res.rate())
	col.add(sc, "hub wrk p99", "ms", res.p99)
	col.add(sc, "hub wrk refused", "count", float64(res.non2xx+res.errors))
	col.add(sc, "lag p99", "signals", samples.lagP99())
	col.add(sc, "lag end", "signals", samples.last().lag)
	drain := time.Now()
	if err := waitSignalsDrained(ctx, h); err != nil {
		return err
	}
	col.add(sc, "drain", "s", time.Since(drain).Seconds())
	// Memory once the first quarter has filled the caches, and at the end.
	q := samples.at(su.duration / 4)
	col.add(sc, "rss 1/4", "MiB", q.rss)
	col.add(sc, "rss end", "MiB", samples.last().rss)
	col.add(sc, "heap 1/4", "MiB", q.heap)
	col.add(sc, "heap end", "MiB", samples.last().heap)
	progress("sustained run %d: during the hub's wrk run: %s", run, samples.series(10))
	if su.memProfile != "" {
		runtime.GC()
		if err := writeHeapProfile(fmt.Sprintf("%s.%d.heap", su.memProfile, run)); err != nil {
			return err
		}
	}

	progress("sustained run %d: the harness's client on the hub for %s", run, su.duration)
	hubRate, err := harnessLoad(ctx, url, "webhook", signalsToken, 1000+run, su)
	if err != nil {
		return err
	}
	col.add(sc, "hub harness", "alerts/s", hubRate)

	am, stopAM, err := startAlertmanager(ctx, cfg)
	if errors.Is(err, errNoAlertmanager) {
		progress("sustained: Alertmanager baseline skipped: %v (apt-get install -y prometheus-alertmanager)", err)
		return nil
	}
	if err != nil {
		return err
	}
	defer stopAM()
	progress("sustained run %d: wrk and the harness's client on Alertmanager, %s each", run, su.duration)
	amRes, err := runWrk(ctx, script, am+"/api/v2/alerts", su, "v2", "", fmt.Sprint(run, time.Now().Unix()%100000))
	if err != nil {
		return err
	}
	col.add(sc, "am wrk", "alerts/s", amRes.rate())
	col.add(sc, "am wrk p99", "ms", amRes.p99)
	amRate, err := harnessLoad(ctx, am+"/api/v2/alerts", "v2", "", 2000+run, su)
	if err != nil {
		return err
	}
	col.add(sc, "am harness", "alerts/s", amRate)
	progress("sustained run %d: hub %.0f alerts/s (wrk), %.0f (harness); Alertmanager %.0f (wrk), %.0f (harness); lag p99 %.0f, rss %.0f → %.0f MiB",
		run, res.rate(), hubRate, amRes.rate(), amRate, samples.lagP99(), q.rss, samples.last().rss)
	return nil
}

// harnessLoad runs this program's own client (runSustainedClient) in a
// process of its own, as wrk is: inside the bench's process it would share
// the in-process hub's threads and heap, and not Alertmanager's.
func harnessLoad(ctx context.Context, url, format, token string, seed int, su sustainedConfig) (float64, error) {
	cmd := exec.CommandContext(ctx, os.Args[0], "-sustained-client", url, "-sustained-client-format", format,
		"-sustained-client-seed", strconv.Itoa(seed), "-sustained-duration", su.duration.String(),
		"-sustained-connections", strconv.Itoa(su.connections))
	cmd.Env = append(os.Environ(), sustainedClientToken+"="+token)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return 0, fmt.Errorf("the harness's client: %w", err)
	}
	v, ok := strings.CutPrefix(strings.TrimSpace(string(out)), "alerts/s=")
	rate, err := strconv.ParseFloat(v, 64)
	if !ok || err != nil {
		return 0, fmt.Errorf("the harness's client printed %q", out)
	}
	return rate, nil
}

// sustainedClientToken names the variable that gives the client its
// bearer token (none when empty).
const sustainedClientToken = "HIKESHI_BENCH_CLIENT_TOKEN"

// runSustainedClient posts distinct alerts (format webhook or v2) to url
// for su.duration and prints the rate accepted.
func runSustainedClient(url, format string, seed int, su sustainedConfig) error {
	body := webhook
	if format == "v2" {
		body = v2alerts
	}
	var hdr map[string]string
	if token := os.Getenv(sustainedClientToken); token != "" {
		hdr = map[string]string{"Authorization": "Bearer " + token}
	}
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 2 * su.connections, DisableCompression: true}}
	start := time.Now().UTC().Truncate(time.Second)
	rate, err := loadFor(context.Background(), client, url, hdr, su, body, func(i int) amAlert { return stormAlert(seed, i, start) })
	if err != nil {
		return err
	}
	fmt.Printf("alerts/s=%f\n", rate)
	return nil
}

// runWrk runs wrk with the alerts script against url and reads its result.
func runWrk(ctx context.Context, script, url string, su sustainedConfig, format, token, tag string) (wrkResult, error) {
	cmd := exec.CommandContext(ctx, "wrk", "-t2", "-c"+strconv.Itoa(su.connections), "-d"+strconv.Itoa(int(su.duration.Seconds()))+"s",
		"--timeout", "10s", "-s", script, url, "--", format, token, tag)
	out, err := cmd.Output()
	if err != nil {
		return wrkResult{}, fmt.Errorf("wrk: %w (is wrk installed? apt-get install -y wrk)", err)
	}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || f[0] != "wrk-alerts" {
			continue
		}
		var r wrkResult
		for _, kv := range f[1:] {
			k, v, _ := strings.Cut(kv, "=")
			x, _ := strconv.ParseFloat(v, 64)
			switch k {
			case "requests":
				r.requests = int(x)
			case "non2xx":
				r.non2xx = int(x)
			case "errors":
				r.errors = int(x)
			case "seconds":
				r.seconds = x
			case "p50_ms":
				r.p50 = x
			case "p99_ms":
				r.p99 = x
			}
		}
		if r.seconds > 0 {
			return r, nil
		}
	}
	return wrkResult{}, fmt.Errorf("wrk printed no result line: %s", out)
}

// loadFor posts one distinct alert per request from su.connections
// workers for su.duration and returns the alerts/s accepted.
func loadFor(ctx context.Context, client *http.Client, url string, hdr map[string]string, su sustainedConfig,
	body func(alerts []amAlert) []byte, alert func(i int) amAlert) (float64, error) {
	lctx, cancel := context.WithTimeout(ctx, su.duration)
	defer cancel()
	var next, ok atomic.Int64
	var wg sync.WaitGroup
	var firstErr error
	var once sync.Once
	start := time.Now()
	for range su.connections {
		wg.Go(func() {
			for lctx.Err() == nil {
				i := int(next.Add(1))
				if err := postOnce(lctx, client, url, hdr, body([]amAlert{alert(i)})); err != nil {
					if lctx.Err() == nil {
						once.Do(func() { firstErr = err })
					}
					return
				}
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	return float64(ok.Load()) / time.Since(start).Seconds(), firstErr
}

type sample struct {
	at        time.Duration
	lag       float64
	rss, heap float64
	live      float64 // the heap after a collection; 0 when not read
}

type samples []sample

// sampling runs f while sampling, every second, the signals projector's
// lag and the process's memory.
func sampling(ctx context.Context, h *hub.Hub, liveEvery time.Duration, f func() error) (samples, error) {
	var out samples
	stop := make(chan struct{})
	done := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				lag, _ := signalsLag(ctx, h)
				rss, heap := memoryNow()
				x := sample{at: time.Since(start), lag: float64(lag), rss: rss, heap: heap}
				if liveEvery > 0 && len(out)%int(max(1, liveEvery/time.Second)) == 0 {
					x.live = heapMiB()
				}
				out = append(out, x)
			}
		}
	}()
	err := f()
	close(stop)
	<-done
	if len(out) == 0 {
		rss, heap := memoryNow()
		out = append(out, sample{rss: rss, heap: heap})
	}
	return out, err
}

func (s samples) last() sample { return s[len(s)-1] }

// at is the first sample taken at or after d.
func (s samples) at(d time.Duration) sample {
	for _, x := range s {
		if x.at >= d {
			return x
		}
	}
	return s.last()
}

// series lists the projector's lag, the heap and the resident set at n
// evenly spread samples, to show whether they level off (memory once the
// dedup window is full).
func (s samples) series(n int) string {
	var b strings.Builder
	step := max(1, len(s)/n)
	for i := step - 1; i < len(s); i += step {
		fmt.Fprintf(&b, " %.0fs lag %.0f heap %.0f rss %.0f MiB;", s[i].at.Seconds(), s[i].lag, s[i].heap, s[i].rss)
	}
	for _, x := range s {
		if x.live > 0 {
			fmt.Fprintf(&b, " %.0fs live heap %.0f MiB;", x.at.Seconds(), x.live)
		}
	}
	return strings.TrimSuffix(strings.TrimSpace(b.String()), ";")
}

func (s samples) lagP99() float64 {
	lags := make([]float64, len(s))
	for i, x := range s {
		lags[i] = x.lag
	}
	return percentile(lags, 0.99)
}

// memoryNow is the process's resident set and Go heap in use, in MiB,
// without forcing a collection (memory does, which would slow the load).
func memoryNow() (rss, heap float64) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return rssMiB(), float64(ms.HeapInuse+ms.StackInuse) / (1 << 20)
}

// signalsLag is how many stored signals the projector has not yet
// acknowledged.
func signalsLag(ctx context.Context, h *hub.Hub) (uint64, error) {
	c, err := h.Bus().JS.Consumer(ctx, events.SignalStream, projector.Durable)
	if err != nil {
		return 0, err
	}
	info, err := c.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.NumPending + uint64(info.NumAckPending), nil
}

func waitSignalsDrained(ctx context.Context, h *hub.Hub) error {
	for {
		lag, err := signalsLag(ctx, h)
		if err == nil && lag == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
