// Package public keeps INCIDENTS_PUBLIC, the redacted copy of the incident
// stream that consumers outside need-to-know read: each event is
// republished with a confidential incident's title, service and free text
// replaced exactly as the outbound integrations replace them (codename,
// "(confidential)", "(kept in the private incident channel)").
package public

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/incident"
	"github.com/hikeshi/hikeshi/services/integration"
	"github.com/hikeshi/hikeshi/services/module"
	"github.com/hikeshi/hikeshi/services/projection"
	"github.com/nats-io/nats.go/jetstream"
)

// Name is the module's name, its hikeshi.yaml section (public: {}) and
// its durable consumer.
const Name = "public"

// Module is the row in the hub's module table.
var Module = module.Module{Name: Name, New: start}

func start(ctx context.Context, d module.Deps) (module.Parts, error) {
	var cfg struct{}
	if _, err := d.Config.Section(Name, &cfg); err != nil {
		return module.Parts{}, err
	}
	p := &Projector{js: d.JS, env: d}
	return module.Parts{Projectors: []projection.Projector{{Durable: Name, Handle: p.Handle}}}, nil
}

// Projector republishes incident events, redacted.
type Projector struct {
	js  jetstream.JetStream
	env module.Deps
}

// Handle republishes one event. The event id is the Msg-Id, and the
// effects ledger remembers what was published, so a redelivery (even
// after the stream's duplicate window) publishes nothing twice.
func (p *Projector) Handle(ctx context.Context, e events.Stored) error {
	done := natsjs.EffectKey(Name, e.ID)
	if ok, err := p.env.Effects.Get(ctx, done, nil); err != nil || ok {
		return err
	}
	id, ok := events.IncidentID(e.Subject)
	if !ok {
		return nil
	}
	st, err := p.env.Commands.Get(ctx, id)
	if err != nil {
		return err
	}
	out, err := Redact(st, e.Envelope)
	if err != nil {
		return fmt.Errorf("%w: %v", projection.ErrPermanent, err)
	}
	b, err := out.Marshal()
	if err != nil {
		return err
	}
	subject := "public." + e.Subject
	if _, err := p.js.Publish(ctx, subject, b, jetstream.WithMsgID(e.ID)); err != nil {
		return fmt.Errorf("%w: publish %s: %v", natsjs.ErrUnavailable, subject, err)
	}
	return p.env.Effects.Put(ctx, done, map[string]uint64{"seq": e.Seq})
}

// Redact returns e as it may be shown outside need-to-know: unchanged for
// an incident that is not confidential; otherwise with the title replaced
// by the codename, the service by "(confidential)" and free text withheld.
func Redact(st incident.State, e events.Envelope) (events.Envelope, error) {
	if !st.Confidential {
		return e, nil
	}
	d, err := e.Decode()
	if err != nil {
		return e, err
	}
	text := func(s *string) { *s = integration.Text(st, *s) }
	switch d := d.(type) {
	case *events.Declared:
		d.Title, d.Service = st.Codename, integration.Service(st)
		d.DeclaredByIdentity = "" // an e-mail address: who is in it stays inside
		text(&d.Summary)
	case *events.CommanderAssigned:
		d.UserIdentity = ""
	case *events.MembersChanged:
		// Who is in a confidential incident's channel is need-to-know.
		d.Joined, d.Left = nil, nil
	case *events.StatusUpdated:
		text(&d.Message)
	case *events.SeverityChanged:
		text(&d.Reason)
	case *events.NoteAdded:
		text(&d.Text)
	case *events.IncidentClosed:
		text(&d.Resolution)
		text(&d.LessonsLearned)
	case *events.MessageFlagged:
		text(&d.Excerpt)
	case *events.EvidenceAdded:
		// The hash stays: it proves nothing to whoever lacks the item.
		text(&d.Name)
		text(&d.Location)
		text(&d.Custodian)
		text(&d.Description)
	case *events.EvidenceHandedOver:
		text(&d.From)
		text(&d.To)
		text(&d.Reason)
	case *events.MilestoneRecorded:
		text(&d.Reason)
	}
	raw, err := json.Marshal(d)
	if err != nil {
		return e, err
	}
	e.Data, e.DataVersion = raw, currentVersion(e.Type, e.DataVersion)
	return e, nil
}

// currentVersion: Decode upcast the data to the type's current version.
func currentVersion(typ string, v int) int {
	if s, ok := events.Lookup(typ); ok {
		return s.Version
	}
	return v
}
