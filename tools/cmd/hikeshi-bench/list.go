package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"path/filepath"
	"time"

	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/readmodel"
)

var listIncidents = flag.Int("scale-list-incidents", 100_000, "scale: incidents in the timeline store whose list pages are measured")

// scaleList measures the incident list of a hub whose timeline store holds
// listIncidents incidents: the first page of 50 and a page in the middle
// (?before=), p99 over sc.probes calls each. The rows are written into the
// store directly: a list reads the store, whatever stream filled it.
func scaleList(ctx context.Context, sc scaleConfig, run, runs int, col *collector) error {
	dir, err := tempDir("list")
	if err != nil {
		return err
	}
	ids, err := fillIncidentRows(ctx, filepath.Join(dir, "timeline.db"), *listIncidents)
	if err != nil {
		return fmt.Errorf("list store: %w", err)
	}
	rh, err := startHubIn(ctx, dir, 4)
	if err != nil {
		return err
	}
	rh.keep = false
	defer rh.close()
	first, err := pathP99(ctx, rh, sc.probes, "/api/v1/incidents?limit=50")
	if err != nil {
		return err
	}
	middle, err := pathP99(ctx, rh, sc.probes, "/api/v1/incidents?limit=50&before="+ids[len(ids)/2])
	if err != nil {
		return err
	}
	col.add("scale", "list 100k p99", "ms", first.p99)
	col.add("scale", "page 100k p99", "ms", middle.p99)
	progress("run %d/%d scale list of %d incidents: first page p99 %.2f ms, a middle page p99 %.2f ms", run, runs, len(ids), first.p99, middle.p99)
	return nil
}

// fillIncidentRows writes n incident rows, as the timeline projector would
// after n declarations, and returns their ids in declaration order.
func fillIncidentRows(ctx context.Context, path string, n int) ([]string, error) {
	st, err := readmodel.Open(ctx, "", path)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	ids := make([]string, n)
	declared := time.Now().Add(-time.Duration(n) * time.Minute)
	var rows []readmodel.Row
	for i := range ids {
		ids[i] = events.NewID()
		at := declared.Add(time.Duration(i) * time.Minute)
		status := "resolved"
		if i%10 == 0 {
			status = "investigating"
		}
		snap, err := json.Marshal(map[string]any{
			"id": ids[i], "case_number": fmt.Sprintf("INC-%d", i+1), "title": fmt.Sprintf("list incident %d", i),
			"service": "bench", "severity": "SEV3", "status": status, "declared_by": "bench",
			"declared_at": at, "updated_at": at, "version": uint64(i + 1), "events": 1,
		})
		if err != nil {
			return nil, err
		}
		rows = append(rows, readmodel.Row{ID: ids[i], CaseNumber: fmt.Sprintf("INC-%d", i+1), Status: status, Open: status != "resolved",
			DeclaredAt: at, Version: uint64(i + 1), Snapshot: snap, DeclaredSeq: uint64(i + 1)})
		if len(rows) == 5_000 || i == n-1 {
			if err := st.PutIncidents(ctx, rows); err != nil {
				return nil, err
			}
			rows = rows[:0]
		}
	}
	return ids, nil
}

// pathP99 calls GET path n times.
func pathP99(ctx context.Context, rh *runningHub, n int, path string) (summary, error) {
	var d []time.Duration
	for range n {
		start := time.Now()
		if err := rh.get(ctx, path, nil); err != nil {
			return summary{}, err
		}
		d = append(d, time.Since(start))
	}
	return summarise(d, 0), nil
}
