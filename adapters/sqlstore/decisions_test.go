package sqlstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/adapters/sqlstore"
)

// Decisions are committed with the checkpoint, listed newest first by
// filter, rewritten (not doubled) when a batch is committed again, and
// pruned by count and by age.
func TestDecisionsLog(t *testing.T) { eachState(t, testDecisionsLog) }

func testDecisionsLog(t *testing.T, open func() *sqlstore.State) {
	ctx := context.Background()
	s := open()
	t0 := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	row := func(seq int, route, flagged string) sqlstore.Decision {
		return sqlstore.Decision{Seq: uint64(seq), Time: t0.Add(time.Duration(seq) * time.Minute), Source: "am", Fingerprint: fmt.Sprintf("fp%d", seq%3),
			Route: route, Rule: "r" + route, Flagged: flagged, Data: fmt.Appendf(nil, `{"seq":%d}`, seq)}
	}
	var batch []sqlstore.Decision
	for i := 1; i <= 150; i++ {
		route, flagged := "incident", ""
		if i%10 == 0 {
			route, flagged = "none", "broken rule"
		}
		batch = append(batch, row(i, route, flagged))
	}
	now := t0.Add(150 * time.Minute)
	for range 2 { // a batch handled again after a lost ack
		if err := s.CommitLog(ctx, map[string][]byte{"k": []byte("v")}, &sqlstore.Log{Decisions: batch, Keep: 100, Now: now}, 150); err != nil {
			t.Fatal(err)
		}
	}
	list := func(f sqlstore.DecisionFilter) []uint64 {
		t.Helper()
		ds, err := s.Decisions(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		var seqs []uint64
		for _, d := range ds {
			seqs = append(seqs, d.Seq)
		}
		return seqs
	}
	if got := list(sqlstore.DecisionFilter{Limit: 1000}); len(got) != 100 || got[0] != 150 || got[99] != 51 {
		t.Fatalf("kept %d rows (%v…), want seqs 150 down to 51", len(got), got[:min(3, len(got))])
	}
	yes, no := true, false
	if got := list(sqlstore.DecisionFilter{Flagged: &yes, Limit: 3}); fmt.Sprint(got) != "[150 140 130]" {
		t.Errorf("flagged: %v", got)
	}
	if got := list(sqlstore.DecisionFilter{Flagged: &no, Route: "incident", Fingerprint: "fp0", Before: 60, Limit: 5}); fmt.Sprint(got) != "[57 54 51]" {
		t.Errorf("incident fp0 before 60: %v", got)
	}
	if got := list(sqlstore.DecisionFilter{Rule: "rnone", Since: t0.Add(120 * time.Minute), Limit: 10}); fmt.Sprint(got) != "[150 140 130 120]" {
		t.Errorf("since: %v", got)
	}
	// Age: at minute 200 with a 60-minute bound, what is older than minute
	// 140 goes.
	if err := s.CommitLog(ctx, nil, &sqlstore.Log{Decisions: []sqlstore.Decision{row(151, "ticket", "")}, Keep: 100, MaxAge: time.Hour, Now: t0.Add(200 * time.Minute)}, 151); err != nil {
		t.Fatal(err)
	}
	if got := list(sqlstore.DecisionFilter{Limit: 1000}); len(got) != 12 || got[0] != 151 || got[11] != 140 {
		t.Errorf("after the age bound: %v", got)
	}
	if cp, err := s.Checkpoint(ctx); err != nil || cp != 151 {
		t.Errorf("checkpoint %d %v", cp, err)
	}
}
