package natsjs

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/hikeshi/hikeshi/events"
	"github.com/nats-io/nats.go/jetstream"
)

// Buckets that let the command side load an incident without reading its
// history: the state of each incident at a stream sequence, and the ids of
// keyed (derived) events up to the snapshots, for recognising a retry.
const (
	SnapshotsBucket = "hikeshi_incident_state"
	EventIDsBucket  = "hikeshi_event_ids"
)

// Snapshots stores incident states with the stream sequence they reflect.
type Snapshots struct {
	js    jetstream.JetStream
	state jetstream.KeyValue
	ids   jetstream.KeyValue
}

// NewSnapshots binds the snapshot buckets EnsureTopology created.
func NewSnapshots(ctx context.Context, js jetstream.JetStream) (*Snapshots, error) {
	state, err := js.KeyValue(ctx, SnapshotsBucket)
	if err != nil {
		return nil, fmt.Errorf("snapshot bucket: %w", err)
	}
	ids, err := js.KeyValue(ctx, EventIDsBucket)
	if err != nil {
		return nil, fmt.Errorf("event id bucket: %w", err)
	}
	return &Snapshots{js: js, state: state, ids: ids}, nil
}

// Get returns the last snapshot of an incident, nil when there is none.
func (s *Snapshots) Get(ctx context.Context, id string) ([]byte, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	e, err := s.state.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: snapshot of %s: %w", ErrUnavailable, id, err)
	}
	return e.Value(), nil
}

// Put stores a snapshot of an incident without waiting for the bus's
// answer: a lost snapshot only makes a later load read the events after an
// older one. Callers record the keyed event ids the snapshot covers first
// (RecordIDs), so that every keyed event at or below a snapshot's sequence
// can be found with Recorded.
func (s *Snapshots) Put(id string, snapshot []byte) error {
	if _, err := s.js.PublishAsync("$KV."+SnapshotsBucket+"."+id, snapshot); err != nil {
		return fmt.Errorf("%w: snapshot of %s: %w", ErrUnavailable, id, err)
	}
	return nil
}

// RecordIDs remembers that the keyed events ids are stored on incident.
// The writes go out together and are then waited for, one round trip for
// all of them.
func (s *Snapshots) RecordIDs(ctx context.Context, incident string, ids []string) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	acks := make([]jetstream.PubAckFuture, 0, len(ids))
	for _, id := range ids {
		f, err := s.js.PublishAsync("$KV."+EventIDsBucket+"."+id, []byte(incident))
		if err != nil {
			return fmt.Errorf("%w: record event id %s: %w", ErrUnavailable, id, err)
		}
		acks = append(acks, f)
	}
	for i, f := range acks {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return fmt.Errorf("%w: record event id %s: %w", ErrUnavailable, ids[i], err)
		case <-ctx.Done():
			return fmt.Errorf("%w: record event id %s: %w", ErrUnavailable, ids[i], ctx.Err())
		}
	}
	return nil
}

// Closed reports whether the connection is closed for good.
func (s *Snapshots) Closed() bool { return s.js.Conn().IsClosed() }

// Wait returns once every snapshot sent with Put has been answered.
func (s *Snapshots) Wait(ctx context.Context) error {
	select {
	case <-s.js.PublishAsyncComplete():
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: snapshots not all stored: %w", ErrUnavailable, ctx.Err())
	}
}

// Recorded reports whether RecordIDs remembered the event id.
func (s *Snapshots) Recorded(ctx context.Context, id string) (bool, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	_, err := s.ids.Get(ctx, id)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrInvalidKey):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("%w: look up event id %s: %w", ErrUnavailable, id, err)
	}
	return true, nil
}

// Tail calls fn with the incident's events after stream sequence after, up
// to last (from LastSeq), one direct get each: no consumer, and a cost in
// proportion to the events read, not to the size of the stream.
func (s *Store) Tail(ctx context.Context, id string, after, last uint64, fn func(events.Stored) error) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	filter := events.IncidentFilter(id)
	for seq := after + 1; seq <= last; {
		m, err := s.stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(filter))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: incident %s after seq %s: %w", ErrUnavailable, id, strconv.FormatUint(seq, 10), err)
		}
		stored, err := DecodeRaw(m.Subject, m.Sequence, m.Data)
		if err != nil {
			return err
		}
		if err := fn(stored); err != nil {
			return err
		}
		seq = m.Sequence + 1
	}
	return nil
}
