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
	ctx := t.Context()
	server := "http://" + runHub(t, hub.Config{})

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

// Titles and notes come from anyone who can declare or send an alert: the
// terminal of an operator reading them gets no escape sequence or control
// character, only their text.
func TestCLIPrintsNoControlCharacters(t *testing.T) {
	ctx := t.Context()
	server := "http://" + runHub(t, hub.Config{})
	cli := func(args ...string) string {
		var out, errOut bytes.Buffer
		if code := run(ctx, append(args, "--server", server), &out, &errOut); code != 0 {
			t.Fatalf("hikeshi %s: exit %d: %s", strings.Join(args, " "), code, errOut.String())
		}
		return out.String()
	}
	cli("declare", "--title", "Disk full\r\nBcc: x@example.com \x1b[31mred\x1b[0m", "--service", "storage", "--severity", "SEV2")
	cli("note", "INC-1", "now \x1b]0;pwned\x07 look \u202ereversed")
	clean := func(what, out string) {
		t.Helper()
		if strings.ContainsAny(out, "\x1b\x07\r\u202e") {
			t.Errorf("%s prints control characters: %q", what, out)
		}
	}
	clean("show", cli("show", "INC-1"))
	deadline := time.Now().Add(10 * time.Second)
	for {
		out := cli("timeline", "INC-1")
		if strings.Contains(out, "note:") {
			clean("timeline", out)
			if !strings.Contains(out, "now  look reversed") && !strings.Contains(out, "now look reversed") {
				t.Errorf("timeline lost the note's text: %q", out)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("timeline never had the note: %q", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	out := cli("ls")
	clean("ls", out)
	if !strings.Contains(out, "Disk full Bcc: x@example.com red") {
		t.Errorf("ls lost the title's text: %q", out)
	}
}

// runHub runs a hub with cfg (in a temporary data dir, on a free loopback
// port, with the binary's module table unless cfg says otherwise) until the test ends; it returns its
// address.
func runHub(t *testing.T, cfg hub.Config) string {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.Modules == nil {
		cfg.Modules = modules
	}
	ctx, cancel := context.WithCancel(context.Background())
	h, err := hub.Start(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return h.Addr()
}
