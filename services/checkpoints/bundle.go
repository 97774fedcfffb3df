package checkpoints

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"time"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/events"
	"github.com/nats-io/nats.go/jetstream"
)

// BundleFormat names the bundle layout.
const BundleFormat = "hikeshi-evidence-bundle/1"

// Bundle is one incident's record for someone outside: its events as
// stored, each with its chain hash, and the checkpoints that sign its
// heads. Verifying it needs only the signer's public key.
type Bundle struct {
	Format      string        `json:"format"`
	Incident    string        `json:"incident"`
	ExportedAt  time.Time     `json:"exported_at"`
	Events      []BundleEvent `json:"events"`
	Checkpoints []Checkpoint  `json:"checkpoints"`
}

// BundleEvent is a stored event: its stream sequence, NATS subject, the
// chain hash of its canonical bytes, and the event itself.
type BundleEvent struct {
	Seq     uint64          `json:"seq"`
	Subject string          `json:"subject"`
	Hash    string          `json:"hash"`
	Event   json.RawMessage `json:"event"`
}

// Export builds the bundle of incident id.
func Export(ctx context.Context, store *natsjs.Store, js jetstream.JetStream, id string, now time.Time) (Bundle, error) {
	evs, err := store.Load(ctx, id, 0)
	if err != nil {
		return Bundle{}, err
	}
	if len(evs) == 0 {
		return Bundle{}, fmt.Errorf("incident %s has no events", id)
	}
	b := Bundle{Format: BundleFormat, Incident: id, ExportedAt: now.UTC(), Events: make([]BundleEvent, 0, len(evs)), Checkpoints: []Checkpoint{}}
	for _, s := range evs {
		raw, err := s.Envelope.Marshal()
		if err != nil {
			return Bundle{}, err
		}
		b.Events = append(b.Events, BundleEvent{Seq: s.Seq, Subject: s.Subject, Hash: events.HashBytes(raw), Event: raw})
	}
	cps, _, err := ReadAll(ctx, js)
	if err != nil {
		return Bundle{}, err
	}
	for _, cp := range cps {
		if signs(cp, id) {
			b.Checkpoints = append(b.Checkpoints, cp)
		}
	}
	return b, nil
}

// VerifyBundle checks a bundle offline against the signer's public key.
func VerifyBundle(b Bundle, key ed25519.PublicKey) (Report, error) {
	if b.Format != BundleFormat {
		return Report{}, fmt.Errorf("not a Hikeshi evidence bundle: format %q, want %q", b.Format, BundleFormat)
	}
	v := NewVerifier(key, false)
	cps := b.Checkpoints
	for _, be := range b.Events {
		for len(cps) > 0 && cps[0].Seq < be.Seq {
			v.Checkpoint(cps[0])
			cps = cps[1:]
		}
		env, err := events.Unmarshal(be.Event)
		if err != nil {
			v.report.Breaks = append(v.report.Breaks, Break{Kind: Changed, Seq: be.Seq, Incident: b.Incident, Detail: fmt.Sprintf("unreadable: %v", err)})
			continue
		}
		s := events.Stored{Seq: be.Seq, Subject: be.Subject, Envelope: env}
		if env.Subject != b.Incident {
			v.fail(Inserted, s, "belongs to incident %s, not to the bundle's", env.Subject)
		}
		if h, _ := env.Hash(); h != be.Hash {
			v.fail(Changed, s, "its hash column does not match the event")
		}
		v.Event(s)
	}
	for _, cp := range cps {
		v.Checkpoint(cp)
	}
	return v.Finish(), nil
}

// VerifyIncident checks one incident on the stream: its export, verified.
func VerifyIncident(ctx context.Context, store *natsjs.Store, js jetstream.JetStream, id string, key ed25519.PublicKey) (Report, error) {
	b, err := Export(ctx, store, js, id, time.Now())
	if err != nil {
		return Report{}, err
	}
	return VerifyBundle(b, key)
}

// VerifyStream walks the whole incident stream and every checkpoint.
// progress, when set, is called every so often with the sequence reached.
func VerifyStream(ctx context.Context, store *natsjs.Store, js jetstream.JetStream, key ed25519.PublicKey, progress func(seq, until uint64)) (Report, error) {
	cps, _, err := ReadAll(ctx, js)
	if err != nil {
		return Report{}, err
	}
	v := NewVerifier(key, true)
	err = store.Read(ctx, natsjs.ReadOptions{OnProgress: progress}, func(s events.Stored) error {
		for len(cps) > 0 && cps[0].Seq < s.Seq {
			v.Checkpoint(cps[0])
			cps = cps[1:]
		}
		v.Event(s)
		return nil
	})
	if err != nil {
		return Report{}, err
	}
	for _, cp := range cps {
		v.Checkpoint(cp)
	}
	return v.Finish(), nil
}
