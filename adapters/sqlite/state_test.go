package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
)

// Values and checkpoint survive a reopen, chunked writes included, and a
// later commit overwrites.
func TestStateCommitAndReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := OpenState(path)
	if err != nil {
		t.Fatal(err)
	}
	vals := map[string][]byte{}
	for i := range 2*stateChunk + 5 {
		vals[fmt.Sprintf("k%03d", i)] = []byte(fmt.Sprintf("v%d", i))
	}
	if err := s.Commit(ctx, vals, 7); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, map[string][]byte{"k000": []byte("again")}, 9); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err = OpenState(path); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if cp, err := s.Checkpoint(ctx); err != nil || cp != 9 {
		t.Fatalf("checkpoint %d %v, want 9", cp, err)
	}
	keys := 0
	if err := s.Keys(ctx, func(string) { keys++ }); err != nil || keys != len(vals) {
		t.Fatalf("listed %d keys %v", keys, err)
	}
	for k, want := range vals {
		if k == "k000" {
			want = []byte("again")
		}
		got, ok, err := s.Get(ctx, k)
		if err != nil || !ok || string(got) != string(want) {
			t.Fatalf("%s = %q %v %v, want %q", k, got, ok, err, want)
		}
	}
	if _, ok, err := s.Get(ctx, "missing"); ok || err != nil {
		t.Fatalf("missing key: %v %v", ok, err)
	}
}
