package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/hikeshi/hikeshi/adapters/postgres/pgtest"
	"github.com/hikeshi/hikeshi/services/readmodel"
	"github.com/hikeshi/hikeshi/services/timeline"
)

// The postgres scenario's own flags.
var (
	pgURL       = flag.String("pg-url", "", "postgres: the database to measure (its timeline schema is replaced); empty starts a throwaway server with initdb (postgresql-15)")
	pgEvents    = flag.Int("pg-events", 1_000_000, "postgres: events replayed (the scale scenario's store is reused when the sizes match)")
	pgIncidents = flag.Int("pg-incidents", 20_000, "postgres: incidents of those events")
	pgReplay    = flag.Bool("pg-replay", true, "postgres: measure the replays (false: only append → visible, faster while iterating on it)")
)

// postgresScenario replays the same stream into SQLite and into
// PostgreSQL (timeline.RebuildInto), then measures append → visible
// through a hub whose timeline store is in PostgreSQL, paced like the
// latency scenario.
func postgresScenario(ctx context.Context, cfg config, run int, col *collector) error {
	url, srv, stop, err := pgDatabase(ctx)
	if err != nil {
		return err
	}
	defer stop()
	if *pgReplay {
		if err := pgReplays(ctx, cfg, run, url, srv, col); err != nil {
			return err
		}
	}
	// The hub's stream is new: so is its store.
	empty, err := readmodel.OpenRebuild(ctx, url, "")
	if err == nil {
		err = empty.Replace(ctx)
	}
	if err != nil {
		return err
	}
	pg := cfg
	pg.store = url
	h, err := latencyHub(ctx, pg)
	if err != nil {
		return fmt.Errorf("latency on postgres: %w", err)
	}
	progress("run %d/%d postgres latency: p50 %6.2f ms  p99 %6.2f ms  max %7.2f ms  (%d events, %d errors); POST alone p50 %.2f ms p99 %.2f ms; %.0f events/s kept", run, cfg.runs, h.p50, h.p99, h.max, h.n, h.errors, h.appendP50, h.appendP99, h.rate)
	col.add("postgres", "visible p50", "ms", h.p50)
	col.add("postgres", "visible p99", "ms", h.p99)
	col.add("postgres", "append p50", "ms", h.appendP50)
	col.add("postgres", "append p99", "ms", h.appendP99)
	col.add("postgres", "rate kept", "events/s", h.rate)
	col.add("postgres", "errors", "count", float64(h.errors))
	return nil
}

// pgReplays replays the scale store's stream into SQLite and into the
// PostgreSQL database at url, on srv unless -pg-url named another.
func pgReplays(ctx context.Context, cfg config, run int, url string, srv *pgtest.Server, col *collector) error {
	sc := cfg.scale
	sc.events, sc.incidents = *pgEvents, *pgIncidents
	dir := sc.storeDir()
	if _, err := ensureScaleStore(ctx, sc, dir); err != nil {
		return fmt.Errorf("postgres store: %w", err)
	}
	b, err := keptBus(ctx, dir)
	if err != nil {
		return err
	}
	defer b.close()
	for _, target := range []struct{ name, url, path string }{
		{"sqlite", "", filepath.Join(dir, "timeline.db")},
		{"postgres", url, ""},
	} {
		cpu0, server0 := cpuTime(), serverCPU(srv)
		st, err := readmodel.OpenRebuild(ctx, target.url, target.path)
		if err != nil {
			return err
		}
		stats, err := timeline.RebuildInto(ctx, b.store, st, nil)
		if err != nil {
			return fmt.Errorf("replay into %s: %w", target.name, err)
		}
		// The processor time, which other programs on a shared machine do
		// not move as they move the wall time: this process's, and the
		// server's when the bench runs it (the rebuild's connections are
		// closed by now).
		cpu := cpuTime() - cpu0
		if target.url != "" && srv != nil {
			cpu += serverCPU(srv) - server0
		}
		col.add("postgres", target.name+" cpu", "s", cpu.Seconds())
		if target.path != "" {
			_ = os.Remove(target.path)
		}
		rate := float64(stats.Events) / stats.Duration.Seconds()
		col.add("postgres", "replay "+target.name, "events/s", rate)
		col.add("postgres", target.name+" time", "s", stats.Duration.Seconds())
		progress("run %d/%d postgres: replay of %d events into %s in %s (%.0f events/s, %.1f s of CPU)", run, cfg.runs, stats.Events, target.name, stats.Duration.Round(time.Millisecond), rate, cpu.Seconds())
	}
	return nil
}

// postgresNotes are the scenario's rows of the table.
func postgresNotes(col *collector) {
	col.compare("postgres", "replay postgres", "replay sqlite", "", "timeline.RebuildInto a PostgreSQL schema, renamed into place")
	col.compare("postgres", "postgres time", "", "< 60 s at 1M", "")
	col.compare("postgres", "sqlite time", "", "< 20 s at 1M", "")
	col.compare("postgres", "postgres cpu", "sqlite cpu", "", "processor seconds of the replay: the bench's process, and the server's when the bench started it")
	col.compare("postgres", "visible p99", "", "≤ 50 ms", "POST a note, long poll until the PostgreSQL store has it, paced at -rate")
	col.compare("postgres", "append p99", "", "", "the POST alone, before the long poll")
	col.compare("postgres", "rate kept", "", "", "events over the time from the first POST to the last answer: below -rate the hub fell behind, and the latency is mostly queueing")
}

// pgDatabase is -pg-url, or a database on a throwaway server (srv) that
// stop removes.
func pgDatabase(ctx context.Context) (url string, srv *pgtest.Server, stop func(), err error) {
	if *pgURL != "" {
		return *pgURL, nil, func() {}, nil
	}
	if srv, err = pgtest.Start(); err != nil {
		return "", nil, nil, fmt.Errorf("postgres: %w", err)
	}
	if url, err = srv.CreateDatabase(ctx); err != nil {
		_ = srv.Stop()
		return "", nil, nil, err
	}
	return url, srv, func() { _ = srv.Stop() }, nil
}

// serverCPU is srv's processor time so far, 0 when unknown.
func serverCPU(srv *pgtest.Server) time.Duration {
	if srv == nil {
		return 0
	}
	d, err := srv.CPU()
	if err != nil {
		return 0
	}
	return d
}
