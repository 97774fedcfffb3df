package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// cliT runs the command line against a hub.
type cliT struct {
	t      *testing.T
	ctx    context.Context
	server string
}

func (c cliT) run(ctx context.Context, args ...string) (string, int) {
	var out, errOut bytes.Buffer
	code := run(ctx, append(args, "--server", c.server), &out, &errOut)
	return out.String() + errOut.String(), code
}

func (c cliT) must(want string, args ...string) string {
	c.t.Helper()
	out, code := c.run(c.ctx, args...)
	if code != 0 || !strings.Contains(out, want) {
		c.t.Fatalf("hikeshi %s: exit %d, output %q does not contain %q", strings.Join(args, " "), code, out, want)
	}
	return out
}

// json runs a command with --json and decodes its answer.
func (c cliT) json(v any, args ...string) {
	c.t.Helper()
	out := c.must("", append(args, "--json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		c.t.Fatalf("hikeshi %s --json: %v: %s", strings.Join(args, " "), err, out)
	}
}

type drillEntry struct {
	Seq  uint64         `json:"seq"`
	Type string         `json:"type"`
	Data map[string]any `json:"data"`
}

// timeline waits until the incident's timeline has n events.
func (c cliT) timeline(ref string, n int) []drillEntry {
	c.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var tl struct {
			Events []drillEntry `json:"events"`
		}
		c.json(&tl, "timeline", ref)
		if len(tl.Events) >= n {
			return tl.Events
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("timeline of %s has %d events, want %d", ref, len(tl.Events), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (c cliT) incidents() []incidentView {
	c.t.Helper()
	var out struct {
		Incidents []incidentView `json:"incidents"`
	}
	c.json(&out, "ls")
	return out.Incidents
}
