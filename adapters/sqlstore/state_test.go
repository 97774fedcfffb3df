package sqlstore_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/hikeshi/hikeshi/adapters/sqlstore"
)

// Values and checkpoint survive a reopen, chunked writes included, and a
// later commit overwrites.
func TestStateCommitAndReopen(t *testing.T) { eachState(t, testStateCommitAndReopen) }

func testStateCommitAndReopen(t *testing.T, open func() *sqlstore.State) {
	ctx := context.Background()
	s := open()
	vals := map[string][]byte{}
	for i := range 2*sqlstore.StateChunk + 5 {
		vals[fmt.Sprintf("k%03d", i)] = []byte(fmt.Sprintf("v%d", i))
	}
	if err := s.Commit(ctx, vals, 7); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, map[string][]byte{"k000": []byte("again")}, 9); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = open()
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
