package natsjs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/hikeshi/hikeshi/events"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Triage items live on the TRIAGE stream, one subject per item: opened,
// then at most one decision. Whoever decides (the Slack module, the web
// console) publishes expecting the opening to be the subject's last
// message, so two decisions cannot both land.

// ErrTriageDecided: someone decided the item first.
var ErrTriageDecided = errors.New("this escalation was already decided")

// errWrongLastSeq is JetStream's answer when the subject's last sequence
// is not the expected one.
const errWrongLastSeq = 10071

func triageStream(ctx context.Context, js jetstream.JetStream) (jetstream.Stream, error) {
	s, err := js.Stream(ctx, events.TriageStream)
	if err != nil {
		return nil, fmt.Errorf("%w: triage stream: %v", ErrUnavailable, err)
	}
	return s, nil
}

// LastTriage is the last message of item k (jetstream.ErrMsgNotFound when
// there is none).
func LastTriage(ctx context.Context, js jetstream.JetStream, k string) (*jetstream.RawStreamMsg, error) {
	s, err := triageStream(ctx, js)
	if err != nil {
		return nil, err
	}
	return s.GetLastMsgForSubject(ctx, events.TriageSubject(k))
}

// OpenTriage lists the items waiting for a decision, oldest first: those
// whose subject holds only their opening.
func OpenTriage(ctx context.Context, js jetstream.JetStream) ([]events.TriageOpened, error) {
	s, err := triageStream(ctx, js)
	if err != nil {
		return nil, err
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(events.TriageSubjectPrefix+".>"))
	if err != nil {
		return nil, fmt.Errorf("%w: triage stream: %v", ErrUnavailable, err)
	}
	out := []events.TriageOpened{}
	for subject, n := range info.State.Subjects {
		if n != 1 {
			continue
		}
		m, err := s.GetLastMsgForSubject(ctx, subject)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // aged out meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("%w: triage %s: %v", ErrUnavailable, subject, err)
		}
		env, err := events.Unmarshal(m.Data)
		if err != nil || env.Type != events.TypeTriageOpened {
			continue
		}
		d, err := env.Decode()
		if it, ok := d.(*events.TriageOpened); err == nil && ok {
			out = append(out, *it)
		}
	}
	slices.SortFunc(out, func(a, b events.TriageOpened) int { return a.ReportedAt.Compare(b.ReportedAt) })
	return out, nil
}

// DecideTriage publishes decision d (event id id, by actor) on item k
// unless another decision is there (ErrTriageDecided); a retry of the same
// decision (same id) is done already.
func DecideTriage(ctx context.Context, js jetstream.JetStream, k, id, actor string, now time.Time, d events.Data) error {
	last, err := LastTriage(ctx, js, k)
	if err != nil {
		return fmt.Errorf("%w: triage %s: %v", ErrUnavailable, k, err)
	}
	env, err := events.Unmarshal(last.Data)
	if err != nil {
		return err
	}
	switch {
	case env.ID == id:
		return nil
	case env.Type != events.TypeTriageOpened:
		return ErrTriageDecided
	}
	next, err := events.New(k, d, events.Meta{ID: id, Actor: actor, Time: now})
	if err != nil {
		return err
	}
	data, err := next.Marshal()
	if err != nil {
		return err
	}
	m := nats.NewMsg(events.TriageSubject(k))
	m.Data = data
	m.Header.Set(nats.MsgIdHdr, id)
	m.Header.Set("Content-Type", "application/cloudevents+json")
	_, err = js.PublishMsg(ctx, m, jetstream.WithExpectLastSequencePerSubject(last.Sequence))
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode == errWrongLastSeq {
		return ErrTriageDecided
	}
	if err != nil {
		return fmt.Errorf("%w: triage %s: %v", ErrUnavailable, k, err)
	}
	return nil
}
