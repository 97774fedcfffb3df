package checkpoints

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/adapters/natsjs/natstest"
)

// TestLoadKeepsNoPastCheckpoints: a writer started on a record of many
// checkpoints seeds its heads from them and keeps only the last one, so
// that a hub's memory follows its incidents, not the events its record
// has had.
func TestLoadKeepsNoPastCheckpoints(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bus := natstest.Start(t)
	if err := EnsureStream(ctx, bus.JS, 1); err != nil {
		t.Fatal(err)
	}
	heads := make([]Head, 2000)
	for i := range heads {
		heads[i] = Head{Incident: fmt.Sprintf("incident-%05d", i), Seq: uint64(i), Hash: strings.Repeat("ab", 32), Events: 1}
	}
	const checkpoints = 100 // about 300 KB each on the stream, more decoded
	var at uint64
	for i := range checkpoints {
		var err error
		if at, err = publish(ctx, bus.JS, Checkpoint{Seq: uint64(i+1) * 1000, Heads: heads, Key: "k"}, at); err != nil {
			t.Fatal(err)
		}
	}
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	w := &Writer{JS: bus.JS, Key: key, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	before := heapInUse()
	if err := w.load(ctx); err != nil {
		t.Fatal(err)
	}
	grown := heapInUse() - before
	if w.covered != checkpoints*1000 || w.last == nil || w.last.Seq != checkpoints*1000 {
		t.Fatalf("loaded up to %d, want %d", w.covered, checkpoints*1000)
	}
	// The heads of 2,000 incidents take a few MB; every checkpoint's
	// copy of them, tens.
	if grown > 12<<20 {
		t.Errorf("the writer holds %d MiB after loading %d checkpoints of %d heads, want the heads once (a few MiB)", grown>>20, checkpoints, len(heads))
	}
	runtime.KeepAlive(w)
}

func heapInUse() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}
