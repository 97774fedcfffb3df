package checkpoints

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/events"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The stream checkpoints are appended to: one subject, file storage, no
// deletes or purges, like the incident stream it vouches for.
const (
	Stream  = events.CheckpointStream
	Subject = events.CheckpointSubject
)

// EnsureStream creates the checkpoint stream when it does not exist.
func EnsureStream(ctx context.Context, js jetstream.JetStream, replicas int) error {
	_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        Stream,
		Description: "signed checkpoints of the incident stream's hash chains",
		Subjects:    []string{Subject},
		Storage:     jetstream.FileStorage,
		Replicas:    max(replicas, 1),
		DenyDelete:  true,
		DenyPurge:   true,
	})
	if err != nil {
		return fmt.Errorf("checkpoint stream: %w", err)
	}
	return nil
}

// stored is a checkpoint with its place in the checkpoint stream.
type stored struct {
	Checkpoint
	at uint64 // sequence in CHECKPOINTS
}

// ReadAll returns every checkpoint in order, and the checkpoint stream's
// last sequence. A message that is not a checkpoint is an error naming it.
func ReadAll(ctx context.Context, js jetstream.JetStream) ([]Checkpoint, uint64, error) {
	var out []Checkpoint
	last, err := eachStored(ctx, js, func(s stored) error {
		out = append(out, s.Checkpoint)
		return nil
	})
	return out, last, err
}

// eachStored calls fn with every checkpoint in order, keeping none, and
// returns the checkpoint stream's last sequence.
func eachStored(ctx context.Context, js jetstream.JetStream, fn func(stored) error) (uint64, error) {
	st, err := js.Stream(ctx, Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("%w: %v", natsjs.ErrUnavailable, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", natsjs.ErrUnavailable, err)
	}
	last := info.State.LastSeq
	if info.State.Msgs == 0 {
		return last, nil
	}
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return 0, fmt.Errorf("%w: %v", natsjs.ErrUnavailable, err)
	}
	for {
		m, err := cons.Next(jetstream.FetchMaxWait(natsjs.OpTimeout))
		if err != nil {
			return 0, fmt.Errorf("%w: reading checkpoints: %v", natsjs.ErrUnavailable, err)
		}
		md, err := m.Metadata()
		if err != nil {
			return 0, err
		}
		var cp Checkpoint
		if err := json.Unmarshal(m.Data(), &cp); err != nil {
			return 0, fmt.Errorf("checkpoint stream seq %d is not a checkpoint: %v", md.Sequence.Stream, err)
		}
		if err := fn(stored{cp, md.Sequence.Stream}); err != nil {
			return 0, err
		}
		if md.Sequence.Stream >= last || md.NumPending == 0 {
			return last, nil
		}
	}
}

// publish appends cp provided the checkpoint stream's last sequence is
// still last, so two hubs never both write the next checkpoint.
func publish(ctx context.Context, js jetstream.JetStream, cp Checkpoint, last uint64) (uint64, error) {
	b, err := json.Marshal(cp)
	if err != nil {
		return 0, err
	}
	msg := &nats.Msg{Subject: Subject, Data: b}
	ack, err := js.PublishMsg(ctx, msg, jetstream.WithExpectStream(Stream), jetstream.WithExpectLastSequence(last),
		jetstream.WithMsgID("checkpoint-"+strconv.FormatUint(cp.Seq, 10)))
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence {
		return 0, fmt.Errorf("%w: %v", natsjs.ErrConflict, err)
	}
	if err != nil {
		return 0, fmt.Errorf("%w: %v", natsjs.ErrUnavailable, err)
	}
	if ack.Duplicate {
		return 0, fmt.Errorf("%w: a checkpoint at seq %d exists", natsjs.ErrConflict, cp.Seq)
	}
	return ack.Sequence, nil
}

func sortHeads(h []Head) {
	slices.SortFunc(h, func(a, b Head) int { return strings.Compare(a.Incident, b.Incident) })
}
