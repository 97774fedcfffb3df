package main

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/services/hub"
)

// show --as-of prints the incident as it stood then; diff lists the fields
// that changed and the events in between.
func TestCLIShowAsOfAndDiff(t *testing.T) {
	c := cliT{t: t, ctx: t.Context(), server: "http://" + runHub(t, hub.Config{})}
	c.must("INC-1", "declare", "--title", "Checkout DB outage", "--service", "payments", "--severity", "SEV2")
	var declared incidentView
	c.json(&declared, "show", "INC-1")
	time.Sleep(5 * time.Millisecond)
	between := time.Now().UTC().Format(time.RFC3339Nano)
	time.Sleep(5 * time.Millisecond)
	c.must("alice", "commander", "INC-1", "alice")
	c.must("SEV1", "severity", "INC-1", "SEV1", "--reason", "all regions")
	c.must("version", "note", "INC-1", "rolling back")
	c.timeline("INC-1", 4)

	for _, at := range []string{between, strconv.FormatUint(declared.Version, 10)} {
		out := c.must("SEV2", "show", "INC-1", "--as-of", at)
		if strings.Contains(out, "alice") {
			t.Errorf("show --as-of %s shows the later commander:\n%s", at, out)
		}
	}
	before := declared.DeclaredAt.Add(-time.Hour).Format(time.RFC3339)
	if out, code := c.run(c.ctx, "show", "INC-1", "--as-of", before); code != 1 || !strings.Contains(out, "did not exist") {
		t.Errorf("show before the declaration: exit %d, %q", code, out)
	}
	if out, code := c.run(c.ctx, "show", "INC-1", "--as-of", "yesterday"); code != 1 || !strings.Contains(out, "RFC 3339") {
		t.Errorf("show --as-of yesterday: exit %d, %q", code, out)
	}

	out := c.must("3 event(s) between", "diff", "INC-1", "--from", between)
	for _, want := range []string{"commander", "→ alice", "severity", "SEV2", "→ SEV1", "notes", "commander: alice", "severity SEV2 → SEV1 all regions", "note: rolling back"} {
		if !strings.Contains(out, want) {
			t.Errorf("diff lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "title") {
		t.Errorf("diff lists an unchanged field:\n%s", out)
	}
	// From before the declaration, everything is new.
	out = c.must("1 event(s) between", "diff", "INC-1", "--from", before, "--to", between)
	if !strings.Contains(out, "title") || !strings.Contains(out, "Checkout DB outage") {
		t.Errorf("diff from before the declaration:\n%s", out)
	}
}
