package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"time"

	"github.com/hikeshi/hikeshi/events"
)

// asOf measures reads of an incident as it stood at a random past time
// (GET /incidents/{id}?as_of=), beside reads of its current state, on an
// incident of cfg.asOfEvents events.
func asOf(ctx context.Context, cfg config, run int, col *collector) error {
	rh, err := startHub(ctx, cfg, "asof", 1)
	if err != nil {
		return err
	}
	defer rh.close()
	id := events.NewID()
	start, end, err := longIncident(ctx, rh, id, cfg.asOfEvents)
	if err != nil {
		return err
	}
	path := "/api/v1/incidents/" + id
	at := func() string {
		t := start.Add(time.Duration(rand.Int64N(int64(end.Sub(start)) + 1)))
		return path + "?as_of=" + url.QueryEscape(t.Format(time.RFC3339Nano))
	}
	// The events went straight to the store, past the command handler and
	// its snapshots: a first current read loads them into its cache, so
	// that the first as-of read measures the history's own load.
	if err := rh.get(ctx, path, nil); err != nil {
		return err
	}
	t0 := time.Now()
	if err := rh.get(ctx, at(), nil); err != nil {
		return err
	}
	cold := time.Since(t0)
	timed := func(path func() string) (summary, error) {
		d := make([]time.Duration, 0, cfg.asOfReads)
		for range cfg.asOfReads {
			p := path()
			t := time.Now()
			if err := rh.get(ctx, p, nil); err != nil {
				return summary{}, err
			}
			d = append(d, time.Since(t))
		}
		return summarise(d, 0), nil
	}
	current, err := timed(func() string { return path })
	if err != nil {
		return err
	}
	past, err := timed(at)
	if err != nil {
		return err
	}
	progress("run %d/%d as-of: %d events, first read %.1f ms; as-of p50 %.2f ms p99 %.2f ms; current p50 %.2f ms p99 %.2f ms",
		run, cfg.runs, cfg.asOfEvents, float64(cold)/float64(time.Millisecond), past.p50, past.p99, current.p50, current.p99)
	col.add("asof", "get p50", "ms", current.p50)
	col.add("asof", "get p99", "ms", current.p99)
	col.add("asof", "as-of p50", "ms", past.p50)
	col.add("asof", "as-of p99", "ms", past.p99)
	col.add("asof", "first", "ms", float64(cold)/float64(time.Millisecond))
	return nil
}

// longIncident appends n events to incident id straight to the store, one
// a second of event time from a day ago: a declaration, then notes with a
// severity, status or commander change every few events. It returns the
// first and last event times.
func longIncident(ctx context.Context, rh *runningHub, id string, n int) (time.Time, time.Time, error) {
	store := rh.h.Bus().Events
	start := time.Now().Add(-24 * time.Hour).Truncate(time.Second)
	statuses := []events.Status{events.Investigating, events.Identified, events.Monitoring}
	var version uint64
	for i := range n {
		var d events.Data
		switch {
		case i == 0:
			d = events.Declared{Title: "Long incident", Service: "checkout", Severity: events.SEV2, DeclaredBy: "bench", CaseNumber: "BENCH-1"}
		case i%7 == 0:
			d = events.SeverityChanged{To: events.Severities[i%5]}
		case i%11 == 0:
			d = events.StatusUpdated{To: statuses[i%3]}
		case i%13 == 0:
			d = events.CommanderAssigned{User: fmt.Sprintf("user%d", i%17)}
		default:
			d = events.NoteAdded{Text: fmt.Sprintf("note %d", i)}
		}
		env, err := events.New(id, d, events.Meta{Time: start.Add(time.Duration(i) * time.Second), Actor: "bench"})
		if err != nil {
			return start, start, err
		}
		if version, _, err = store.Append(ctx, env, version); err != nil {
			return start, start, fmt.Errorf("as-of: append event %d: %w", i, err)
		}
	}
	return start, start.Add(time.Duration(n-1) * time.Second), nil
}
