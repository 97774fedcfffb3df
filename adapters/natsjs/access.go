package natsjs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hikeshi/hikeshi/events"
	"github.com/nats-io/nats.go/jetstream"
)

// TokensBucket holds API tokens by the SHA-256 of their secret; the
// secret itself is never stored. SessionsBucket holds browser sessions by
// the SHA-256 of their cookie, for at most MaxSession.
const (
	TokensBucket   = "hikeshi_tokens"
	SessionsBucket = "hikeshi_sessions"
	MaxSession     = 30 * 24 * time.Hour
)

// TokenRecord is one API token as stored.
type TokenRecord struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Role       string     `json:"role"`
	Scopes     []string   `json:"scopes,omitempty"`
	Hash       string     `json:"hash,omitempty"` // hex SHA-256 of the secret; never shown
	CreatedAt  time.Time  `json:"created_at"`
	CreatedBy  string     `json:"created_by"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
	RevokedBy  string     `json:"revoked_by,omitempty"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
}

// ensureAccess creates the ACCESS stream (access changes, kept forever like
// the incidents) and the tokens bucket.
func ensureAccess(ctx context.Context, js jetstream.JetStream, replicas int) error {
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        events.AccessStream,
		Description: "Hikeshi access changes (tokens created and revoked, role mappings), never a secret",
		Subjects:    []string{events.AccessSubjectPrefix + ".>"},
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
		Duplicates:  2 * time.Minute,
		DenyDelete:  true,
		DenyPurge:   true,
	}); err != nil {
		return fmt.Errorf("stream %s: %w", events.AccessStream, err)
	}
	if _, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      TokensBucket,
		Description: "API tokens by the SHA-256 of their secret",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
	}); err != nil {
		return fmt.Errorf("bucket %s: %w", TokensBucket, err)
	}
	if _, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      SessionsBucket,
		Description: "Browser sessions by the SHA-256 of their cookie",
		History:     1,
		TTL:         MaxSession,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
	}); err != nil {
		return fmt.Errorf("bucket %s: %w", SessionsBucket, err)
	}
	return ensurePublic(ctx, js, replicas)
}

// ensurePublic creates the redacted stream outside consumers may read.
// It is derived (the public projector can rebuild it), so it may be purged.
func ensurePublic(ctx context.Context, js jetstream.JetStream, replicas int) error {
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        events.PublicStream,
		Description: "Hikeshi incident events with confidential incidents redacted, for outside consumers",
		Subjects:    []string{events.PublicSubjectPrefix + ".>"},
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
		Duplicates:  2 * time.Minute,
	}); err != nil {
		return fmt.Errorf("stream %s: %w", events.PublicStream, err)
	}
	return nil
}

// Sessions keeps browser sessions, shared by every API replica.
type Sessions struct{ kv jetstream.KeyValue }

// NewSessions binds the sessions bucket.
func NewSessions(ctx context.Context, js jetstream.JetStream) (*Sessions, error) {
	kv, err := js.KeyValue(ctx, SessionsBucket)
	if err != nil {
		return nil, fmt.Errorf("sessions bucket: %w", err)
	}
	return &Sessions{kv: kv}, nil
}

// Put stores a session under key (a hash of its cookie).
func (s *Sessions) Put(ctx context.Context, key string, v any) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if _, err := s.kv.Put(ctx, key, b); err != nil {
		return fmt.Errorf("%w: store session: %v", ErrUnavailable, err)
	}
	return nil
}

// Get loads a session into v; false when there is none.
func (s *Sessions) Get(ctx context.Context, key string, v any) (bool, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	e, err := s.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("%w: session: %v", ErrUnavailable, err)
	}
	return true, json.Unmarshal(e.Value(), v)
}

// Delete ends a session.
func (s *Sessions) Delete(ctx context.Context, key string) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	if err := s.kv.Delete(ctx, key); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("%w: end session: %v", ErrUnavailable, err)
	}
	return nil
}

// Access stores tokens and access events.
type Access struct {
	js     jetstream.JetStream
	kv     jetstream.KeyValue
	stream jetstream.Stream
}

// NewAccess binds the tokens bucket and the ACCESS stream.
func NewAccess(ctx context.Context, js jetstream.JetStream) (*Access, error) {
	kv, err := js.KeyValue(ctx, TokensBucket)
	if err != nil {
		return nil, fmt.Errorf("tokens bucket: %w", err)
	}
	st, err := js.Stream(ctx, events.AccessStream)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", events.AccessStream, err)
	}
	return &Access{js: js, kv: kv, stream: st}, nil
}

func tokenKey(hash string) string { return "h." + hash }

// PutToken stores or replaces a token record.
func (a *Access) PutToken(ctx context.Context, t TokenRecord) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	b, err := json.Marshal(t)
	if err != nil {
		return err
	}
	if _, err := a.kv.Put(ctx, tokenKey(t.Hash), b); err != nil {
		return fmt.Errorf("%w: store token: %v", ErrUnavailable, err)
	}
	return nil
}

// TokenByHash finds a token by the hash of its secret.
func (a *Access) TokenByHash(ctx context.Context, hash string) (TokenRecord, bool, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	e, err := a.kv.Get(ctx, tokenKey(hash))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return TokenRecord{}, false, nil
	}
	if err != nil {
		return TokenRecord{}, false, fmt.Errorf("%w: token: %v", ErrUnavailable, err)
	}
	var t TokenRecord
	if err := json.Unmarshal(e.Value(), &t); err != nil {
		return TokenRecord{}, false, fmt.Errorf("token record: %w", err)
	}
	return t, true, nil
}

// TouchToken records a token's last use. It changes the record only if
// nothing else did since it was read (a revocation is never undone by a
// use); a lost race loses only this record of use.
func (a *Access) TouchToken(ctx context.Context, hash string, at time.Time) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	e, err := a.kv.Get(ctx, tokenKey(hash))
	if err != nil {
		return fmt.Errorf("%w: token: %v", ErrUnavailable, err)
	}
	var t TokenRecord
	if err := json.Unmarshal(e.Value(), &t); err != nil {
		return fmt.Errorf("token record: %w", err)
	}
	if t.RevokedAt != nil {
		return nil
	}
	t.LastUsedAt = &at
	b, err := json.Marshal(t)
	if err != nil {
		return err
	}
	_, err = a.kv.Update(ctx, tokenKey(hash), b, e.Revision())
	return err
}

// Tokens lists every token record, in no particular order.
func (a *Access) Tokens(ctx context.Context) ([]TokenRecord, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	keys, err := a.kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: tokens: %v", ErrUnavailable, err)
	}
	var out []TokenRecord
	for k := range keys.Keys() {
		e, err := a.kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%w: token: %v", ErrUnavailable, err)
		}
		var t TokenRecord
		if json.Unmarshal(e.Value(), &t) == nil {
			out = append(out, t)
		}
	}
	return out, nil
}

// AppendAccess publishes an access event on the ACCESS stream; a retry with
// the same event id is dropped by the stream's duplicate window.
func (a *Access) AppendAccess(ctx context.Context, subjectKey string, e events.Envelope) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	name, err := events.SubjectName(e.Type)
	if err != nil {
		return err
	}
	b, err := e.Marshal()
	if err != nil {
		return err
	}
	if _, err := a.js.Publish(ctx, events.AccessSubject(subjectKey, name), b, jetstream.WithMsgID(e.ID)); err != nil {
		return fmt.Errorf("%w: access event: %v", ErrUnavailable, err)
	}
	return nil
}

// AccessEvents returns up to limit access events, newest first.
func (a *Access) AccessEvents(ctx context.Context, limit int) ([]events.Stored, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	info, err := a.stream.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	var out []events.Stored
	for seq := info.State.LastSeq; seq >= max(info.State.FirstSeq, 1) && len(out) < limit; seq-- {
		m, err := a.stream.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		env, err := events.Unmarshal(m.Data)
		if err != nil {
			continue
		}
		out = append(out, events.Stored{Envelope: env, Seq: seq})
	}
	return out, nil
}

// LastAccess returns the data of the newest access event on subject
// access.<key>.<name>, if there is one.
func (a *Access) LastAccess(ctx context.Context, key, name string) (events.Envelope, bool, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	m, err := a.stream.GetLastMsgForSubject(ctx, events.AccessSubject(key, name))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return events.Envelope{}, false, nil
	}
	if err != nil {
		return events.Envelope{}, false, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	env, err := events.Unmarshal(m.Data)
	return env, err == nil, err
}
