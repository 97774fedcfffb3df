package projector

import (
	"context"
	"errors"
	"fmt"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/signals/rules"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// errWrongLastSeq is JetStream's answer when the subject's last sequence
// is not the expected one: here, the item was opened (or decided) before.
const errWrongLastSeq = 10071

// publishTriage announces a new triage item on TRIAGE, where the Slack
// module picks it up. The publish expects the item's subject to be empty,
// so a redelivered signal never opens it twice, even after the item was
// decided.
func (p *Runner) publishTriage(ctx context.Context, e events.Stored, sig *events.Signal, d *rules.Decision) error {
	key := events.TriageKey(sig.Source, sig.Fingerprint)
	id := events.DeriveID("triage-opened", key)
	env, err := events.New(key, &events.TriageOpened{
		Key: key, Source: sig.Source, Fingerprint: sig.Fingerprint, Title: sig.Title, Summary: sig.Summary,
		ReportedBy: sig.ReportedBy, ReportedAt: sig.StartsAt, CustomerImpact: sig.CustomerImpact,
		Service: sig.Service, Severity: sig.Severity, Priority: d.Priority, Links: sig.Links,
	}, events.Meta{ID: id, Actor: actor, CausationID: e.ID, Time: p.now()})
	if err != nil {
		return err
	}
	data, err := env.Marshal()
	if err != nil {
		return err
	}
	m := nats.NewMsg(events.TriageSubject(key))
	m.Data = data
	m.Header.Set(nats.MsgIdHdr, id)
	m.Header.Set("Content-Type", "application/cloudevents+json")
	_, err = p.env.JS.PublishMsg(ctx, m, jetstream.WithExpectLastSequencePerSubject(0))
	var apiErr *jetstream.APIError
	if err != nil && !(errors.As(err, &apiErr) && apiErr.ErrorCode == errWrongLastSeq) {
		return fmt.Errorf("%w: triage %s: %v", natsjs.ErrUnavailable, key, err)
	}
	return nil
}
