// Command timeline-prof times and profiles the timeline's bulk paths over a
// kept JetStream store (such as hikeshi-bench's cached scale store): a raw
// ordered read, a rebuild (timeline.Rebuild, as `hikeshi replay timeline`)
// and the live projector's catch-up on an empty store (Projector.CatchUp).
//
//	go run ./tools/cmd/timeline-prof -nats $TMPDIR/hikeshi-bench-scale/store-1000000-20000/nats -mode rebuild -cpuprofile rebuild.cpu
//
// It opens the store's files with its own embedded server: run it only on a
// store no other process has open.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"time"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/adapters/sqlite"
	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/timeline"
	"github.com/nats-io/nats.go/jetstream"
)

func main() {
	storeDir := flag.String("nats", "", "JetStream store directory to read (kept as it is)")
	mode := flag.String("mode", "rebuild", "raw (messages only), read (envelopes decoded), rebuild or catchup")
	out := flag.String("db", "", "timeline database to write (default: a temp file, removed after)")
	cpu := flag.String("cpuprofile", "", "write a CPU profile of the measured part to this file")
	flag.Parse()
	if *storeDir == "" {
		fmt.Fprintln(os.Stderr, "timeline-prof: give -nats DIR, the JetStream store directory")
		os.Exit(2)
	}
	if err := run(context.Background(), *storeDir, *mode, *out, *cpu); err != nil {
		fmt.Fprintln(os.Stderr, "timeline-prof:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, storeDir, mode, out, cpu string) error {
	ns, err := natsjs.StartEmbedded(natsjs.EmbeddedConfig{StoreDir: storeDir})
	if err != nil {
		return err
	}
	defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
	nc, err := natsjs.Connect(ns, "", "timeline-prof")
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	es, err := natsjs.NewStore(ctx, js)
	if err != nil {
		return err
	}
	if out == "" {
		dir, err := os.MkdirTemp("", "timeline-prof-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		out = filepath.Join(dir, "timeline.db")
	}
	stop, err := profile(cpu)
	if err != nil {
		return err
	}
	start := time.Now()
	n, err := measure(ctx, es, mode, out)
	stop()
	if err != nil {
		return err
	}
	el := time.Since(start)
	fmt.Printf("%s: %d events in %s, %.0f events/s\n", mode, n, el.Round(time.Millisecond), float64(n)/el.Seconds())
	return nil
}

func measure(ctx context.Context, es *natsjs.Store, mode, out string) (int, error) {
	switch mode {
	case "raw":
		return readRaw(ctx, es.JetStream())
	case "read":
		n := 0
		err := es.Read(ctx, natsjs.ReadOptions{}, func(events.Stored) error { n++; return nil })
		return n, err
	case "rebuild":
		stats, err := timeline.Rebuild(ctx, es, out, nil)
		return stats.Events, err
	case "catchup":
		st, err := sqlite.Open(out)
		if err != nil {
			return 0, err
		}
		defer st.Close()
		timeline.CatchUpAfter = 1
		row := timeline.New(st).CatchUp(es)
		if _, err := row.CatchUp(ctx); err != nil {
			return 0, err
		}
		cp, err := st.Checkpoint(ctx, timeline.Name)
		return int(cp), err
	}
	return 0, errors.New("mode: raw, read, rebuild or catchup")
}

func profile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// readRaw reads every incident message through an ordered consumer without
// decoding it: the bus's own speed.
func readRaw(ctx context.Context, js jetstream.JetStream) (int, error) {
	st, err := js.Stream(ctx, events.IncidentStream)
	if err != nil {
		return 0, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, err
	}
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{events.IncidentSubjectPrefix + ".>"}})
	if err != nil {
		return 0, err
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(1000))
	if err != nil {
		return 0, err
	}
	defer it.Stop()
	for n := 1; ; n++ {
		m, err := it.Next()
		if err != nil {
			return n, err
		}
		md, err := m.Metadata()
		if err != nil {
			return n, err
		}
		if md.Sequence.Stream >= info.State.LastSeq {
			return n, nil
		}
	}
}
