package natsjs

import (
	"context"
	"fmt"

	"github.com/hikeshi/hikeshi/events"
)

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
