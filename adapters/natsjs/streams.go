package natsjs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hikeshi/hikeshi/events"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Names of the streams and buckets the hub owns.
const (
	DeadLetterStream  = "DEADLETTER"
	DeadLetterPrefix  = "deadletter"
	CasesBucket       = "hikeshi_cases"
	CaseIDsBucket     = "hikeshi_case_ids"
	IdempotencyBucket = "hikeshi_idempotency"
	EffectsBucket     = "hikeshi_effects"
	// SignalsBucket holds the triage items opened from escalations.
	SignalsBucket = "hikeshi_signals"
	// SignalRetention is how long a signal is kept.
	SignalRetention = 30 * 24 * time.Hour
	// SignalDedupWindow is how long the stream refuses a second copy of a
	// signal (HA peers, sender retries). It costs memory per signal in the
	// window; later copies are stored and ignored by the projector.
	SignalDedupWindow = 2 * time.Minute
	// ArchivesBucket is an object store: exports (a Slack conversation at
	// close) that other integrations attach to the case.
	ArchivesBucket = "hikeshi_archives"
)

// Topology is how the streams are created.
type Topology struct {
	Replicas int // 1 for a single node, 3 for a production cluster
	// IdempotencyTTL is how long a POST's Idempotency-Key is remembered.
	IdempotencyTTL time.Duration
}

func (t Topology) withDefaults() Topology {
	if t.Replicas <= 0 {
		t.Replicas = 1
	}
	if t.IdempotencyTTL <= 0 {
		t.IdempotencyTTL = 24 * time.Hour
	}
	return t
}

// EnsureTopology creates or updates the streams and buckets. The incident
// stream is an audit log: messages can be neither deleted nor purged.
func EnsureTopology(ctx context.Context, js jetstream.JetStream, t Topology) error {
	t = t.withDefaults()
	streams := []jetstream.StreamConfig{{
		Name:        events.IncidentStream,
		Description: "Hikeshi incident events (CloudEvents JSON), one subject per incident and event name",
		Subjects:    []string{events.IncidentSubjectPrefix + ".>"},
		Storage:     jetstream.FileStorage,
		Replicas:    t.Replicas,
		Retention:   jetstream.LimitsPolicy,
		Duplicates:  2 * time.Minute,
		DenyDelete:  true,
		DenyPurge:   true,
	}, {
		Name:        DeadLetterStream,
		Description: "Messages a projector could not handle after its retries",
		Subjects:    []string{DeadLetterPrefix + ".>"},
		Storage:     jetstream.FileStorage,
		Replicas:    t.Replicas,
		MaxAge:      30 * 24 * time.Hour,
	}, {
		// Signals, deduplicated by Nats-Msg-Id (the dedup key) for the
		// window; a later repeat is stored and the signal projector, which
		// keeps each fingerprint's status and start, ignores it. Few
		// subjects (signals.<source>.<kind>): the server indexes each in
		// memory.
		Name:        events.SignalStream,
		Description: "Hikeshi signals (alerts, findings, escalations), normalised",
		Subjects:    []string{events.SignalSubjectPrefix + ".>"},
		Storage:     jetstream.FileStorage,
		Replicas:    t.Replicas,
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      SignalRetention,
		Duplicates:  SignalDedupWindow,
		DenyDelete:  true,
		DenyPurge:   true,
	}, {
		// A triage item's life: opened, then one decision. Subjects are
		// per item, so a decision can expect the opening to be last.
		Name:        events.TriageStream,
		Description: "Hikeshi triage items (escalations for the security team), one subject per item",
		Subjects:    []string{events.TriageSubjectPrefix + ".>"},
		Storage:     jetstream.FileStorage,
		Replicas:    t.Replicas,
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      SignalRetention,
		Duplicates:  2 * time.Minute,
	}, {
		// Announcements about no incident, for the Slack module to post.
		Name:        events.SlackOutboxStream,
		Description: "Slack announcements about no incident (the follow-up digest), one subject per announcement",
		Subjects:    []string{events.SlackOutboxPrefix + ".>"},
		Storage:     jetstream.FileStorage,
		Replicas:    t.Replicas,
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      SignalRetention,
		Duplicates:  2 * time.Minute,
	}}
	for _, cfg := range streams {
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("stream %s: %w", cfg.Name, err)
		}
	}
	buckets := []jetstream.KeyValueConfig{{
		Bucket:      CasesBucket,
		Description: "Case number sequence: each allocation is one revision",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    t.Replicas,
	}, {
		Bucket:      CaseIDsBucket,
		Description: "Case number → incident id, written when the incident is declared",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    t.Replicas,
	}, {
		Bucket:      IdempotencyBucket,
		Description: "First answer to each POST with an Idempotency-Key",
		History:     1,
		TTL:         t.IdempotencyTTL,
		Storage:     jetstream.FileStorage,
		Replicas:    t.Replicas,
	}, {
		Bucket:      EffectsBucket,
		Description: "Side effects done by projectors, keyed by the event that caused them",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    t.Replicas,
	}, {
		Bucket:      SignalsBucket,
		Description: "Triage items opened from escalations",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    t.Replicas,
	}, {
		Bucket:      SnapshotsBucket,
		Description: "Incident state at a stream sequence (JSON), for loading an incident without its history",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    t.Replicas,
	}, {
		Bucket:      EventIDsBucket,
		Description: "Keyed event id → incident, for every keyed event a snapshot covers (retries after the duplicate window)",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    t.Replicas,
	}}
	for _, cfg := range buckets {
		if _, err := js.CreateOrUpdateKeyValue(ctx, cfg); err != nil {
			return fmt.Errorf("bucket %s: %w", cfg.Bucket, err)
		}
	}
	if _, err := js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket:      ArchivesBucket,
		Description: "Exports kept for the record (conversation archives), one object per incident and system",
		Storage:     jetstream.FileStorage,
		Replicas:    t.Replicas,
	}); err != nil {
		return fmt.Errorf("object store %s: %w", ArchivesBucket, err)
	}
	return ensureAccess(ctx, js, t.Replicas)
}

// ClusterForming reports whether err is what a JetStream cluster answers
// while its nodes are still finding each other or one of them is down (no
// meta leader yet, no peers for placement): worth waiting for at start.
func ClusterForming(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode {
		case 10005, // no suitable peers for placement
			10008: // JetStream system temporarily unavailable
			return true
		}
	}
	return errors.Is(err, nats.ErrTimeout) || errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, context.DeadlineExceeded)
}
