package natsjs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// Answer is the first response to a request that carried an Idempotency-Key.
type Answer struct {
	RequestHash string          `json:"request_hash"`
	Status      int             `json:"status"`
	Body        json.RawMessage `json:"body"`
}

// Answers remembers first responses in a KV bucket with a TTL, shared by
// every API replica.
type Answers struct{ kv jetstream.KeyValue }

// NewAnswers binds the idempotency bucket.
func NewAnswers(ctx context.Context, js jetstream.JetStream) (*Answers, error) {
	kv, err := js.KeyValue(ctx, IdempotencyBucket)
	if err != nil {
		return nil, fmt.Errorf("idempotency bucket: %w", err)
	}
	return &Answers{kv: kv}, nil
}

// Key hashes the scope (who, method, path) and the client's key into a
// valid KV key of fixed length.
func Key(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Get returns the remembered answer for key, if any.
func (a *Answers) Get(ctx context.Context, key string) (Answer, bool, error) {
	e, err := a.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Answer{}, false, nil
	}
	if err != nil {
		return Answer{}, false, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	var ans Answer
	if err := json.Unmarshal(e.Value(), &ans); err != nil {
		return Answer{}, false, fmt.Errorf("idempotency record %s: %w", key, err)
	}
	return ans, true, nil
}

// Remember stores the first answer for key. When a concurrent request got
// there first, its answer wins and is returned.
func (a *Answers) Remember(ctx context.Context, key string, ans Answer) (Answer, error) {
	b, err := json.Marshal(ans)
	if err != nil {
		return ans, err
	}
	if _, err := a.kv.Create(ctx, key, b); err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			first, ok, gerr := a.Get(ctx, key)
			if gerr == nil && ok {
				return first, nil
			}
		}
		return ans, fmt.Errorf("%w: remember answer: %v", ErrUnavailable, err)
	}
	return ans, nil
}
