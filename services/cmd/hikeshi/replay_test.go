package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// hikeshiRun runs the hikeshi binary to completion and returns its exit
// code and output.
func hikeshiRun(t *testing.T, ctx context.Context, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.CommandContext(ctx, hikeshiBinary(t), args...)
	cmd.Env = cleanEnv()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("hikeshi %s: %v", strings.Join(args, " "), err)
	}
	return code, out.String(), errb.String()
}

// TestReplayTimeline checks that `hikeshi replay timeline` refuses to
// touch a data dir a running hub owns, and rebuilds it once the hub is
// stopped.
func TestReplayTimeline(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the hikeshi binary")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dataDir := t.TempDir()
	h := startHub(t, dataDir)
	id := declareIncident(t, ctx, h.base)
	const notes = 10
	for i := range notes {
		status, body, err := post(ctx, h.base, "/api/v1/incidents/"+id+"/notes", "", map[string]string{"text": fmt.Sprintf("note %d", i)})
		if err != nil || status != http.StatusOK {
			t.Fatalf("note %d: %d %s %v", i, status, body, err)
		}
	}
	before := waitTimeline(t, ctx, h, id)

	code, stdout, stderr := hikeshiRun(t, ctx, "replay", "timeline", "--data-dir", dataDir)
	if code != 1 || !strings.Contains(stderr, "in use by another hikeshi process") || !strings.Contains(stderr, "stop the hub") {
		t.Fatalf("replay while the hub runs: exit %d, stdout %q, stderr %q; want exit 1 and a data dir in use message", code, stdout, stderr)
	}
	// The hub is unharmed: its store still answers and still follows.
	status, body, err := post(ctx, h.base, "/api/v1/incidents/"+id+"/notes", "", map[string]string{"text": "after refused replay"})
	if err != nil || status != http.StatusOK {
		t.Fatalf("note after refused replay: %d %s %v", status, body, err)
	}
	before = waitTimeline(t, ctx, h, id)
	if len(before.Events) != notes+2 {
		t.Fatalf("timeline has %d events, want %d", len(before.Events), notes+2)
	}
	h.stop()

	code, stdout, stderr = hikeshiRun(t, ctx, "replay", "timeline", "--data-dir", dataDir)
	if code != 0 {
		t.Fatalf("replay after the hub stopped: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	m := regexp.MustCompile(`rebuilt (.+): (\d+) events up to stream sequence (\d+) in `).FindStringSubmatch(stdout)
	if m == nil {
		t.Fatalf("replay printed %q; want 'rebuilt PATH: N events up to stream sequence S in …'", stdout)
	}
	n, _ := strconv.Atoi(m[2])
	seq, _ := strconv.ParseUint(m[3], 10, 64)
	if m[1] != filepath.Join(dataDir, "timeline.db") || n != len(before.Events) || seq != before.Version {
		t.Errorf("replay rebuilt %s with %d events up to %d; want %s with %d up to %d",
			m[1], n, seq, filepath.Join(dataDir, "timeline.db"), len(before.Events), before.Version)
	}

	// A hub on the rebuilt store serves the same timeline, fed once.
	h = startHub(t, dataDir)
	after := waitTimeline(t, ctx, h, id)
	if len(after.Events) != len(before.Events) {
		t.Fatalf("after replay the timeline has %d events, before %d", len(after.Events), len(before.Events))
	}
	for i := range after.Events {
		if a, b := after.Events[i], before.Events[i]; a.Seq != b.Seq || a.ID != b.ID || a.Type != b.Type || !bytes.Equal(a.Data, b.Data) {
			t.Errorf("event %d after replay %+v, before %+v", i, a, b)
		}
	}
	h.stop()

	if code, _, stderr := hikeshiRun(t, ctx, "replay", "signals", "--data-dir", dataDir); code != 2 {
		t.Errorf("replay of an unknown projection: exit %d (%s), want 2", code, stderr)
	}
}
