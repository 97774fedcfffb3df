package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/checkpoints"
	"github.com/hikeshi/hikeshi/services/command"
)

// chainCost measures appends through the command handler with the hash
// chain and without it (command.WithoutHashChain) on one bus, in
// alternating rounds, so that the noise of a shared machine hits both
// alike. It returns both rates.
func chainCost(ctx context.Context, cfg config) (chained, unchained float64, err error) {
	b, err := startBus(ctx, cfg, "chain")
	if err != nil {
		return 0, 0, err
	}
	defer b.close()
	cases, err := natsjs.NewCases(ctx, b.js, "INC")
	if err != nil {
		return 0, 0, err
	}
	modes := [2]*command.Handler{command.New(b.store, cases), command.New(b.store, cases, command.WithoutHashChain())}
	var ids [2][]string
	for m, h := range modes {
		if ids[m], err = declareBench(ctx, h, cfg.c); err != nil {
			return 0, 0, err
		}
	}
	const rounds = 10
	var took [2]time.Duration
	text := noteText(cfg.noteSize)
	for r := range rounds {
		for k := range 2 {
			m := (r + k) % 2 // alternate which mode goes first
			start := time.Now()
			if err := appendNotes(ctx, modes[m], ids[m], split(cfg.n/rounds, cfg.c), text); err != nil {
				return 0, 0, err
			}
			took[m] += time.Since(start)
		}
	}
	n := float64(cfg.n / rounds * rounds)
	return n / took[0].Seconds(), n / took[1].Seconds(), nil
}

// verifyRate signs a checkpoint of the stream appendCore wrote, then
// verifies the whole stream as `hikeshi verify` does.
func verifyRate(ctx context.Context, b *bus) (float64, error) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return 0, err
	}
	w := &checkpoints.Writer{JS: b.js, Store: b.store, Key: key}
	if err := w.Step(ctx, time.Now()); err != nil {
		return 0, err
	}
	start := time.Now()
	r, err := checkpoints.VerifyStream(ctx, b.store, b.js, key.Public().(ed25519.PublicKey), nil)
	if err != nil {
		return 0, err
	}
	if !r.OK() || r.Checkpoints != 1 {
		return 0, fmt.Errorf("verify found %d breaks and %d checkpoints in the bench's own stream", len(r.Breaks), r.Checkpoints)
	}
	return float64(r.Events) / time.Since(start).Seconds(), nil
}

// verifyChains walks the stream's hash chains as `hikeshi verify` does,
// without checkpoints (the kept scale store has none of a known key).
func verifyChains(ctx context.Context, b *bus) (float64, error) {
	v := checkpoints.NewVerifier(nil, true)
	start := time.Now()
	if err := b.store.Read(ctx, natsjs.ReadOptions{}, func(s events.Stored) error {
		v.Event(s)
		return nil
	}); err != nil {
		return 0, err
	}
	r := v.Finish()
	if !r.OK() {
		return 0, fmt.Errorf("verify found %d breaks in the bench's own stream, the first: %s", len(r.Breaks), r.Breaks[0])
	}
	return float64(r.Events) / time.Since(start).Seconds(), nil
}
