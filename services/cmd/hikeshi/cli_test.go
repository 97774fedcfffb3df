package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/services/hub"
)

// The client commands walk an incident through its life against a real hub,
// the way the README shows it.
func TestCLIWalksAnIncidentToClosed(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	h, err := hub.Start(ctx, hub.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	server := "http://" + h.Addr()

	cli := func(args ...string) (string, int) {
		var out, errOut bytes.Buffer
		code := run(ctx, append(args, "--server", server), &out, &errOut)
		return out.String() + errOut.String(), code
	}
	must := func(want string, args ...string) {
		t.Helper()
		out, code := cli(args...)
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("hikeshi %s: exit %d, output %q does not contain %q", strings.Join(args, " "), code, out, want)
		}
	}
	must("INC-1", "declare", "--title", "Checkout DB outage", "--service", "payments", "--severity", "SEV2", "--drill")
	must("alice", "commander", "INC-1", "alice")
	must("identified", "status", "INC-1", "identified", "--message", "a migration locked the table")
	must("SEV1", "severity", "INC-1", "SEV1", "--reason", "all regions")
	must("version", "note", "INC-1", "rolling", "back", "the", "migration")
	must("resolved", "status", "INC-1", "resolved")
	must("closed", "close", "INC-1", "--resolution", "rolled back", "--lessons", "flag migrations")

	// Lists and timelines come from the projection, which follows the
	// stream a moment behind the commands.
	eventually := func(want string, args ...string) string {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			out, code := cli(args...)
			if code == 0 && strings.Contains(out, want) {
				return out
			}
			if time.Now().After(deadline) {
				t.Fatalf("hikeshi %s: exit %d, output %q never contained %q", strings.Join(args, " "), code, out, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	eventually("[DRILL]", "ls", "--status", "closed")
	out := eventually("closed:", "timeline", "INC-1")
	for _, want := range []string{
		"declared INC-1 SEV2 on payments: Checkout DB outage",
		"commander: alice",
		"status investigating → identified a migration locked the table",
		"severity SEV2 → SEV1 all regions",
		"note: rolling back the migration",
		"closed: rolled back; lessons: flag migrations",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("timeline lacks %q:\n%s", want, out)
		}
	}

	// Refusals come back as the API's reason with a non-zero exit.
	if out, code := cli("status", "INC-1", "monitoring"); code != 1 || !strings.Contains(out, "closed") {
		t.Fatalf("status on a closed incident: exit %d, %q", code, out)
	}
	if out, code := cli("note", "INC-1"); code != 2 || !strings.Contains(out, "usage: hikeshi note ID TEXT") {
		t.Fatalf("note without text: exit %d, %q", code, out)
	}
	if out, code := cli("show", "INC-404"); code != 1 || !strings.Contains(out, "not found") {
		t.Fatalf("unknown case: exit %d, %q", code, out)
	}
}
