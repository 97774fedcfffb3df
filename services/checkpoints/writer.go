package checkpoints

import (
	"context"
	"crypto/ed25519"
	"errors"
	"log/slog"
	"time"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/events"
	"github.com/nats-io/nats.go/jetstream"
)

// Config is the evidence section of hikeshi.yaml.
type Config struct {
	// EveryEvents and Every: a checkpoint is written once this many events
	// arrived since the last, or this long after it when any did.
	EveryEvents int           `yaml:"checkpoint_every_events"`
	Every       time.Duration `yaml:"checkpoint_every"`
	// SigningKeyFile is a PKCS #8 PEM ed25519 key; default: the
	// HIKESHI_EVIDENCE_SIGNING_KEY variable, else a key generated into the
	// data dir.
	SigningKeyFile string `yaml:"signing_key_file"`
}

// Defaults: a checkpoint every 1000 events or 5 minutes.
func (c *Config) Defaults() {
	if c.EveryEvents <= 0 {
		c.EveryEvents = 1000
	}
	if c.Every <= 0 {
		c.Every = 5 * time.Minute
	}
}

// maxEvents bounds the events one checkpoint covers, and so its changed
// heads (about 150 bytes each), below JetStream's 1 MB message limit.
const maxEvents = 4000

// Writer appends checkpoints. Any number of hubs may run one: each
// checkpoint is appended only if the checkpoint stream is still where its
// writer last saw it, so exactly one hub writes each, and a hub that loses
// the race reloads and waits for the next.
type Writer struct {
	JS     jetstream.JetStream
	Store  *natsjs.Store
	Key    ed25519.PrivateKey
	Config Config
	Logger *slog.Logger
	// Replicas of the checkpoint stream, as of the incident stream.
	Replicas int
	// Tick is how often the writer looks whether a checkpoint is due
	// (default one second).
	Tick time.Duration

	v       *Verifier
	covered uint64 // incident stream sequence the heads are at
	last    *Checkpoint
	at      uint64 // checkpoint stream's last sequence
	warned  int    // breaks already logged
}

// Run writes checkpoints until ctx ends.
func (w *Writer) Run(ctx context.Context) error {
	tick := w.Tick
	if tick <= 0 {
		tick = time.Second
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		if err := w.Step(ctx, time.Now()); err != nil && ctx.Err() == nil {
			w.Logger.Warn("checkpoint not written; retrying", "err", err)
		}
		select {
		case <-ctx.Done():
			// Seal what this hub saw before it stops.
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), natsjs.OpTimeout)
			defer cancel()
			if err := w.seal(sctx, time.Now(), true); err != nil {
				w.Logger.Warn("no checkpoint at shutdown; the next hub writes it", "err", err)
			}
			return nil
		case <-t.C:
		}
	}
}

// Step writes a checkpoint when one is due at now.
func (w *Writer) Step(ctx context.Context, now time.Time) error { return w.seal(ctx, now, false) }

// seal writes a checkpoint of the events since the last when one is due,
// or when force says so. After a failure it starts again from the
// checkpoint stream, as the events it folded may not be sealed.
func (w *Writer) seal(ctx context.Context, now time.Time, force bool) (err error) {
	defer func() {
		if err != nil {
			w.v = nil
		}
	}()
	if w.v == nil {
		w.Config.Defaults()
		if w.Logger == nil {
			w.Logger = slog.Default()
		}
		if err := w.load(ctx); err != nil {
			return err
		}
	}
	lastSeq, err := w.Store.LastStreamSeq(ctx)
	if err != nil || lastSeq <= w.covered {
		return err
	}
	due := force || lastSeq-w.covered >= uint64(w.Config.EveryEvents) || w.last == nil || now.Sub(w.last.Time) >= w.Config.Every
	if !due {
		return nil
	}
	// A hub that was down catches up in several checkpoints, each small
	// enough for one message.
	lastSeq = min(lastSeq, w.covered+maxEvents)
	err = w.Store.Read(ctx, natsjs.ReadOptions{After: w.covered, Until: lastSeq}, func(s events.Stored) error {
		w.v.Event(s)
		return nil
	})
	if err != nil {
		return err
	}
	w.covered = lastSeq
	w.logBreaks()
	cp := Checkpoint{Seq: lastSeq, Time: now.UTC(), Incidents: len(w.v.chains), Root: Root(w.v.Heads()), Heads: w.v.headsSince()}
	if w.last != nil {
		cp.Prev = w.last.Hash()
	}
	cp.Sign(w.Key)
	at, err := publish(ctx, w.JS, cp, w.at)
	if errors.Is(err, natsjs.ErrConflict) {
		w.v = nil // another hub wrote one: start again from its checkpoints
		return nil
	}
	if err != nil {
		return err
	}
	w.last, w.at = &cp, at
	w.v.sealed()
	return nil
}

// load rebuilds the heads from the checkpoints written so far, so a start
// reads only the incident events after the last one.
func (w *Writer) load(ctx context.Context) error {
	if err := EnsureStream(ctx, w.JS, w.Replicas); err != nil {
		return err
	}
	// The heads seed the verifier as they are read; of the checkpoints only
	// the last is kept (a copy), so memory follows the incidents, not the
	// events the record has had.
	v := NewVerifier(nil, true)
	w.last, w.covered = nil, 0
	at, err := eachStored(ctx, w.JS, func(s stored) error {
		for _, h := range s.Heads {
			v.seed(h)
		}
		last := s.Checkpoint // its hash is the next one's prev
		w.last, w.covered = &last, s.Seq
		return nil
	})
	if err != nil {
		return err
	}
	w.v, w.at, w.warned = v, at, 0
	if own := PublicKeyString(w.Key.Public().(ed25519.PublicKey)); w.last != nil && w.last.Key != own {
		w.Logger.Warn("the last checkpoint is signed by another key: every hub that writes checkpoints needs the same key (evidence.signing_key_file), or verify reports their checkpoints as signed by another key",
			"last_checkpoint_key", w.last.Key, "this_hub_key", own)
	}
	return nil
}

// logBreaks says once what the writer found wrong in the events it sealed.
func (w *Writer) logBreaks() {
	for _, b := range w.v.report.Breaks[w.warned:] {
		w.Logger.Warn("incident record broken; run 'hikeshi verify'", "break", b.String())
	}
	w.warned = len(w.v.report.Breaks)
}

// sealed forgets what the verifier kept to name breaks in the events a
// checkpoint now covers, so that a hub's memory does not grow with them.
func (v *Verifier) sealed() {
	for id := range v.changed {
		c := v.chains[id]
		clear(c.seen)
		clear(c.ids)
		clear(c.wanted)
		clear(c.moved)
		c.broken = nil
	}
	clear(v.changed)
}

// seed starts an incident's chain at a signed head.
func (v *Verifier) seed(h Head) {
	c := newChain()
	c.head, c.headSeq, c.events, c.chained = h.Hash, h.Seq, h.Events, true
	v.chains[h.Incident] = c
}
