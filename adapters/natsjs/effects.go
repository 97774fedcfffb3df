package natsjs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// Effects is the ledger of side effects done outside (a channel created, a
// message posted, a case opened), in a KV bucket shared by every replica.
// A projector records each effect under a key derived from the event that
// caused it; a redelivered event finds the record and does not act again.
type Effects struct{ kv jetstream.KeyValue }

// NewEffects binds the effects bucket.
func NewEffects(ctx context.Context, js jetstream.JetStream) (*Effects, error) {
	kv, err := js.KeyValue(ctx, EffectsBucket)
	if err != nil {
		return nil, fmt.Errorf("effects bucket: %w", err)
	}
	return &Effects{kv: kv}, nil
}

// EffectKey builds a valid KV key from parts (projector, incident, what):
// each part is hashed when it holds characters a key cannot.
func EffectKey(parts ...string) string {
	out := make([]string, len(parts))
	for i, p := range parts {
		if p == "" || strings.ContainsFunc(p, func(r rune) bool {
			return !(r == '-' || r == '_' || r == '=' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
		}) {
			p = Key(p)[:32]
		}
		out[i] = p
	}
	return strings.Join(out, ".")
}

// Get returns the recorded result of an effect, if it was done.
func (e *Effects) Get(ctx context.Context, key string, v any) (bool, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	entry, err := e.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("%w: effect %s: %v", ErrUnavailable, key, err)
	}
	if v != nil {
		if err := json.Unmarshal(entry.Value(), v); err != nil {
			return true, fmt.Errorf("effect %s: %w", key, err)
		}
	}
	return true, nil
}

// Put records that an effect was done, with its result.
func (e *Effects) Put(ctx context.Context, key string, v any) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if _, err := e.kv.Put(ctx, key, b); err != nil {
		return fmt.Errorf("%w: record effect %s: %v", ErrUnavailable, key, err)
	}
	return nil
}

// Ledger is what Once needs of the effects ledger: Effects, or whatever a
// module was handed in its place.
type Ledger interface {
	Get(ctx context.Context, key string, v any) (bool, error)
	Put(ctx context.Context, key string, v any) error
}

// Once runs do unless the effect under key is already recorded, records
// its result, and decodes the result into v either way. A crash between do
// and the record repeats do on redelivery, so do must look up before it
// creates (a channel by name, a case by label).
func Once[T any](ctx context.Context, e Ledger, key string, do func(context.Context) (T, error)) (T, error) {
	var v T
	if ok, err := e.Get(ctx, key, &v); err != nil || ok {
		return v, err
	}
	v, err := do(ctx)
	if err != nil {
		return v, err
	}
	return v, e.Put(ctx, key, v)
}
