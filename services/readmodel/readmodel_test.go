package readmodel_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hikeshi/hikeshi/services/readmodel"
)

// A store that is neither SQLite (no URL) nor a PostgreSQL URL is refused
// with what to give instead.
func TestOpenRefusesOtherURLs(t *testing.T) {
	for _, url := range []string{"mysql://db/hikeshi", "timeline.db", "postgres:/db"} {
		if _, err := readmodel.Open(context.Background(), url, filepath.Join(t.TempDir(), "timeline.db")); err == nil || !strings.Contains(err.Error(), "postgres://") {
			t.Errorf("Open(%q): %v; want a refusal naming postgres://", url, err)
		}
		if _, err := readmodel.OpenState(context.Background(), url, filepath.Join(t.TempDir(), "signals.db")); err == nil {
			t.Errorf("OpenState(%q) opened", url)
		}
	}
}

// A store that cannot be opened is a nil Store, which a caller's cleanup
// (if st != nil { st.Close() }) skips.
func TestFailedOpenIsNil(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(dir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := readmodel.Open(context.Background(), "", filepath.Join(dir, "timeline.db"))
	if err == nil || st != nil {
		t.Errorf("Open under a file: %v, %v; want an error and a nil Store", st, err)
	}
}
