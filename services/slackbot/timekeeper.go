package slackbot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/command"
	"github.com/hikeshi/hikeshi/services/incident"
	"github.com/nats-io/nats.go/jetstream"
)

// RunTimekeeper checks the open incidents' timers until ctx ends. Timers
// live in StateBucket, written by the projector from the log (declared,
// status_updated, severity_changed, closed), so a restart resumes them.
func (b *Bot) RunTimekeeper(ctx context.Context) error {
	t := time.NewTicker(b.cfg.Timekeeper.Check)
	defer t.Stop()
	for {
		if err := b.Tick(ctx); err != nil && ctx.Err() == nil {
			b.log.Warn("slack timekeeper", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Tick nudges every open incident whose status is older than its
// interval. Slot n is due n intervals after the last status update; the
// nudge for a slot is posted and recorded once (effects ledger, and an
// event id derived from the slot), and after a long stop only the current
// slot is nudged, not every one that was missed.
func (b *Bot) Tick(ctx context.Context) error {
	keys, err := b.state.ListKeysFiltered(ctx, "inc.>")
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil
	}
	if err != nil {
		return err
	}
	now := b.now()
	var first error
	for k := range keys.Keys() {
		id := strings.TrimPrefix(k, "inc.")
		r, ok, err := b.record(ctx, id)
		if err != nil || !ok || !r.Open || r.Channel == "" {
			first = errors.Join(first, err)
			continue
		}
		iv := b.cfg.interval(r.Severity)
		slot := int(now.Sub(r.Since) / iv)
		if slot < 1 {
			continue
		}
		first = errors.Join(first, b.nudge(ctx, id, r, iv, slot))
	}
	return first
}

func (b *Bot) nudge(ctx context.Context, id string, r record, iv time.Duration, slot int) error {
	step := r.SinceEvent + ":" + strconv.Itoa(slot)
	effect := natsjs.EffectKey("slack", "nudge", id, r.SinceEvent, strconv.Itoa(slot))
	if done, err := b.effects.Get(ctx, effect, nil); err != nil || done {
		if done {
			return b.recordNudge(ctx, id, r, iv, slot, step, effect)
		}
		return err
	}
	st, err := b.commands.Get(ctx, id)
	if err != nil {
		return err
	}
	if !st.Open() {
		return nil // closed, and the projector has not caught up yet
	}
	mine, err := b.claim(ctx, id, step)
	if err != nil || !mine {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, nudgeTimeout)
	defer cancel()
	return b.recordNudge(ctx, id, r, iv, slot, step, effect)
}

// nudgeTimeout bounds one nudge's post; claimLease, twice as long, is when
// another replica may take over a claim whose holder died before it could
// record the post. A holder cut off by nudgeTimeout after Slack took the
// message but before the ledger recorded it is the one repeat left: chat.
// postMessage has nothing to look up by.
const (
	nudgeTimeout = 5 * time.Minute
	claimLease   = 2 * nudgeTimeout
)

type nudgeClaim struct {
	Step string    `json:"step"`
	At   time.Time `json:"at"`
}

// claim makes one replica the poster of a nudge slot. Every replica runs
// the timekeeper, and the ledger's look-up and record are two steps, so two
// replicas ticking together would both post. The claim is one key per
// incident written by KV Create or by compare-and-swap on its revision:
// exactly one writer wins a slot. A claim for another slot, or older than
// claimLease, is taken over; the ledger then tells the new holder whether
// the post was already done.
func (b *Bot) claim(ctx context.Context, id, step string) (bool, error) {
	k := "nudge." + id
	v, err := json.Marshal(nudgeClaim{Step: step, At: b.now()})
	if err != nil {
		return false, err
	}
	e, err := b.state.Get(ctx, k)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		_, err = b.state.Create(ctx, k, v)
	case err != nil:
		return false, fmt.Errorf("%w: slack state: %v", natsjs.ErrUnavailable, err)
	default:
		var held nudgeClaim
		if json.Unmarshal(e.Value(), &held) == nil && held.Step == step && b.now().Sub(held.At) < claimLease {
			return false, nil // another replica has it
		}
		_, err = b.state.Update(ctx, k, v, e.Revision())
	}
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return false, nil // lost the race
	}
	if err != nil {
		return false, fmt.Errorf("%w: slack state: %v", natsjs.ErrUnavailable, err)
	}
	return true, nil
}

func (b *Bot) recordNudge(ctx context.Context, id string, r record, iv time.Duration, slot int, step, effect string) error {
	ts, err := natsjs.Once(ctx, b.effects, effect, func(ctx context.Context) (string, error) {
		return b.send(ctx, effect, r.Channel, nudgeMessage(id, r.Since.UTC().Format("15:04 MST"))...)
	})
	if err != nil {
		return err
	}
	_, err = b.commands.Execute(ctx, id, incident.RecordFact{Data: &events.StatusRequested{
		ChannelID: r.Channel, MessageTS: ts, Since: r.Since, IntervalSeconds: int(iv / time.Second), Slot: slot,
	}}, command.Meta{Actor: "slack", Key: "slack:nudge:" + step})
	return err
}
