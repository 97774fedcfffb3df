package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/services/hub"
)

// TestCLIEvidenceMilestonesAndBackdatedNotes: evidence is added, handed
// over and listed with its chain; a backdated note and a milestone are
// recorded; the timeline prints both orders.
func TestCLIEvidenceMilestonesAndBackdatedNotes(t *testing.T) {
	ctx := t.Context()
	server := "http://" + runHub(t, hub.Config{})
	cli := func(args ...string) (string, int) {
		var out, errOut bytes.Buffer
		code := run(ctx, append(args, "--server", server), &out, &errOut)
		return out.String() + errOut.String(), code
	}
	must := func(want string, args ...string) string {
		t.Helper()
		out, code := cli(args...)
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("hikeshi %s: exit %d, output %q does not contain %q", strings.Join(args, " "), code, out, want)
		}
		return out
	}
	sha := "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	must("INC-1", "declare", "--title", "Stolen laptop", "--service", "it", "--severity", "SEV3")
	must("E1", "evidence", "add", "INC-1", "--name", "disk image", "--sha256", sha, "--location", "safe 3", "--custodian", "carol")
	out := must("carol → dan", "evidence", "handover", "INC-1", "E1", "--to", "dan", "--reason", "legal hold")
	if !strings.Contains(out, "dan") || !strings.Contains(out, "legal hold") {
		t.Errorf("evidence after hand-over:\n%s", out)
	}
	must("carol → dan", "evidence", "ls", "INC-1")
	if out, code := cli("evidence", "add", "INC-1", "--name", "x", "--sha256", "abc", "--location", "l", "--custodian", "c"); code != 1 || !strings.Contains(out, "sha256") {
		t.Errorf("bad hash: exit %d, %q", code, out)
	}
	if out, code := cli("evidence", "shred", "INC-1"); code != 2 || !strings.Contains(out, `unknown subcommand "shred" (add, handover, ls)`) {
		t.Errorf("unknown subcommand: exit %d, %q", code, out)
	}

	stolen := time.Now().Add(-26 * time.Hour).UTC().Truncate(time.Second)
	must("version", "note", "INC-1", "laptop", "left", "in", "the", "taxi", "--occurred-at", stolen.Format(time.RFC3339))
	must("version", "milestone", "INC-1", "impact_started", stolen.Format(time.RFC3339))
	if out, code := cli("note", "INC-1", "later", "--occurred-at", time.Now().Add(time.Hour).Format(time.RFC3339)); code != 1 || !strings.Contains(out, "future") {
		t.Errorf("future note: exit %d, %q", code, out)
	}
	out = must("impact_started", "milestones", "INC-1")
	if !strings.Contains(out, "recorded") || !strings.Contains(out, "detected") {
		t.Errorf("milestones:\n%s", out)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, code := cli("timeline", "INC-1", "--order", "occurred")
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if code == 0 && len(lines) == 5 {
			if !strings.Contains(lines[0], "note: laptop left in the taxi") || !strings.Contains(lines[0], "(recorded ") {
				t.Errorf("occurred order does not start with the backdated note:\n%s", out)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("timeline never caught up: %q", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if out := must("declared INC-1", "timeline", "INC-1"); !strings.HasPrefix(strings.SplitN(out, "\n", 2)[0], time.Now().Local().Format("2006-01-02")) || !strings.Contains(strings.SplitN(out, "\n", 2)[0], "declared") {
		t.Errorf("recorded order does not start with the declaration:\n%s", out)
	}
}
