package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/config"
	"github.com/hikeshi/hikeshi/services/hub"
	"github.com/hikeshi/hikeshi/services/module"
	"github.com/hikeshi/hikeshi/services/projection"
	"github.com/hikeshi/hikeshi/services/readmodel"
	"github.com/hikeshi/hikeshi/services/signals"
	"github.com/hikeshi/hikeshi/services/signals/projector"
	"github.com/hikeshi/hikeshi/services/timeline"
	"github.com/nats-io/nats.go/jetstream"
)

const replayUsage = "CONSUMER [--from-seq N] [flags]"

// replay runs one consumer by itself, with the hub stopped: the timeline
// and the signal projector rebuild their stores from the start; every
// other projector is handed its events again from --from-seq and its
// consumer left after the last.
func replay(ctx context.Context, args []string, stdout io.Writer) error {
	cfg := hub.Config{Modules: modules}
	f := newFlags("replay", replayUsage)
	hubFlags(f, &cfg)
	cfgPath := moduleFlags(f, &cfg)
	from := f.Uint64("from-seq", 0, "replay from this stream sequence (default: the first); not for timeline and signals, which rebuild their stores whole")
	level := f.String("log-level", "warn", "debug, info, warn or error")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("%w: name one consumer (%s, or another projector of a module)", errUsage, strings.Join(consumerNames(), ", "))
	}
	name := pos[0]
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(*level)); err != nil {
		return fmt.Errorf("%w: --log-level %q", errUsage, *level)
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lv}))
	slog.SetDefault(cfg.Logger)
	if (name == timeline.Name || name == projector.Durable) && *from != 0 {
		return fmt.Errorf("%w: %s keeps a store of its own, which replay rebuilds whole from the start: --from-seq does not apply to it", errUsage, name)
	}
	if name == timeline.Name {
		return replayTimeline(ctx, cfg, stdout)
	}
	if cfg.File, err = loadConfig(*cfgPath); err != nil {
		return err
	}
	h, err := hub.Open(ctx, cfg)
	if errors.Is(err, hub.ErrLocked) {
		return fmt.Errorf("%v: stop the hub first; replay runs the consumer by itself", err)
	}
	if err != nil {
		return err
	}
	defer h.Close()
	if name == projector.Durable && cfg.File.Has(signals.Name) {
		return replaySignals(ctx, h, cfg, stdout)
	}
	p, err := projectorNamed(ctx, h, cfg.File, name)
	if err != nil {
		return err
	}
	return replayProjector(ctx, h, p, *from, stdout)
}

// consumerNames are the consumers known without building a module: the
// timeline and one per module, named like it.
func consumerNames() []string {
	names := []string{timeline.Name}
	for _, m := range modules {
		names = append(names, m.Name)
	}
	return names
}

// projectorNamed builds the modules configured in hikeshi.yaml, the one
// named like the consumer first, until one has a projector of that name.
func projectorNamed(ctx context.Context, h *hub.Hub, file *config.File, name string) (projection.Projector, error) {
	ordered := slices.Clone(modules)
	slices.SortStableFunc(ordered, func(a, b module.Module) int {
		switch name {
		case a.Name:
			return -1
		case b.Name:
			return 1
		}
		return 0
	})
	known := []string{timeline.Name}
	var unconfigured []string
	for _, m := range ordered {
		if !file.Has(m.Name) {
			unconfigured = append(unconfigured, m.Name)
			continue
		}
		parts, err := h.ModuleParts(ctx, m.Name)
		if err != nil {
			return projection.Projector{}, err
		}
		for _, p := range parts.Projectors {
			if p.Durable == name {
				return p, nil
			}
			known = append(known, p.Durable)
		}
		if m.Name == signals.Name {
			known = append(known, projector.Durable)
		}
	}
	if slices.Contains(unconfigured, name) {
		return projection.Projector{}, fmt.Errorf("module %s is not configured: hikeshi.yaml has no %s section (give replay the --config of the hub)", name, name)
	}
	slices.Sort(known)
	also := ""
	if len(unconfigured) > 0 {
		slices.Sort(unconfigured)
		also = " (modules not configured in hikeshi.yaml: " + strings.Join(unconfigured, ", ") + ")"
	}
	return projection.Projector{}, fmt.Errorf("%w: unknown consumer %q; the consumers are %s%s", errUsage, name, strings.Join(known, ", "), also)
}

// replayProjector hands p its events again from stream sequence from and
// leaves its consumer after the last.
func replayProjector(ctx context.Context, h *hub.Hub, p projection.Projector, from uint64, stdout io.Writer) error {
	bar := newProgress(os.Stderr)
	cfg := projection.Config{Dial: h.Bus().Dial, JS: h.Bus().JS, Logger: slog.Default()}
	stats, err := projection.Replay(ctx, cfg, p, from, bar.update)
	bar.done()
	if errors.Is(err, projection.ErrConsumerInUse) {
		return err
	}
	if err != nil {
		done := ""
		if stats.Events > 0 {
			done = fmt.Sprintf(" after %d events, up to stream sequence %d", stats.Events, stats.Last)
		}
		return fmt.Errorf("replay %s stopped%s: %w; its consumer was left where it was, so the hub handles those events again (safely) when it starts",
			p.Durable, done, err)
	}
	if stats.Events == 0 {
		fmt.Fprintf(stdout, "nothing to replay: %s has no events from stream sequence %d on; its consumer was left where it was\n", p.Durable, max(from, 1))
		return nil
	}
	fmt.Fprintf(stdout, "replayed %s: %d events from stream sequence %d up to %d in %s (%.0f events/s); the hub continues after %d\n",
		p.Durable, stats.Events, stats.First, stats.Last, stats.Duration.Round(time.Millisecond), rate(stats.Events, stats.Duration), stats.Last)
	if stats.DeadLettered > 0 {
		fmt.Fprintf(stdout, "%d of them could not be handled and went to the dead-letter stream (the log says why)\n", stats.DeadLettered)
	}
	return nil
}

func rate(n int, d time.Duration) float64 { return float64(n) / max(d.Seconds(), 1e-9) }

// replayTimeline rebuilds the timeline store from the whole stream.
func replayTimeline(ctx context.Context, cfg hub.Config, stdout io.Writer) error {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	// The store is rebuilt in place: no hub may have it open.
	lock, err := hub.LockDataDir(cfg.DataDir)
	if err != nil {
		return fmt.Errorf("%v: stop the hub (or its timeline target) first; the replay replaces its timeline store", err)
	}
	defer lock.Release()
	bus, err := hub.OpenBus(ctx, &cfg)
	if err != nil {
		return err
	}
	defer bus.Close()
	if cfg.Store != "" {
		// A shared store is written by every replica's timeline: one still
		// running would go on after its own position in the rebuilt store,
		// leaving out what came between the rebuild's end and it.
		reading, err := readingTimelines(ctx, bus.JS)
		if err != nil {
			return err
		}
		if len(reading) > 0 {
			return fmt.Errorf("replay timeline: timeline consumers %s have a reader: stop every hub that writes %s first", strings.Join(reading, ", "), readmodel.Describe(cfg.Store, cfg.TimelinePath()))
		}
	}
	st, err := readmodel.OpenRebuild(ctx, cfg.Store, cfg.TimelinePath())
	if err != nil {
		return fmt.Errorf("replay timeline: %w", err)
	}
	where := st.Where()
	bar := newProgress(os.Stderr)
	stats, err := timeline.RebuildInto(ctx, bus.Events, st, bar.update)
	bar.done()
	if err != nil {
		return fmt.Errorf("replay timeline: %w (the previous timeline store was left in place)", err)
	}
	fmt.Fprintf(stdout, "rebuilt %s: %d events up to stream sequence %d in %s (%.0f events/s)\n",
		where, stats.Events, stats.LastSeq, stats.Duration.Round(time.Millisecond), rate(stats.Events, stats.Duration))
	return nil
}

// replaySignals rebuilds the signal projector's state from the SIGNALS
// stream, as the projector does when its state file is lost: the file is
// set aside, the projector runs until it has handled every signal stored
// when the replay began, and stops. Its consumer is then after the last.
func replaySignals(ctx context.Context, h *hub.Hub, cfg hub.Config, stdout io.Writer) error {
	start := time.Now()
	js := h.Bus().JS
	stream, err := js.Stream(ctx, events.SignalStream)
	if err != nil {
		return fmt.Errorf("stream %s: %w", events.SignalStream, err)
	}
	stored := stream.CachedInfo().State
	state := readmodel.DescribeState(cfg.Store, filepath.Join(cfg.DataDir, projector.StateFile))
	kept, undo, err := setAsideState(ctx, cfg)
	if err != nil {
		return err
	}
	// The consumer's position belongs to the state set aside: the
	// projector makes it again after the new state's checkpoint.
	if err := js.DeleteConsumer(ctx, events.SignalStream, projector.Durable); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return fmt.Errorf("consumer %s: %w", projector.Durable, err)
	}
	parts, err := h.ModuleParts(ctx, signals.Name)
	if err != nil {
		return err
	}
	bar := newProgress(os.Stderr)
	err = runUntil(ctx, parts.Background, func(ctx context.Context) (bool, error) {
		if w := h.Waiting(); len(w) > 0 {
			return false, fmt.Errorf("%w: the signal projector runs in another process (%s): stop it first", projection.ErrConsumerInUse, strings.Join(slices.Sorted(maps.Values(w)), "; "))
		}
		c, err := js.Consumer(ctx, events.SignalStream, projector.Durable)
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			return false, nil // not made yet
		}
		if err != nil {
			return false, err
		}
		floor := c.CachedInfo().AckFloor.Stream
		bar.update(floor, stored.LastSeq)
		return floor >= stored.LastSeq, nil
	})
	bar.done()
	if errors.Is(err, projection.ErrConsumerInUse) {
		// Nothing was rebuilt: the state goes back where it was.
		return errors.Join(err, undo(context.WithoutCancel(ctx)))
	}
	if err != nil {
		return fmt.Errorf("replay signals stopped: %w; the state rebuilt so far is kept, and the hub continues from it when it starts", err)
	}
	d := time.Since(start)
	fmt.Fprintf(stdout, "rebuilt %s: %d signals up to stream sequence %d in %s (%.0f signals/s); the hub continues after %d\n",
		state, stored.Msgs, stored.LastSeq, d.Round(time.Millisecond), rate(int(stored.Msgs), d), stored.LastSeq)
	if kept != "" {
		fmt.Fprintf(stdout, "the previous state is in %s\n", kept)
	}
	return nil
}

// runUntil runs loops until done reports true, checking every so often;
// it stops them, and returns, at the first error of done or of a loop.
func runUntil(ctx context.Context, loops []func(context.Context) error, done func(context.Context) (bool, error)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, len(loops))
	for _, loop := range loops {
		go func() { errs <- loop(ctx) }()
	}
	wait := func() {
		cancel()
		for range loops {
			<-errs
		}
	}
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			wait()
			return ctx.Err()
		case err := <-errs:
			loops = loops[1:]
			wait()
			if err == nil {
				err = errors.New("stopped before it was done")
			}
			return err
		case <-t.C:
			ok, err := done(ctx)
			if ok || err != nil {
				wait()
				return err
			}
		}
	}
}

// setAsideState moves the signal projector's state out of the way of a
// rebuild: its file in the data dir, or its schema in PostgreSQL (--store).
// undo puts it back; kept says where it went ("": there was none).
func setAsideState(ctx context.Context, cfg hub.Config) (kept string, undo func(context.Context) error, err error) {
	if cfg.Store != "" {
		return readmodel.SetAsideState(ctx, cfg.Store)
	}
	path := filepath.Join(cfg.DataDir, projector.StateFile)
	kept, err = setAside(path)
	return kept, func(context.Context) error { return restore(kept, path) }, err
}

// setAside renames a SQLite database and its journal files to
// path.before-replay, replacing an earlier one; it returns the new name,
// or "" when there was no database.
func setAside(path string) (string, error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	kept := path + ".before-replay"
	for _, suffix := range []string{"", "-wal", "-shm"} {
		_ = os.Remove(kept + suffix)
		if err := os.Rename(path+suffix, kept+suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("set %s aside: %w", path, err)
		}
	}
	return kept, nil
}

// restore undoes setAside.
func restore(kept, path string) error {
	if kept == "" {
		return nil
	}
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Rename(kept+suffix, path+suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("put %s back as %s: %w", kept, path, err)
		}
	}
	return nil
}
