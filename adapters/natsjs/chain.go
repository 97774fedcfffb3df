package natsjs

import (
	"context"
	"fmt"

	"github.com/hikeshi/hikeshi/events"
	"github.com/nats-io/nats.go/jetstream"
)

// NewReader binds to the incident stream only, for reading it (Read, Load,
// EventAt) with a reader's permissions, which do not reach the snapshot
// buckets NewStore binds.
func NewReader(ctx context.Context, js jetstream.JetStream) (*Store, error) {
	st, err := js.Stream(ctx, events.IncidentStream)
	if err != nil {
		return nil, fmt.Errorf("incident stream: %w", err)
	}
	return &Store{js: js, stream: st}, nil
}

// EventAt reads the incident event stored at stream sequence seq.
func (s *Store) EventAt(ctx context.Context, seq uint64) (events.Stored, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	m, err := s.stream.GetMsg(ctx, seq)
	if err != nil {
		return events.Stored{}, fmt.Errorf("%w: event at seq %d: %w", ErrUnavailable, seq, err)
	}
	return DecodeRaw(m.Subject, m.Sequence, m.Data)
}
