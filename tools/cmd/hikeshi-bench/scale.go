package main

// The scale scenario: the hub on a store of a year of incidents (by default
// 1,000,000 events over 20,000 incidents), beside a fresh hub with 1,000
// incidents and beside raw JetStream reads of the same stream, in the same
// run. The big store is built once through the command handler (so it has
// the snapshots a long-running hub has) and cached in a temp directory
// across runs; each run appends to it, so it grows a little.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/command"
	"github.com/hikeshi/hikeshi/services/hub"
	"github.com/hikeshi/hikeshi/services/incident"
	"github.com/hikeshi/hikeshi/services/timeline"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"
)

type scaleConfig struct {
	events, incidents int
	small             int // incidents of the fresh baseline hub
	writers           int
	duration          time.Duration
	bigDuration       time.Duration // of the appends on the big store (0: duration)
	subscribers       int
	probes            int // distinct incidents read cold, list calls
	dir               string
	memProfile        string // heap profile of the big hub at rest
	skipReads         bool   // leave out replay, verify and the raw reads (while iterating on the hub)
	appendProfile     string // CPU profile of the appends on the big store, and heap profile after them
	rest              time.Duration
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return pprof.WriteHeapProfile(f)
}

// startCPUProfile profiles the process into prefix+suffix until the
// returned function is called; nothing when prefix is empty.
func startCPUProfile(prefix, suffix string) (stop func(), err error) {
	if prefix == "" {
		return func() {}, nil
	}
	f, err := os.Create(prefix + suffix)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// scaleStore is where the big store is cached: one directory per size.
func (s scaleConfig) storeDir() string {
	return filepath.Join(s.dir, fmt.Sprintf("store-%d-%d", s.events, s.incidents))
}

func scaleScenario(ctx context.Context, cfg config, run int, col *collector) error {
	sc := cfg.scale
	dir := sc.storeDir()
	ids, err := ensureScaleStore(ctx, sc, dir)
	if err != nil {
		return fmt.Errorf("scale store: %w", err)
	}
	// The big hub first, so that its memory is measured in a process that
	// has not yet run a replay beside it.
	bigRate, err := scaleBigHub(ctx, sc, run, cfg.runs, dir, ids, col)
	if err != nil {
		return err
	}
	if !sc.skipReads {
		if err := scaleReads(ctx, sc, run, cfg.runs, dir, ids, col); err != nil {
			return err
		}
	}
	if err := scaleList(ctx, sc, run, cfg.runs, col); err != nil {
		return err
	}
	return scaleFreshHub(ctx, sc, run, cfg.runs, bigRate, col)
}

// ensureScaleStore builds the big store unless a complete one is cached,
// and returns its incident ids.
func ensureScaleStore(ctx context.Context, sc scaleConfig, dir string) ([]string, error) {
	idsFile := filepath.Join(dir, "incidents.txt")
	if b, err := os.ReadFile(idsFile); err == nil {
		progress("scale: using the store cached in %s", dir)
		return strings.Fields(string(b)), nil
	}
	_ = os.RemoveAll(dir)
	b, err := keptBus(ctx, dir)
	if err != nil {
		return nil, err
	}
	defer b.close()
	cases, err := natsjs.NewCases(ctx, b.js, "INC")
	if err != nil {
		return nil, err
	}
	h := command.New(b.store, cases, command.CacheSize(sc.incidents))
	start := time.Now()
	progress("scale: building %d events over %d incidents in %s (once; cached for later runs)", sc.events, sc.incidents, dir)
	ids := make([]string, sc.incidents)
	var done atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	const builders = 32
	text := noteText(200)
	for w := range builders {
		g.Go(func() error {
			var mine []string
			for i := w; i < sc.incidents; i += builders {
				st, err := h.Declare(gctx, incident.Declare{Title: "scale incident " + strconv.Itoa(i), Service: "bench", Severity: "SEV3", DeclaredBy: "bench"}, command.Meta{Actor: "bench"})
				if err != nil {
					return err
				}
				ids[i] = st.ID
				mine = append(mine, st.ID)
				done.Add(1)
			}
			notes := split(sc.events-sc.incidents, builders)[w]
			for k := range notes {
				if len(mine) == 0 {
					break
				}
				if _, err := h.Execute(gctx, mine[k%len(mine)], incident.AddNote{Text: text}, command.Meta{Actor: "bench"}); err != nil {
					return err
				}
				if n := done.Add(1); n%100_000 == 0 {
					progress("scale: %d events, %.0f events/s", n, float64(n)/time.Since(start).Seconds())
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	progress("scale: built %d events in %s", done.Load(), time.Since(start).Round(time.Second))
	if err := os.WriteFile(idsFile, []byte(strings.Join(ids, "\n")), 0o600); err != nil {
		return nil, err
	}
	return ids, nil
}

// scaleReads: replay of the whole stream against a raw ordered read, and
// the raw baseline of a cold incident read (one direct get).
func scaleReads(ctx context.Context, sc scaleConfig, run, runs int, dir string, ids []string, col *collector) error {
	b, err := keptBus(ctx, dir)
	if err != nil {
		return err
	}
	defer b.close()
	b.dir = dir
	raw, err := readRaw(ctx, b)
	if err != nil {
		return fmt.Errorf("read raw: %w", err)
	}
	col.add("scale", "read raw", "events/s", raw)
	start := time.Now()
	replay, err := readReplay(ctx, b)
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	col.add("scale", "replay", "events/s", replay)
	col.add("scale", "replay time", "s", time.Since(start).Seconds())
	progress("run %d/%d scale read raw %.0f events/s, replay %.0f events/s (%s)", run, runs, raw, replay, time.Since(start).Round(time.Millisecond))
	start = time.Now()
	verify, err := verifyChains(ctx, b)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	col.add("scale", "verify", "events/s", verify)
	col.add("scale", "verify time", "s", time.Since(start).Seconds())
	progress("run %d/%d scale verify %.0f events/s (%s)", run, runs, verify, time.Since(start).Round(time.Millisecond))

	return nil
}

// probePair calls a and b on distinct random incidents, in turns, n each.
func probePair(ctx context.Context, n int, ids []string, a, b func(context.Context, string) error) (summary, summary, error) {
	perm := rand.Perm(len(ids))
	n = min(n, len(ids)/2)
	var da, db []time.Duration
	for i := range n {
		for _, p := range []struct {
			f  func(context.Context, string) error
			id string
			d  *[]time.Duration
		}{{a, ids[perm[2*i]], &da}, {b, ids[perm[2*i+1]], &db}} {
			start := time.Now()
			if err := p.f(ctx, p.id); err != nil {
				return summary{}, summary{}, err
			}
			*p.d = append(*p.d, time.Since(start))
		}
	}
	return summarise(da, 0), summarise(db, 0), nil
}

// scaleBigHub runs a hub on the big store: its timeline rebuilt by the live
// projector (catch-up), cold reads, lists, and appends over every incident
// with the projector's lag sampled. It returns the append rate.
func scaleBigHub(ctx context.Context, sc scaleConfig, run, runs int, dir string, ids []string, col *collector) (float64, error) {
	// The catch-up is of an empty store.
	for _, suffix := range []string{"", "-wal", "-shm"} {
		_ = os.Remove(filepath.Join(dir, "timeline.db"+suffix))
	}
	rh, err := startHubIn(ctx, dir, sc.writers+sc.subscribers)
	if err != nil {
		return 0, err
	}
	defer rh.close()
	stored, err := streamMsgs(ctx, rh)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	stopProfile, err := startCPUProfile(sc.appendProfile, ".catchup.cpu")
	if err != nil {
		return 0, err
	}
	err = waitLag(ctx, rh, func(uint64) {})
	stopProfile()
	if err != nil {
		return 0, err
	}
	catchUp := time.Since(start)
	col.add("scale", "catch-up", "s", catchUp.Seconds())
	col.add("scale", "projector", "events/s", float64(stored)/catchUp.Seconds())
	progress("run %d/%d scale timeline caught up on %d events in %s", run, runs, stored, catchUp.Round(time.Millisecond))
	// At rest: the server drops a block's cache 10 s after its last use and
	// its per-block subject index after 2 minutes.
	sleepCtx(ctx, sc.rest)
	rssRest, heapRest := memory()
	col.add("scale", "go mapped at rest", "MiB", goMapped())
	if sc.memProfile != "" {
		if err := writeHeapProfile(sc.memProfile); err != nil {
			return 0, err
		}
	}
	col.add("scale", "rss at rest", "MiB", rssRest)
	col.add("scale", "heap at rest", "MiB", heapRest)

	// Cold reads through the API, each beside a raw direct get of another
	// incident's last event, in turns: both find the server's caches as
	// cold, whichever touches a block first loads it.
	st, err := rh.h.Bus().JS.Stream(ctx, events.IncidentStream)
	if err != nil {
		return 0, err
	}
	cold, raw, err := probePair(ctx, sc.probes, ids, func(ctx context.Context, id string) error {
		return rh.get(ctx, "/api/v1/incidents/"+id, nil)
	}, func(ctx context.Context, id string) error {
		_, err := st.GetLastMsgForSubject(ctx, events.IncidentFilter(id))
		return err
	})
	if err != nil {
		return 0, err
	}
	col.add("scale", "cold get p99", "ms", cold.p99)
	col.add("scale", "raw get p99", "ms", raw.p99)
	list, err := listP99(ctx, rh, sc.probes)
	if err != nil {
		return 0, err
	}
	col.add("scale", "list p99", "ms", list.p99)

	var lags []float64
	// Memory is compared between the middle and the end of the appends,
	// once caches have filled: growth there is growth with events.
	var midRSS, midHeap float64
	var midN int64
	t0 := time.Now()
	big := sc
	if sc.bigDuration > 0 {
		big.duration = sc.bigDuration
	}
	stopProfile, err = startCPUProfile(sc.appendProfile, ".cpu")
	if err != nil {
		return 0, err
	}
	res, err := appendFor(ctx, rh, ids, big, func(n int64) {
		if lag, err := consumerLag(ctx, rh); err == nil {
			lags = append(lags, float64(lag))
		}
		if midN == 0 && time.Since(t0) >= big.duration/2 {
			midRSS, midHeap = memory()
			midN = n
		}
	})
	stopProfile()
	if err != nil {
		return 0, err
	}
	if sc.appendProfile != "" {
		if err := writeHeapProfile(sc.appendProfile + ".heap"); err != nil {
			return 0, err
		}
	}
	rate := res.rate
	col.add("scale", "append", "events/s", rate)
	col.add("scale", "append cpu", "ms", res.cpuMs)
	lagP99 := percentile(lags, 0.99)
	col.add("scale", "lag p99", "events", lagP99)
	col.add("scale", "lag max", "events", slices.Max(append(lags, 0)))
	col.add("scale", "append time", "s", time.Since(t0).Seconds())
	start = time.Now()
	if err := waitLag(ctx, rh, func(uint64) {}); err != nil {
		return 0, err
	}
	col.add("scale", "drain", "s", time.Since(start).Seconds())
	rssAfter, heapAfter := memory()
	col.add("scale", "rss after", "MiB", rssAfter)
	per100k := float64(int64(res.n)-midN) / 100_000
	col.add("scale", "rss/100k", "MiB", (rssAfter-midRSS)/per100k)
	col.add("scale", "heap/100k", "MiB", (heapAfter-midHeap)/per100k)
	progress("run %d/%d scale big hub: append %.0f events/s, cold get p99 %.2f ms, list p99 %.2f ms, lag p99 %.0f events, rss %.0f → %.0f MiB",
		run, runs, rate, cold.p99, list.p99, lagP99, rssRest, rssAfter)
	return rate, nil
}

// scaleFreshHub: the baseline hub (1,000 incidents, fresh stream): append
// rate and list; then the same appends with idle live subscribers.
func scaleFreshHub(ctx context.Context, sc scaleConfig, run, runs int, bigRate float64, col *collector) error {
	dir, err := tempDir("scale-fresh")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	rh, err := startHubIn(ctx, dir, sc.writers+sc.subscribers)
	if err != nil {
		return err
	}
	defer rh.close()
	ids, err := rh.declare(ctx, sc.small)
	if err != nil {
		return err
	}
	fresh, err := appendFor(ctx, rh, ids, sc, func(int64) {})
	if err != nil {
		return err
	}
	rate := fresh.rate
	col.add("scale", "append fresh", "events/s", rate)
	col.add("scale", "append fresh cpu", "ms", fresh.cpuMs)
	list, err := listP99(ctx, rh, sc.probes)
	if err != nil {
		return err
	}
	col.add("scale", "list fresh p99", "ms", list.p99)

	// Idle clients: each follows an incident that the appends leave alone
	// (a live timeline open on a quiet incident).
	quiet, err := rh.declare(ctx, sc.subscribers)
	if err != nil {
		return err
	}
	idle, err := withSubscribers(ctx, rh, ids, sc, quiet, "idle", col)
	if err != nil {
		return err
	}
	// Live timelines of the console: each client follows one incident.
	live, err := withSubscribers(ctx, rh, ids, sc, ids, "live", col)
	if err != nil {
		return err
	}
	// Every client on every event.
	firehose, err := withSubscribers(ctx, rh, ids, sc, nil, "firehose", col)
	if err != nil {
		return err
	}
	progress("run %d/%d scale fresh hub: append %.0f events/s (big store %.0f); with %d idle clients %.0f events/s, with %d live timelines %.0f events/s, with %d clients of every event %.0f events/s",
		run, runs, rate, bigRate, sc.subscribers, idle, sc.subscribers, live, sc.subscribers, firehose)
	return nil
}

// withSubscribers measures the appends with sc.subscribers SSE clients,
// each following incidents[i % len] (every event when none), and what the
// clients cost the hub in memory.
func withSubscribers(ctx context.Context, rh *runningHub, ids []string, sc scaleConfig, incidents []string, name string, col *collector) (float64, error) {
	// The same appends without the clients just before, as their baseline:
	// the hub's stream and store grow from one measurement to the next.
	base, err := appendFor(ctx, rh, ids, sc, func(int64) {})
	if err != nil {
		return 0, err
	}
	col.add("scale", name+" base", "events/s", base.rate)
	col.add("scale", name+" base cpu", "ms", base.cpuMs)
	time.Sleep(3 * time.Second) // the projectors and snapshots finish the appends
	heapBefore := liveMemory()
	goBefore := runtime.NumGoroutine()
	subs, err := openIdleSubscribers(ctx, rh, sc.subscribers, incidents)
	if err != nil {
		return 0, err
	}
	defer subs.close()
	time.Sleep(time.Second) // the last streams reach their handler
	heapWith := liveMemory()
	col.add("scale", name+" goroutines", "count", float64(runtime.NumGoroutine()-goBefore)/float64(sc.subscribers))
	col.add("scale", name+" memory", "KiB", (heapWith-heapBefore)*1024/float64(sc.subscribers))
	res, err := appendFor(ctx, rh, ids, sc, func(int64) {})
	if err != nil {
		return 0, err
	}
	rate := res.rate
	col.add("scale", "append "+name, "events/s", rate)
	col.add("scale", name+" cpu", "ms", res.cpuMs)
	col.add("scale", name+" kept", "count", float64(subs.close()))
	return rate, nil
}

// startHubIn runs a hub (api + timeline) on dir.
func startHubIn(ctx context.Context, dir string, conns int) (*runningHub, error) {
	h, err := hub.Start(ctx, hub.Config{DataDir: dir, Listen: "127.0.0.1:0", Logger: slog.Default()})
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithCancel(ctx)
	rh := &runningHub{h: h, dir: dir, keep: true, base: "http://" + h.Addr(), cancel: cancel, done: make(chan error, 1),
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
			MaxIdleConns: conns * 2, MaxIdleConnsPerHost: conns * 2, IdleConnTimeout: time.Minute, DisableCompression: true,
		}}}
	go func() { rh.done <- h.Run(rctx) }()
	return rh, nil
}

func streamMsgs(ctx context.Context, rh *runningHub) (uint64, error) {
	st, err := rh.h.Bus().JS.Stream(ctx, events.IncidentStream)
	if err != nil {
		return 0, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.State.Msgs, nil
}

// consumerLag is the timeline projector's lag: events not yet acknowledged.
func consumerLag(ctx context.Context, rh *runningHub) (uint64, error) {
	c, err := rh.h.Bus().JS.PushConsumer(ctx, events.IncidentStream, timeline.Name)
	if err != nil {
		return 0, err
	}
	info, err := c.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.NumPending + uint64(info.NumAckPending), nil
}

// waitLag waits until the timeline projector has every event.
func waitLag(ctx context.Context, rh *runningHub, each func(uint64)) error {
	for {
		lag, err := consumerLag(ctx, rh)
		if err == nil {
			each(lag)
			if lag == 0 {
				return nil
			}
		} else if !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func listP99(ctx context.Context, rh *runningHub, n int) (summary, error) {
	var d []time.Duration
	for range n {
		start := time.Now()
		if err := rh.get(ctx, "/api/v1/incidents?limit=50", nil); err != nil {
			return summary{}, err
		}
		d = append(d, time.Since(start))
	}
	return summarise(d, 0), nil
}

// appended is what appendFor measured: events/s, events, and the
// process's CPU time per event in ms (hub and client, which is the same
// for every hub: a figure that the other programs on a shared machine
// do not move, as they move the rate).
type appended struct {
	rate  float64
	n     int
	cpuMs float64
}

// appendFor posts notes to random incidents from sc.writers writers for
// sc.duration, calling sample every 100 ms.
func appendFor(ctx context.Context, rh *runningHub, ids []string, sc scaleConfig, sample func(appended int64)) (appended, error) {
	cpu0 := cpuTime()
	rate, n, err := appendForRate(ctx, rh, ids, sc, sample)
	if err != nil || n == 0 {
		return appended{}, err
	}
	return appended{rate: rate, n: n, cpuMs: float64((cpuTime() - cpu0).Microseconds()) / 1000 / float64(n)}, nil
}

// cpuTime is the CPU time the process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func appendForRate(ctx context.Context, rh *runningHub, ids []string, sc scaleConfig, sample func(appended int64)) (float64, int, error) {
	body := []byte(`{"text":"` + noteText(200) + `"}`)
	var n atomic.Int64
	actx, cancel := context.WithTimeout(ctx, sc.duration)
	defer cancel()
	g, gctx := errgroup.WithContext(actx)
	start := time.Now()
	for range sc.writers {
		g.Go(func() error {
			for gctx.Err() == nil {
				id := ids[rand.IntN(len(ids))]
				if err := rh.post(gctx, "/api/v1/incidents/"+id+"/notes", body, nil); err != nil {
					if gctx.Err() != nil {
						return nil
					}
					return err
				}
				n.Add(1)
			}
			return nil
		})
	}
	g.Go(func() error {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-gctx.Done():
				return nil
			case <-t.C:
				sample(n.Load())
			}
		}
	})
	if err := g.Wait(); err != nil {
		return 0, 0, err
	}
	return float64(n.Load()) / time.Since(start).Seconds(), int(n.Load()), nil
}

func percentile(v []float64, p float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[max(int(math.Ceil(p*float64(len(s))))-1, 0)]
}

// memory is the process's resident set and Go heap in use, in MiB, after
// the collector returned what it could.
func memory() (rss, heap float64) {
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return rssMiB(), float64(ms.HeapInuse+ms.StackInuse) / (1 << 20)
}

// liveMemory is the live heap and the goroutine stacks, in MiB, after a
// collection: what the process holds, without garbage not yet collected
// or spans kept for reuse.
func liveMemory() float64 {
	runtime.GC()
	runtime.GC() // sync.Pools empty over two
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/memory/classes/heap/stacks:bytes"}}
	metrics.Read(s)
	return float64(s[0].Value.Uint64()+s[1].Value.Uint64()) / (1 << 20)
}

// goMapped is the memory the Go runtime holds from the OS (heap, stacks,
// its own structures), less what it gave back, in MiB: what of the RSS is
// Go's rather than SQLite's (whose allocator is outside the Go heap).
func goMapped() float64 {
	s := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	metrics.Read(s)
	return float64(s[0].Value.Uint64()-s[1].Value.Uint64()) / (1 << 20)
}

// rssMiB is the process's resident set in MiB (0 where /proc is missing).
func rssMiB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

// idleSubscribers are SSE clients in a child process (this program with
// -sse-clients), so that the hub's memory and CPU are measured without
// theirs: each reads what arrives and does nothing with it.
type idleSubscribers struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Scanner
	kept  int
}

func openIdleSubscribers(ctx context.Context, rh *runningHub, n int, incidents []string) (*idleSubscribers, error) {
	cmd := exec.CommandContext(ctx, os.Args[0], "-sse-clients", strings.TrimPrefix(rh.base, "http://"), "-sse-n", strconv.Itoa(n),
		"-sse-incidents", strings.Join(incidents, ","))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &idleSubscribers{cmd: cmd, stdin: stdin, out: bufio.NewScanner(stdout)}
	if !s.out.Scan() || s.out.Text() != "ready" {
		s.close()
		return nil, fmt.Errorf("sse clients: %q %v", s.out.Text(), s.out.Err())
	}
	return s, nil
}

// close ends the clients and returns how many streams were still open.
func (s *idleSubscribers) close() int {
	if s.stdin == nil {
		return s.kept
	}
	_ = s.stdin.Close()
	s.stdin = nil
	if s.out.Scan() {
		s.kept, _ = strconv.Atoi(strings.TrimPrefix(s.out.Text(), "open "))
	}
	_ = s.cmd.Wait()
	return s.kept
}

// runSSEClients is the child: n streams from addr, read and discarded,
// until stdin closes; it prints "ready", then "open <streams still open>".
func runSSEClients(addr string, n int, incidents []string) error {
	var open atomic.Int64
	for i := range n {
		path := "/api/v1/events"
		if len(incidents) > 0 {
			path += "?incident=" + incidents[i%len(incidents)]
		}
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return err
		}
		if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: "+addr+"\r\nAccept: text/event-stream\r\n\r\n"); err != nil {
			return err
		}
		br := bufio.NewReaderSize(c, 4096)
		line, err := br.ReadString('\n')
		if err != nil || !strings.Contains(line, " 200 ") {
			return fmt.Errorf("stream: %q %v", line, err)
		}
		open.Add(1)
		go func() {
			_, _ = io.Copy(io.Discard, br)
			open.Add(-1)
		}()
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	fmt.Println("open", open.Load())
	return nil
}

// keptBus opens the cached store's JetStream files in dir, kept on close.
func keptBus(ctx context.Context, dir string) (*bus, error) {
	store := filepath.Join(dir, "nats")
	return openBus(ctx, &bus{dir: store, keep: true}, store)
}
