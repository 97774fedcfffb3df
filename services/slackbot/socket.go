package slackbot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"time"

	"github.com/slack-go/slack/socketmode"
)

// Socket Mode carries the same payloads as the HTTP endpoints inside
// envelopes; each is handed to the same dispatcher and acknowledged with
// the answer an HTTP response would carry. An envelope that failed the way
// a 5xx would is not acknowledged, so Slack delivers it again (with
// retry_attempt > 0 and the same event_id or trigger, which key every
// effect).

// socketRetry bounds the wait before reopening a connection that Slack
// refused (the client itself reconnects after a dropped socket).
const socketRetry = 30 * time.Second

// RunSocketMode holds a Socket Mode connection until ctx ends.
func (b *Bot) RunSocketMode(ctx context.Context) error {
	wait := time.Second
	for {
		client := socketmode.New(b.api, socketmode.OptionLog(socketLog{b}))
		started := time.Now()
		err := b.runSocket(ctx, client)
		if ctx.Err() != nil {
			return nil
		}
		if time.Since(started) > socketRetry {
			wait = time.Second
		}
		b.log.Warn("slack socket mode: connection ended; opening again", "err", err, "in", wait)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		wait = min(2*wait, socketRetry)
	}
}

// runSocket runs one client and handles its events until it returns.
func (b *Bot) runSocket(ctx context.Context, client *socketmode.Client) error {
	ctx, cancel := context.WithCancel(ctx)
	var inflight sync.WaitGroup
	consumed := make(chan struct{})
	go func() {
		defer close(consumed)
		for {
			select {
			case <-ctx.Done():
				return
			case ev := <-client.Events:
				switch ev.Type {
				case socketmode.EventTypeEventsAPI, socketmode.EventTypeInteractive, socketmode.EventTypeSlashCommand:
					if ev.Request != nil {
						req := *ev.Request
						inflight.Go(func() { b.onEnvelope(ctx, client, req) })
					}
				case socketmode.EventTypeErrorBadMessage:
					// The client could not parse the payload: acknowledge it as
					// a 400 would, since a redelivery cannot parse either.
					b.ackBadMessage(ctx, client, ev.Data)
				case socketmode.EventTypeConnected:
					b.log.Info("slack socket mode: connected")
				case socketmode.EventTypeConnectionError, socketmode.EventTypeInvalidAuth,
					socketmode.EventTypeIncomingError, socketmode.EventTypeErrorWriteFailed:
					b.log.Warn("slack socket mode", "event", ev.Type, "detail", fmt.Sprint(ev.Data))
				}
			}
		}
	}()
	err := client.RunContext(ctx)
	cancel()
	<-consumed
	inflight.Wait()
	return err
}

// onEnvelope dispatches one envelope and acknowledges it.
func (b *Bot) onEnvelope(ctx context.Context, client *socketmode.Client, req socketmode.Request) {
	hctx, cancel := context.WithTimeout(ctx, ackBudget)
	defer cancel()
	var answer any
	var err error
	switch req.Type {
	case socketmode.RequestTypeEventsAPI:
		answer, err = b.onEvent(hctx, req.Payload)
	case socketmode.RequestTypeInteractive:
		answer, err = b.onInteraction(hctx, req.Payload)
	case socketmode.RequestTypeSlashCommands:
		var form url.Values
		if form, err = commandForm(req.Payload); err == nil {
			answer, err = b.onCommand(hctx, form)
		}
	}
	switch {
	case errors.Is(err, errBadRequest):
		// Redelivering it would not help: acknowledge, as a 400 does.
		b.log.Warn("slack socket mode: bad envelope", "type", req.Type, "envelope", req.EnvelopeID, "err", err)
		answer = nil
	case err != nil:
		b.log.Warn("slack socket mode: not acknowledged; Slack delivers it again", "type", req.Type,
			"envelope", req.EnvelopeID, "retry", req.RetryAttempt, "err", err)
		return
	}
	if err := client.AckCtx(ctx, req.EnvelopeID, answer); err != nil {
		b.log.Warn("slack socket mode: ack", "envelope", req.EnvelopeID, "err", err)
	}
}

func (b *Bot) ackBadMessage(ctx context.Context, client *socketmode.Client, data any) {
	bad, ok := data.(*socketmode.ErrorBadMessage)
	if !ok {
		return
	}
	var head struct {
		EnvelopeID string `json:"envelope_id"`
	}
	_ = json.Unmarshal(bad.Message, &head)
	b.log.Warn("slack socket mode: bad envelope", "envelope", head.EnvelopeID, "err", bad.Cause)
	if head.EnvelopeID != "" {
		if err := client.AckCtx(ctx, head.EnvelopeID, nil); err != nil {
			b.log.Warn("slack socket mode: ack", "envelope", head.EnvelopeID, "err", err)
		}
	}
}

// commandForm turns a slash_commands payload (the HTTP form's fields as a
// JSON object of strings) into the form the HTTP endpoint parses.
func commandForm(p []byte) (url.Values, error) {
	var fields map[string]any
	if err := json.Unmarshal(p, &fields); err != nil {
		return nil, badRequest("slash command payload: %v", err)
	}
	form := url.Values{}
	for k, v := range fields {
		if s, ok := v.(string); ok {
			form.Set(k, s)
		}
	}
	return form, nil
}

// socketLog sends the client's own messages to the debug log.
type socketLog struct{ b *Bot }

func (l socketLog) Output(_ int, s string) error {
	l.b.log.Debug("slack socket mode: " + s)
	return nil
}
