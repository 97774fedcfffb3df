package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRecordCommands runs keys, verify and export against a hub's data dir
// after the hub stopped (sealing its last events in a checkpoint), then
// verifies the exported bundle offline with only the public key, and shows
// that a hand-edited bundle fails.
func TestRecordCommands(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dataDir := t.TempDir()
	h := startHub(t, dataDir)
	id := declareIncident(t, ctx, h.base)
	for i := range 3 {
		status, body, err := post(ctx, h.base, "/api/v1/incidents/"+id+"/notes", "", map[string]string{"text": fmt.Sprintf("note %d", i)})
		if err != nil || status != http.StatusOK {
			t.Fatalf("note %d: %d %s %v", i, status, body, err)
		}
	}
	h.stop()
	if !strings.Contains(h.output.String(), "generated a checkpoint signing key") {
		t.Errorf("the hub did not say it generated a signing key; output:\n%s", h.output)
	}

	code, key, stderr := hikeshiRun(t, ctx, "keys", "show", "--data-dir", dataDir)
	key = strings.TrimSpace(key)
	if code != 0 || !strings.HasPrefix(key, "ed25519:") {
		t.Fatalf("keys show: exit %d, %q %q", code, key, stderr)
	}
	for _, args := range [][]string{{"verify"}, {"verify", id}, {"verify", "INC-1"}} {
		code, out, stderr := hikeshiRun(t, ctx, append(args, "--data-dir", dataDir)...)
		if code != 0 || !strings.Contains(out, "the record is intact") || strings.Contains(out, " 0 checkpoints") || strings.Contains(out, "no checkpoint signs") {
			t.Fatalf("%v: exit %d, stdout %q, stderr %q; want an intact record sealed by a checkpoint (the hub seals its last events when it stops)", args, code, out, stderr)
		}
	}

	code, bundle, stderr := hikeshiRun(t, ctx, "export", "INC-1", "--data-dir", dataDir)
	if code != 0 {
		t.Fatalf("export: exit %d, %s", code, stderr)
	}
	path := filepath.Join(t.TempDir(), "bundle.json")
	if err := os.WriteFile(path, []byte(bundle), 0o600); err != nil {
		t.Fatal(err)
	}
	offline := []string{"verify", "--bundle", path, "--public-key", key, "--data-dir", filepath.Join(t.TempDir(), "none")}
	if code, out, stderr := hikeshiRun(t, ctx, offline...); code != 0 || !strings.Contains(out, "4 events of 1 incidents") {
		t.Fatalf("offline verify: exit %d, stdout %q, stderr %q", code, out, stderr)
	}

	edited := strings.Replace(bundle, "note 1", "note 9", 1)
	if err := os.WriteFile(path, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, _ := hikeshiRun(t, ctx, offline...); code != 1 || !strings.Contains(out, "BREAK changed") {
		t.Fatalf("edited bundle: exit %d, stdout %q; want exit 1 naming the changed event", code, out)
	}
}
