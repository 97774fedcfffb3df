package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/command"
	"github.com/hikeshi/hikeshi/services/incident"
	"github.com/hikeshi/hikeshi/services/timeline"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"
)

// appendAndRead runs the append scenario (raw, core, http) and the read
// scenario, which reads back the stream the core path wrote.
func appendAndRead(ctx context.Context, cfg config, run int, col *collector) error {
	if cfg.scenarios["append"] {
		rate, err := appendRaw(ctx, cfg)
		if err != nil {
			return fmt.Errorf("append raw: %w", err)
		}
		col.add("append", "raw", "events/s", rate)
		progress("run %d/%d append raw:    %8.0f events/s", run, cfg.runs, rate)
	}

	if cfg.scenarios["append"] {
		chained, unchained, err := chainCost(ctx, cfg)
		if err != nil {
			return fmt.Errorf("append chain cost: %w", err)
		}
		col.add("append", "chained", "events/s", chained)
		col.add("append", "unchained", "events/s", unchained)
		col.add("append", "chained/unchained", "×", chained/unchained)
		progress("run %d/%d append chained: %8.0f events/s, unchained %8.0f events/s", run, cfg.runs, chained, unchained)
	}

	b, err := startBus(ctx, cfg, "core")
	if err != nil {
		return err
	}
	defer b.close()
	rate, err := appendCore(ctx, cfg, b)
	if err != nil {
		return fmt.Errorf("append core: %w", err)
	}
	if cfg.scenarios["append"] {
		col.add("append", "core", "events/s", rate)
		progress("run %d/%d append core:   %8.0f events/s", run, cfg.runs, rate)
	}

	if cfg.scenarios["read"] {
		rate, err := readRaw(ctx, b)
		if err != nil {
			return fmt.Errorf("read raw: %w", err)
		}
		col.add("read", "raw", "events/s", rate)
		progress("run %d/%d read raw:      %8.0f events/s", run, cfg.runs, rate)
		rate, err = readReplay(ctx, b)
		if err != nil {
			return fmt.Errorf("read replay: %w", err)
		}
		col.add("read", "replay", "events/s", rate)
		progress("run %d/%d read replay:   %8.0f events/s", run, cfg.runs, rate)
		if rate, err = verifyRate(ctx, b); err != nil {
			return fmt.Errorf("read verify: %w", err)
		}
		col.add("read", "verify", "events/s", rate)
		progress("run %d/%d read verify:   %8.0f events/s", run, cfg.runs, rate)
	}
	b.close()

	if cfg.scenarios["append"] {
		rate, err := appendHTTP(ctx, cfg)
		if err != nil {
			return fmt.Errorf("append http: %w", err)
		}
		col.add("append", "http", "events/s", rate)
		progress("run %d/%d append http:   %8.0f events/s", run, cfg.runs, rate)
	}
	return nil
}

// appendRaw is the baseline: what nats.go does for the same appends, with
// the same Msg-Id and per-incident optimistic concurrency, and a body of the
// same size, but no domain logic.
func appendRaw(ctx context.Context, cfg config) (float64, error) {
	b, err := startBus(ctx, cfg, "raw")
	if err != nil {
		return 0, err
	}
	defer b.close()
	return publishRaw(ctx, cfg, b.js)
}

// publishRaw is appendRaw's loop on js: c writers, each on its own
// subject, with a Msg-Id and the expected last sequence, as the hub does.
func publishRaw(ctx context.Context, cfg config, js jetstream.JetStream) (float64, error) {
	counts := split(cfg.n, cfg.c)
	type writer struct {
		subject, filter string
		body            []byte
	}
	ws := make([]writer, cfg.c)
	for i := range ws {
		id := events.NewID()
		env, err := events.New(id, &events.NoteAdded{Text: noteText(cfg.noteSize)}, events.Meta{})
		if err != nil {
			return 0, err
		}
		body, err := env.Marshal()
		if err != nil {
			return 0, err
		}
		subject, err := events.IncidentSubject(id, env.Type)
		if err != nil {
			return 0, err
		}
		ws[i] = writer{subject: subject, filter: events.IncidentFilter(id), body: body}
	}
	start := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	for i, w := range ws {
		g.Go(func() error {
			prefix := "raw-" + strconv.Itoa(i) + "-"
			var last uint64
			for k := range counts[i] {
				msg := &nats.Msg{Subject: w.subject, Data: w.body, Header: nats.Header{}}
				msg.Header.Set("Content-Type", "application/cloudevents+json")
				ack, err := js.PublishMsg(gctx, msg,
					jetstream.WithMsgID(prefix+strconv.Itoa(k)),
					jetstream.WithExpectLastSequenceForSubject(last, w.filter))
				if err != nil {
					return err
				}
				last = ack.Sequence
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return 0, err
	}
	return float64(cfg.n) / time.Since(start).Seconds(), nil
}

// appendCore appends through the domain core: load (cached), decide,
// append with optimistic concurrency.
func appendCore(ctx context.Context, cfg config, b *bus, opts ...command.Option) (float64, error) {
	cases, err := natsjs.NewCases(ctx, b.js, "INC")
	if err != nil {
		return 0, err
	}
	h := command.New(b.store, cases, opts...)
	ids, err := declareBench(ctx, h, cfg.c)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	if err := appendNotes(ctx, h, ids, split(cfg.n, cfg.c), noteText(cfg.noteSize)); err != nil {
		return 0, err
	}
	return float64(cfg.n) / time.Since(start).Seconds(), nil
}

// declareBench declares n incidents.
func declareBench(ctx context.Context, h *command.Handler, n int) ([]string, error) {
	ids := make([]string, n)
	for i := range ids {
		st, err := h.Declare(ctx, incident.Declare{
			Title: "bench incident " + strconv.Itoa(i), Service: "bench", Severity: "SEV3", DeclaredBy: "bench",
		}, command.Meta{})
		if err != nil {
			return nil, err
		}
		ids[i] = st.ID
	}
	return ids, nil
}

// appendNotes appends counts[i] notes to incident ids[i], one writer each.
func appendNotes(ctx context.Context, h *command.Handler, ids []string, counts []int, text string) error {
	g, gctx := errgroup.WithContext(ctx)
	for i, id := range ids {
		g.Go(func() error {
			for range counts[i] {
				if _, err := h.Execute(gctx, id, incident.AddNote{Text: text}, command.Meta{}); err != nil {
					return err
				}
			}
			return nil
		})
	}
	return g.Wait()
}

// appendHTTP appends through the API of a whole hub.
func appendHTTP(ctx context.Context, cfg config) (float64, error) {
	rh, err := startHub(ctx, cfg, "http", cfg.c)
	if err != nil {
		return 0, err
	}
	defer rh.close()
	ids, err := rh.declare(ctx, cfg.c)
	if err != nil {
		return 0, err
	}
	return postNotes(ctx, cfg, []*runningHub{rh}, ids)
}

// readRaw reads the whole stream with an ordered consumer.
func readRaw(ctx context.Context, b *bus) (float64, error) {
	st, err := b.js.Stream(ctx, events.IncidentStream)
	if err != nil {
		return 0, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, err
	}
	last, total := info.State.LastSeq, info.State.Msgs
	start := time.Now()
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{events.IncidentSubjectPrefix + ".>"},
	})
	if err != nil {
		return 0, err
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(1000))
	if err != nil {
		return 0, err
	}
	defer it.Stop()
	var n uint64
	var bytes int
	for {
		m, err := it.Next()
		if err != nil {
			return 0, err
		}
		md, err := m.Metadata()
		if err != nil {
			return 0, err
		}
		n++
		bytes += len(m.Data())
		if md.Sequence.Stream >= last {
			break
		}
	}
	el := time.Since(start)
	if n != total {
		return 0, fmt.Errorf("read %d events, stream holds %d", n, total)
	}
	return float64(n) / el.Seconds(), nil
}

// readReplay rebuilds a timeline store from the same stream.
func readReplay(ctx context.Context, b *bus) (float64, error) {
	path := filepath.Join(b.dir, "timeline.db")
	start := time.Now()
	stats, err := timeline.Rebuild(ctx, b.store, path, nil)
	if err != nil {
		return 0, err
	}
	el := time.Since(start)
	st, err := b.js.Stream(ctx, events.IncidentStream)
	if err != nil {
		return 0, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, err
	}
	if uint64(stats.Events) != info.State.Msgs {
		return 0, fmt.Errorf("replayed %d events, stream holds %d", stats.Events, info.State.Msgs)
	}
	return float64(stats.Events) / el.Seconds(), nil
}
