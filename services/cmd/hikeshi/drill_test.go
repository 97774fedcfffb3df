package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/services/hub"
)

// step is what a drill event says: its type and the field that matters.
func step(e drillEntry) string {
	short := e.Type[strings.LastIndex(e.Type, ".")+1:]
	for _, k := range []string{"to", "user", "text", "title"} {
		if v, ok := e.Data[k].(string); ok {
			return short + " " + v
		}
	}
	return short
}

// A closed incident replays as a new drill: the declaration (title
// saying what it replays, confidential with a codename of its own, drill), then its
// commander, status, severity and note events in order, and nothing on any
// other incident. A retried run appends nothing; a second run is a second
// drill.
func TestDrillReplaysAClosedIncident(t *testing.T) {
	c := cliT{t: t, ctx: t.Context(), server: "http://" + runHub(t, hub.Config{})}
	c.must("INC-1", "declare", "--title", "Card data export", "--service", "payments", "--severity", "SEV2", "--confidential")
	c.must("alice", "commander", "INC-1", "alice")
	c.must("identified", "status", "INC-1", "identified", "--message", "a public bucket")
	c.must("SEV1", "severity", "INC-1", "SEV1", "--reason", "card data")
	c.must("version", "note", "INC-1", "bucket made private")
	c.must("resolved", "status", "INC-1", "resolved")
	if out, code := c.run(c.ctx, "drill", "replay", "INC-1"); code != 1 || !strings.Contains(out, "only a closed incident") {
		t.Fatalf("replay of an open incident: exit %d, %q", code, out)
	}
	c.must("closed", "close", "INC-1", "--resolution", "bucket private, keys rotated")
	srcEvents := c.timeline("INC-1", 7)
	var src incidentView
	c.json(&src, "show", "INC-1")

	c.must("drill INC-2 declared", "drill", "replay", "INC-1", "--speed", "100000", "--run-id", "r1")
	var drill incidentView
	c.json(&drill, "show", "INC-2")
	if !drill.Drill || !drill.Confidential || drill.Codename == "" || drill.Codename == src.Codename ||
		drill.Title != "Replay of INC-1: Card data export" || drill.Status != "resolved" || drill.Severity != "SEV1" || drill.Commander != "alice" {
		t.Fatalf("the drill: %+v (source codename %q)", drill, src.Codename)
	}
	got := c.timeline("INC-2", 6)
	var want []string
	for _, e := range srcEvents[:6] { // all but the closing
		want = append(want, step(e))
	}
	want[0] = "declared Replay of INC-1: Card data export"
	var have []string
	for _, e := range got {
		have = append(have, step(e))
	}
	if strings.Join(have, "\n") != strings.Join(want, "\n") {
		t.Fatalf("drill events:\n%s\nwant:\n%s", strings.Join(have, "\n"), strings.Join(want, "\n"))
	}
	if got[0].Data["drill"] != true {
		t.Errorf("the drill's declaration is not marked drill: %v", got[0].Data)
	}
	onlyDrills := func(n int) {
		t.Helper()
		list := c.incidents()
		if len(list) != n+1 {
			t.Fatalf("%d incidents, want the source and %d drills", len(list), n)
		}
		for _, v := range list {
			if v.ID != src.ID && !v.Drill {
				t.Errorf("%s is not a drill", v.CaseNumber)
			}
			if v.ID == src.ID && v.Version != src.Version {
				t.Errorf("the source changed: version %d, was %d", v.Version, src.Version)
			}
		}
	}
	onlyDrills(1)

	// The same run again: the same drill, nothing appended.
	c.must("drill INC-2 declared", "drill", "replay", "INC-1", "--speed", "100000", "--run-id", "r1")
	var again incidentView
	c.json(&again, "show", "INC-2")
	if again.Version != drill.Version {
		t.Errorf("a retried run appended: version %d, was %d", again.Version, drill.Version)
	}
	onlyDrills(1)

	out := c.must("drill INC-3 declared", "drill", "replay", "INC-1", "--speed", "100000")
	if !strings.Contains(out, "--run-id ") {
		t.Errorf("a run does not print its id: %q", out)
	}
	onlyDrills(2)
}

// A scenario file runs as a drill; Ctrl-C stops it after the current step,
// saying where and how to resume; the resumed run finishes it without
// repeating a step.
func TestDrillScenarioStopsAndResumes(t *testing.T) {
	c := cliT{t: t, ctx: t.Context(), server: "http://" + runHub(t, hub.Config{})}
	dir := t.TempDir()
	file := filepath.Join(dir, "latency.yaml")
	scenario := `title: Payments latency
service: payments
severity: SEV3
steps:
  - at: 0s
    commander: bob
  - at: 10ms
    note: p99 above 2s in eu-west
  - at: 1h
    status: identified
    message: a slow query
`
	if err := os.WriteFile(file, []byte(scenario), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	type result struct {
		out  string
		code int
	}
	done := make(chan result, 1)
	go func() {
		out, code := c.run(ctx, "drill", "replay", "--from-scenario", file, "--speed", "1", "--run-id", "s1")
		done <- result{out, code}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var notes struct {
			Notes int `json:"notes"`
		}
		if out, code := c.run(c.ctx, "show", "INC-1", "--json"); code == 0 {
			_ = json.Unmarshal([]byte(out), &notes)
		}
		if notes.Notes == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the scenario's first two steps never ran")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	r := <-done
	if r.code != 1 || !strings.Contains(r.out, "stopped after step 2 of 3") || !strings.Contains(r.out, "--run-id s1 --from-step 3") {
		t.Fatalf("interrupted run: exit %d, %q", r.code, r.out)
	}
	c.must("replayed 3 steps", "drill", "replay", "--from-scenario", file, "--speed", "100000", "--run-id", "s1", "--from-step", "3")
	var drill incidentView
	c.json(&drill, "show", "INC-1")
	if !drill.Drill || drill.Title != "Payments latency" || drill.Commander != "bob" || drill.Status != "identified" {
		t.Fatalf("the scenario's drill: %+v", drill)
	}
	if evs := c.timeline("INC-1", 4); len(evs) != 4 {
		t.Fatalf("the drill has %d events, want 4 (declared, commander, note, status)", len(evs))
	}
	if n := len(c.incidents()); n != 1 {
		t.Fatalf("%d incidents, want the one drill", n)
	}

	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("title: T\nservice: s\nseverity: SEV3\nsteps:\n  - at: 1m\n    note: a\n    status: identified\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, code := c.run(c.ctx, "drill", "replay", "--from-scenario", bad); code != 1 || !strings.Contains(out, "step 1") {
		t.Fatalf("a step with two commands: exit %d, %q", code, out)
	}
}

// The scenario the README shows is a valid scenario file.
func TestDrillScenarioOfTheREADME(t *testing.T) {
	readme, err := os.ReadFile("../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "```yaml\ntitle: Primary database fails over")
	if !ok {
		t.Fatal("README has no drill scenario")
	}
	body, _, _ := strings.Cut(rest, "```")
	file := filepath.Join(t.TempDir(), "scenario.yaml")
	if err := os.WriteFile(file, []byte("title: Primary database fails over"+body), 0o600); err != nil {
		t.Fatal(err)
	}
	plan, err := scenarioPlan(file)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.steps) != 5 || plan.steps[2].at != 9*time.Minute || plan.steps[2].body["severity"] != "SEV1" {
		t.Fatalf("README scenario: %+v", plan.steps)
	}
}
