// Command hikeshi-bench measures the hub against raw NATS JetStream on the
// same machine, in the same run: append rate, read/replay rate and
// end-to-end latency. Every scenario runs on a fresh embedded JetStream
// server in a temporary directory; the table shows the median of the runs
// and the ratio to the raw baseline. It never passes or fails on absolute
// times.
//
//	go run ./tools/cmd/hikeshi-bench -runs 5 -n 20000 -c 4
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"time"
)

type config struct {
	runs       int
	n          int
	c          int
	rate       int
	duration   time.Duration
	jsonOut    bool
	scenarios  map[string]bool
	noteSize   int
	cpuProfile string
	keep       bool
	verbose    bool
	scale      scaleConfig
	sustained  sustainedConfig
	asOfEvents int
	asOfReads  int
	store      string // the hub's --store (the postgres scenario)
}

var allScenarios = []string{"append", "read", "latency", "signals", "asof", "scale", "fanout", "postgres", "cluster", "sustained"}

// defaultScenarios leaves out scale, whose first run builds a large store,
// postgres, which replays one, and sustained, which runs for minutes.
var defaultScenarios = allScenarios[:5]

func main() {
	var cfg config
	flag.IntVar(&cfg.runs, "runs", 5, "repetitions of each scenario; the table shows the median")
	flag.IntVar(&cfg.n, "n", 20000, "events appended (and read back) per run")
	flag.IntVar(&cfg.c, "c", 4, "concurrent writers, each on its own incident")
	flag.IntVar(&cfg.rate, "rate", 1000, "paced append rate of the latency scenario, events/s")
	flag.DurationVar(&cfg.duration, "duration", 3*time.Second, "length of each latency measurement")
	flag.BoolVar(&cfg.jsonOut, "json", false, "print the results as JSON instead of a table")
	flag.IntVar(&cfg.noteSize, "note-size", 200, "bytes of note text per event")
	flag.IntVar(&cfg.asOfEvents, "asof-events", 10_000, "asof: events of the incident read as of random times")
	flag.IntVar(&cfg.asOfReads, "asof-reads", 500, "asof: reads measured, as of random times and of now")
	only := flag.String("scenarios", strings.Join(defaultScenarios, ","), "comma-separated scenarios to run: "+strings.Join(allScenarios, ", "))
	flag.IntVar(&cfg.scale.events, "scale-events", 1_000_000, "scale: events in the big store")
	flag.IntVar(&cfg.scale.incidents, "scale-incidents", 20_000, "scale: incidents in the big store")
	flag.IntVar(&cfg.scale.small, "scale-small", 1000, "scale: incidents of the fresh baseline hub")
	flag.IntVar(&cfg.scale.writers, "scale-writers", 16, "scale: concurrent HTTP writers")
	flag.DurationVar(&cfg.scale.duration, "scale-duration", 60*time.Second, "scale: length of each append measurement (the projector's lag is sampled during the one on the big store)")
	flag.DurationVar(&cfg.scale.bigDuration, "scale-lag-duration", 0, "scale: length of the appends on the big store, where the projector's lag is sampled (default: -scale-duration; the issue's lag figure is of 5 minutes)")
	flag.IntVar(&cfg.scale.subscribers, "scale-subscribers", 1000, "scale: SSE clients (live timelines of one incident each, then every client on every event)")
	flag.IntVar(&cfg.scale.probes, "scale-probes", 500, "scale: incidents read cold, and list calls")
	flag.StringVar(&cfg.scale.dir, "scale-dir", filepath.Join(os.TempDir(), "hikeshi-bench-scale"), "scale: where the big store is built once and kept")
	flag.DurationVar(&cfg.scale.rest, "scale-rest", 130*time.Second, "scale: wait after the catch-up before reading memory at rest (the server keeps per-block subject indexes 2 minutes)")
	flag.BoolVar(&cfg.scale.skipReads, "scale-skip-reads", false, "scale: leave out the replay, verify and raw read figures (faster while iterating on the hub)")
	flag.StringVar(&cfg.scale.appendProfile, "scale-append-profile", "", "scale: write CPU profiles of the catch-up and of the appends on the big store (PREFIX.catchup.cpu, PREFIX.cpu) and a heap profile after the appends (PREFIX.heap)")
	flag.StringVar(&cfg.scale.memProfile, "scale-memprofile", "", "scale: write a heap profile of the big hub at rest to this file")
	sseClients := flag.String("sse-clients", "", "internal: run as the scale scenario's SSE clients of this address")
	sseN := flag.Int("sse-n", 0, "internal: how many SSE clients")
	sseIncidents := flag.String("sse-incidents", "", "internal: incidents the SSE clients follow, one each in turn (none: every event)")
	flag.DurationVar(&cfg.sustained.duration, "sustained-duration", 60*time.Second, "sustained: length of each load (wrk and the harness, on the hub and on Alertmanager)")
	flag.IntVar(&cfg.sustained.connections, "sustained-connections", 16, "sustained: concurrent connections of each load generator")
	sustainedClient := flag.String("sustained-client", "", "internal: run as the sustained scenario's client, posting to this URL")
	sustainedFormat := flag.String("sustained-client-format", "webhook", "internal: the client's body, webhook or v2")
	sustainedSeed := flag.Int("sustained-client-seed", 0, "internal: keeps the client's alerts apart from another run's")
	flag.DurationVar(&cfg.sustained.liveEvery, "sustained-live-heap", 0, "sustained: also read the live heap (forcing a collection, which costs the hub a little) this often during the hub's wrk run")
	flag.StringVar(&cfg.sustained.memProfile, "sustained-memprofile", "", "sustained: write a heap profile at the end of the hub's wrk run to PREFIX.RUN.heap")
	flag.StringVar(&cfg.sustained.cpuProfile, "sustained-cpuprofile", "", "sustained: write a CPU profile of the process during the hub's wrk run to PREFIX.RUN.cpu")
	flag.StringVar(&cfg.cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.BoolVar(&cfg.keep, "keep", false, "keep the temporary data directories")
	flag.BoolVar(&cfg.verbose, "v", false, "show the hub's warnings and errors (shutdown between runs logs some)")
	flag.Parse()
	if *sustainedClient != "" {
		if err := runSustainedClient(*sustainedClient, *sustainedFormat, *sustainedSeed, cfg.sustained); err != nil {
			fatal(err)
		}
		return
	}
	if *sseClients != "" {
		if err := runSSEClients(*sseClients, *sseN, strings.FieldsFunc(*sseIncidents, func(r rune) bool { return r == ',' })); err != nil {
			fatal(err)
		}
		return
	}
	if cfg.runs < 1 || cfg.n < 1 || cfg.c < 1 || cfg.rate < 1 || cfg.duration <= 0 || cfg.noteSize < 1 || cfg.asOfEvents < 1 || cfg.asOfReads < 1 {
		fmt.Fprintln(os.Stderr, "hikeshi-bench: -runs, -n, -c, -rate, -duration, -note-size, -asof-events and -asof-reads must be positive")
		os.Exit(2)
	}
	if cfg.n < cfg.c {
		cfg.n = cfg.c
	}
	cfg.scenarios = map[string]bool{}
	for _, s := range strings.Split(*only, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !slices.Contains(allScenarios, s) {
			fmt.Fprintf(os.Stderr, "hikeshi-bench: unknown scenario %q (known: %s)\n", s, strings.Join(allScenarios, ", "))
			os.Exit(2)
		}
		cfg.scenarios[s] = true
	}
	// Progress goes to stderr; the hub logs there only with -v.
	level := slog.LevelError + 1
	if cfg.verbose {
		level = slog.LevelWarn
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if cfg.cpuProfile != "" {
		f, err := os.Create(cfg.cpuProfile)
		if err != nil {
			fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fatal(err)
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}
	rep, err := run(ctx, cfg)
	if err != nil {
		pprof.StopCPUProfile()
		fatal(err)
	}
	if cfg.jsonOut {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			fatal(err)
		}
		return
	}
	rep.print(os.Stdout)
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "hikeshi-bench:", err)
	os.Exit(1)
}

func progress(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, a...))
}

// report is what one invocation measured: the medians and every run.
type report struct {
	Machine  machine      `json:"machine"`
	Runs     int          `json:"runs"`
	N        int          `json:"n"`
	C        int          `json:"c"`
	Rate     int          `json:"rate"`
	Duration string       `json:"duration"`
	NoteSize int          `json:"note_size"`
	Metrics  []metric     `json:"metrics"`
	Elapsed  string       `json:"elapsed"`
	Scale    *scaleReport `json:"scale,omitempty"`
}

type scaleReport struct {
	Events      int    `json:"events"`
	Incidents   int    `json:"incidents"`
	Small       int    `json:"small"`
	Writers     int    `json:"writers"`
	Duration    string `json:"duration"`
	Subscribers int    `json:"subscribers"`
	Dir         string `json:"dir"`
}

type machine struct {
	CPUs   int    `json:"cpus"`
	OS     string `json:"os"`
	Arch   string `json:"arch"`
	Go     string `json:"go"`
	Procs  int    `json:"gomaxprocs"`
	Loopbk string `json:"network"`
}

// metric is one line of the table: a measured quantity, its runs, and the
// raw baseline it is compared with.
type metric struct {
	Scenario string    `json:"scenario"`
	Name     string    `json:"name"`
	Unit     string    `json:"unit"`
	Values   []float64 `json:"values"`
	Median   float64   `json:"median"`
	// Baseline names the raw metric this one is compared with; Ratio is
	// the median over runs of value/baseline, each pair measured in the
	// same run, so noise that hits both halves of a run cancels out (for
	// latencies >1 means slower).
	Baseline string  `json:"baseline,omitempty"`
	Ratio    float64 `json:"ratio,omitempty"`
	Target   string  `json:"target,omitempty"`
	Note     string  `json:"note,omitempty"`
}

type collector struct {
	order []string
	m     map[string]*metric
}

func (c *collector) add(scenario, name, unit string, v float64) {
	key := scenario + "/" + name
	if c.m == nil {
		c.m = map[string]*metric{}
	}
	mt, ok := c.m[key]
	if !ok {
		mt = &metric{Scenario: scenario, Name: name, Unit: unit}
		c.m[key] = mt
		c.order = append(c.order, key)
	}
	mt.Values = append(mt.Values, v)
}

func (c *collector) compare(scenario, name, baseline, target, note string) {
	if mt, ok := c.m[scenario+"/"+name]; ok {
		mt.Baseline, mt.Target, mt.Note = baseline, target, note
	}
}

func (c *collector) finish() []metric {
	out := make([]metric, 0, len(c.order))
	slices.SortStableFunc(c.order, func(a, b string) int {
		return slices.Index(allScenarios, c.m[a].Scenario) - slices.Index(allScenarios, c.m[b].Scenario)
	})
	for _, k := range c.order {
		c.m[k].Median = median(c.m[k].Values)
	}
	for _, k := range c.order {
		mt := *c.m[k]
		if mt.Baseline != "" {
			if b, ok := c.m[mt.Scenario+"/"+mt.Baseline]; ok && b.Median > 0 {
				mt.Ratio = pairedRatio(mt.Values, b.Values)
			}
		}
		out = append(out, mt)
	}
	return out
}

// pairedRatio is the median of v[i]/base[i] over the runs that measured
// both; without pairs it falls back to the ratio of the medians.
func pairedRatio(v, base []float64) float64 {
	if len(v) != len(base) {
		return median(v) / median(base)
	}
	r := make([]float64, 0, len(v))
	for i := range v {
		if base[i] > 0 {
			r = append(r, v[i]/base[i])
		}
	}
	return median(r)
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func run(ctx context.Context, cfg config) (*report, error) {
	start := time.Now()
	rep := &report{
		Machine: machine{
			CPUs: runtime.NumCPU(), OS: runtime.GOOS, Arch: runtime.GOARCH, Go: runtime.Version(),
			Procs: runtime.GOMAXPROCS(0), Loopbk: "in-process NATS, HTTP on 127.0.0.1",
		},
		Runs: cfg.runs, N: cfg.n, C: cfg.c, Rate: cfg.rate, Duration: cfg.duration.String(), NoteSize: cfg.noteSize,
	}
	if cfg.scenarios["scale"] {
		sc := cfg.scale
		rep.Scale = &scaleReport{Events: sc.events, Incidents: sc.incidents, Small: sc.small, Writers: sc.writers,
			Duration: sc.duration.String(), Subscribers: sc.subscribers, Dir: sc.storeDir()}
	}
	var col collector
	for i := 1; i <= cfg.runs; i++ {
		if cfg.scenarios["append"] || cfg.scenarios["read"] {
			if err := appendAndRead(ctx, cfg, i, &col); err != nil {
				return nil, err
			}
		}
		if cfg.scenarios["latency"] {
			if err := latency(ctx, cfg, i, &col); err != nil {
				return nil, err
			}
		}
		if cfg.scenarios["signals"] {
			if err := signalsScenario(ctx, cfg, i, &col); err != nil {
				return nil, err
			}
		}
		if cfg.scenarios["asof"] {
			if err := asOf(ctx, cfg, i, &col); err != nil {
				return nil, err
			}
		}
		if cfg.scenarios["scale"] {
			if err := scaleScenario(ctx, cfg, i, &col); err != nil {
				return nil, err
			}
		}
		if cfg.scenarios["fanout"] && !cfg.scenarios["scale"] {
			// The scale scenario's last part alone: live subscribers on a
			// fresh hub, without the big store.
			if err := scaleFreshHub(ctx, cfg.scale, i, cfg.runs, 0, &col); err != nil {
				return nil, err
			}
		}
		if cfg.scenarios["postgres"] {
			if err := postgresScenario(ctx, cfg, i, &col); err != nil {
				return nil, err
			}
		}
		if cfg.scenarios["cluster"] {
			if err := clusterScenario(ctx, cfg, i, &col); err != nil {
				return nil, err
			}
		}
		if cfg.scenarios["sustained"] {
			if err := sustainedScenario(ctx, cfg, i, &col); err != nil {
				return nil, err
			}
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	col.compare("append", "core", "raw", "≥ 0.80× raw", "command.Handler.Execute(AddNote)")
	col.compare("append", "chained", "", "", "Execute(AddNote) with the hash chain, alternating rounds with unchained on one bus")
	col.compare("append", "unchained", "", "", "the same without the hash chain (command.WithoutHashChain)")
	col.compare("append", "chained/unchained", "", "≥ 0.95", "what the hash chain leaves of append throughput, paired per run")
	col.compare("append", "http", "raw", "", "POST /notes, hub with api+timeline")
	col.compare("read", "replay", "raw", "≥ 0.25× raw", "timeline.Rebuild into a fresh SQLite file")
	col.compare("read", "verify", "raw", "", "hikeshi verify of the whole stream: chains, one signed checkpoint; linear in events")
	col.compare("latency", "hub p50", "raw p50", "", "")
	col.compare("latency", "hub p99", "raw p99", "p99 ≤ 50 ms", "")
	col.compare("latency", "hub max", "raw max", "", "")
	col.compare("signals", "hub 1", "am 1", "≥ 1.0× am", "single-alert webhooks, stored durably")
	col.compare("signals", "hub 100", "am 100", "≥ 1.0× am", "webhooks of 100 alerts")
	col.compare("signals", "hub 1 p99", "am 1 p99", "≤ 20 ms", "")
	col.compare("signals", "raw", "", "", "PublishMsg of the normalised signal, c writers")
	col.compare("sustained", "hub wrk", "am wrk", "≥ 1.0× am", "wrk with wrk/alerts.lua, one distinct alert per request")
	col.compare("sustained", "hub harness", "am harness", "≥ 1.0× am", "this program's client, one distinct alert per request")
	col.compare("sustained", "hub wrk p99", "am wrk p99", "", "")
	col.compare("sustained", "hub wrk refused", "", "0", "non-2xx answers and socket errors")
	col.compare("sustained", "lag p99", "", "bounded", "signals projector lag, sampled every second of the hub's wrk run")
	col.compare("sustained", "lag end", "", "", "lag when wrk stopped")
	col.compare("sustained", "drain", "", "", "time for the lag to reach 0 after wrk stopped")
	col.compare("sustained", "rss 1/4", "", "", "process RSS a quarter into the hub's wrk run")
	col.compare("sustained", "rss end", "", "flat", "process RSS at its end")
	col.compare("sustained", "heap 1/4", "", "", "Go heap and stacks in use, same times")
	col.compare("sustained", "heap end", "", "flat", "")
	col.compare("asof", "as-of p99", "get p99", "≤ 50 ms", "GET /incidents/{id}?as_of=<random time>, 10,000-event incident")
	col.compare("asof", "as-of p50", "get p50", "", "")
	col.compare("asof", "first", "", "", "first as-of read: reads and folds every event")
	for _, c := range []struct{ name, base, target, note string }{
		{"append", "append fresh", "≥ 0.9× fresh", "POST /notes to random incidents of the big store"},
		{"append cpu", "append fresh cpu", "≤ 1.1× fresh", "process CPU per append (hub and client): what a shared machine's other load does not move"},
		{"cold get p99", "raw get p99", "≤ 20 ms", "GET /incidents/{id}, each incident once, after a restart and the rest; raw get = a direct get of another incident's last event, in turns"},
		{"list p99", "list fresh p99", "≤ 10 ms", "GET /incidents?limit=50"},
		{"list 100k p99", "", "≤ 10 ms", "GET /incidents?limit=50, a timeline store of -scale-list-incidents incidents"},
		{"page 100k p99", "", "", "GET /incidents?limit=50&before=<the middle incident>, same store"},
		{"replay", "read raw", "≥ 0.25× raw", "timeline.Rebuild of the big stream"},
		{"replay time", "", "≤ 20 s at 1M", ""},
		{"verify", "read raw", "", "hikeshi verify's walk of the hash chains over the big stream"},
		{"verify time", "", "", "the same, whole stream"},
		{"catch-up", "", "≤ 20 s at 1M", "live timeline projector, empty store, whole stream"},
		{"projector", "append", "≥ 1.5× append", "catch-up rate of the live projector"},
		{"lag p99", "", "bounded", "projector lag sampled every 100 ms during the append"},
		{"lag max", "", "bounded", "the largest lag sampled"},
		{"append time", "", "5 min", "length of that append (-scale-lag-duration)"},
		{"drain", "", "", "time for the lag to reach 0 after the append"},
		{"rss at rest", "", "≤ 200 MiB", "process RSS (hub and bench) after catch-up"},
		{"go mapped at rest", "", "", "of that RSS, what the Go runtime holds (the rest is SQLite's allocator and the binary)"},
		{"rss/100k", "", "≈ 0", "RSS growth per 100k events, second half of the append"},
		{"idle base", "", "", "fresh hub, appends just before the idle clients connect"},
		{"append idle", "idle base", "≥ 0.9× base", "same appends, SSE clients each following an incident the appends leave alone"},
		{"idle cpu", "idle base cpu", "≤ 1.1× base", "process CPU per append with the idle clients"},
		{"idle memory", "", "≤ 20 KiB", "hub heap and stacks per client"},
		{"append live", "live base", "", "same appends, SSE clients each following one incident (every event goes to one client)"},
		{"live cpu", "live base cpu", "", "process CPU per append with the live timelines"},
		{"live memory", "", "≤ 20 KiB", "hub heap and stacks per client"},
		{"append firehose", "firehose base", "", "same appends, every SSE client on every event"},
		{"firehose cpu", "firehose base cpu", "", "process CPU per append with every client on every event"},
		{"firehose memory", "", "≤ 20 KiB", "hub heap and stacks per client"},
	} {
		col.compare("scale", c.name, c.base, c.target, c.note)
	}
	postgresNotes(&col)
	rep.Metrics = col.finish()
	rep.Elapsed = time.Since(start).Round(time.Second).String()
	return rep, nil
}

func (r *report) print(w io.Writer) {
	fmt.Fprintln(w, "Hikeshi bench: the hub against raw NATS JetStream, measured in the same run")
	fmt.Fprintf(w, "machine: %d CPUs (GOMAXPROCS %d), %s/%s, %s; %s\n", r.Machine.CPUs, r.Machine.Procs, r.Machine.OS, r.Machine.Arch, r.Machine.Go, r.Machine.Loopbk)
	fmt.Fprintf(w, "runs: %d (median shown), each on a fresh embedded JetStream server in a temp dir\n", r.Runs)
	fmt.Fprintf(w, "sizes: append/read n=%d events, c=%d writers (one incident each), notes of %d bytes;\n", r.N, r.C, r.NoteSize)
	fmt.Fprintf(w, "       latency paced at %d events/s for %s over %d incidents\n", r.Rate, r.Duration, r.C)
	fmt.Fprintln(w)
	fmt.Fprintf(w, "%-9s %-9s %14s  %-11s %8s  %-12s %s\n", "scenario", "path", "median", "unit", "ratio", "target", "runs")
	fmt.Fprintln(w, strings.Repeat("-", 100))
	last := ""
	for _, m := range r.Metrics {
		if last != "" && m.Scenario != last {
			fmt.Fprintln(w)
		}
		last = m.Scenario
		ratio := ""
		if m.Baseline != "" && m.Ratio > 0 {
			ratio = fmt.Sprintf("%.2f×", m.Ratio)
		}
		fmt.Fprintf(w, "%-9s %-9s %14s  %-11s %8s  %-12s %s\n", m.Scenario, m.Name, format(m.Median, m.Unit), m.Unit, ratio, m.Target, formatAll(m.Values, m.Unit))
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "append: raw = jetstream PublishMsg with Msg-Id and expected last subject sequence, serial per writer;")
	fmt.Fprintln(w, "        core = command.Handler.Execute(AddNote); http = POST /api/v1/incidents/{id}/notes over keep-alive")
	fmt.Fprintln(w, "        connections to a hub running api+timeline. ratio = median over runs of path / raw.")
	fmt.Fprintln(w, "        chained / unchained = core with and without the hash chain, alternating rounds on one bus.")
	fmt.Fprintln(w, "read:   raw = ordered consumer over the whole stream; replay = timeline.Rebuild into a fresh SQLite")
	fmt.Fprintln(w, "        file from the same stream; verify = checkpoints.VerifyStream (hikeshi verify) after one signed")
	fmt.Fprintln(w, "        checkpoint, linear in events: 1M events take 1M / rate seconds. ratio = median over runs of replay / raw.")
	fmt.Fprintln(w, "latency: hub = POST a note, then GET .../timeline?after=<seq-1>&wait=5s until it holds the note;")
	fmt.Fprintln(w, "        time from the start of the POST. raw = publish to ordered-consumer receive at the same pace.")
	fmt.Fprintln(w, "        ratio = median over runs of hub / raw (higher is slower).")
	fmt.Fprintln(w, "signals: hub 1 / hub 100 = Alertmanager webhooks (v4) of 1 or 100 alerts to a hub running api, timeline")
	fmt.Fprintln(w, "        and signals (every alert stored on JetStream before the 202; projector evaluating meanwhile);")
	fmt.Fprintln(w, "        am = the same alerts to Prometheus Alertmanager's POST /api/v2/alerts (in memory), same client,")
	fmt.Fprintln(w, "        c connections. ratio = median over runs of hub / am. heap = the hub's process heap after the")
	fmt.Fprintln(w, "        storm; settled = 12 s later, once the server's block caches expired.")
	fmt.Fprintln(w, "asof:   as-of = GET /api/v1/incidents/{id}?as_of=<random time> of one long incident; get = GET of its")
	fmt.Fprintln(w, "        current state; first = the first as-of read, which loads the events. ratio = as-of / get.")
	fmt.Fprintln(w, "sustained: distinct alerts, one per request, for the duration at the rate the client reaches: wrk (-t2)")
	fmt.Fprintln(w, "        with tools/cmd/hikeshi-bench/wrk/alerts.lua, then this program's client, to the hub's webhook and")
	fmt.Fprintln(w, "        to Alertmanager's POST /api/v2/alerts; ratio = hub / am of the same client and run.")
	if r.Scale != nil {
		fmt.Fprintf(w, "scale:  big store %d events over %d incidents (cached in %s, grows by each run's appends); fresh hub\n", r.Scale.Events, r.Scale.Incidents, r.Scale.Dir)
		fmt.Fprintf(w, "        with %d incidents; %d HTTP writers for %s per append measurement; %d SSE clients\n", r.Scale.Small, r.Scale.Writers, r.Scale.Duration, r.Scale.Subscribers)
		fmt.Fprintln(w, "        (a child process); ratios are path / baseline of the same run (for latencies >1 is slower).")
	}
	fmt.Fprintf(w, "elapsed: %s\n", r.Elapsed)
}

func format(v float64, unit string) string {
	switch unit {
	case "events/s", "alerts/s":
		return fmt.Sprintf("%.0f", v)
	case "MiB":
		return fmt.Sprintf("%.1f", v)
	case "ms", "s", "×":
		return fmt.Sprintf("%.2f", v)
	case "KiB", "count":
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%g", v)
}

func formatAll(v []float64, unit string) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = format(x, unit)
	}
	return strings.Join(parts, " ")
}
