package access

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/events"
)

// TokenPrefix starts every API token, so that a leaked one is recognisable
// (secret scanners, logs) and a typo is told from a wrong token.
const TokenPrefix = "hks_"

// ErrTokenNotFound: no token has that id.
var ErrTokenNotFound = errors.New("no such token")

// HashToken is how a token is stored and looked up: the SHA-256 of the
// secret. The secret has 256 bits of randomness, so no slow hash is needed.
func HashToken(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

func newSecret() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return TokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// ParseExpiry reads a lifetime: 90d, 12h, 30m; "never" or "" for none.
func ParseExpiry(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "never" {
		return 0, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("expires %q: want a positive number of days such as 90d", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("expires %q: want a lifetime such as 90d, 12h or never", s)
	}
	return d, nil
}

// TokenRequest asks for a new token.
type TokenRequest struct {
	Name    string        `json:"name"`
	Role    Role          `json:"role"`
	Scopes  []string      `json:"scopes,omitempty"`
	Expires time.Duration `json:"-"`
}

// Validate checks a request before anything is stored.
func (q TokenRequest) Validate() error {
	if n := strings.TrimSpace(q.Name); n == "" || len(n) > 100 {
		return errors.New("name: give the token a name of 1 to 100 characters (what it is for, e.g. ci)")
	}
	if q.Role < Viewer || q.Role > Admin {
		return errors.New("role: must be viewer, responder, security or admin")
	}
	for _, s := range q.Scopes {
		if s != ScopeActAs {
			return fmt.Errorf("scopes: unknown scope %q (known: %s)", s, ScopeActAs)
		}
	}
	return nil
}

// Tokens creates, checks, lists and revokes API tokens, recording every
// change on the ACCESS stream.
type Tokens struct {
	store *natsjs.Access
	now   func() time.Time

	mu   sync.Mutex
	used map[string]time.Time // token id → last use written
}

// NewTokens serves tokens from store.
func NewTokens(store *natsjs.Access) *Tokens {
	return &Tokens{store: store, now: time.Now, used: map[string]time.Time{}}
}

// Store is where tokens and access events are kept.
func (t *Tokens) Store() *natsjs.Access { return t.store }

// Create makes a token and returns its secret, the only time it is shown.
func (t *Tokens) Create(ctx context.Context, by Identity, q TokenRequest) (natsjs.TokenRecord, string, error) {
	if err := q.Validate(); err != nil {
		return natsjs.TokenRecord{}, "", err
	}
	secret := newSecret()
	now := t.now().UTC()
	rec := natsjs.TokenRecord{
		ID: events.NewID(), Name: strings.TrimSpace(q.Name), Role: q.Role.String(), Scopes: slices.Compact(slices.Sorted(slices.Values(q.Scopes))),
		Hash: HashToken(secret), CreatedAt: now, CreatedBy: by.ID,
	}
	if q.Expires > 0 {
		exp := now.Add(q.Expires)
		rec.ExpiresAt = &exp
	}
	// Recorded before it is stored: no token ever works without its
	// creation in the audit.
	if err := t.record(ctx, by, rec.ID, &events.TokenCreated{TokenID: rec.ID, Name: rec.Name, Role: rec.Role, Scopes: rec.Scopes, ExpiresAt: rec.ExpiresAt}); err != nil {
		return natsjs.TokenRecord{}, "", err
	}
	if err := t.store.PutToken(ctx, rec); err != nil {
		return natsjs.TokenRecord{}, "", err
	}
	return rec, secret, nil
}

// Revoke stops a token working.
func (t *Tokens) Revoke(ctx context.Context, by Identity, id string) (natsjs.TokenRecord, error) {
	rec, err := t.byID(ctx, id)
	if err != nil {
		return rec, err
	}
	if rec.RevokedAt == nil {
		now := t.now().UTC()
		rec.RevokedAt, rec.RevokedBy = &now, by.ID
		if err := t.store.PutToken(ctx, rec); err != nil {
			return rec, err
		}
	}
	// Recorded again on a repeated revoke: the event id derives from the
	// token, so the stream keeps one.
	return rec, t.record(ctx, by, rec.ID, &events.TokenRevoked{TokenID: rec.ID, Name: rec.Name}, "revoked")
}

// List returns every token, newest first, without hashes.
func (t *Tokens) List(ctx context.Context) ([]natsjs.TokenRecord, error) {
	list, err := t.store.Tokens(ctx)
	if err != nil {
		return nil, err
	}
	for i := range list {
		list[i].Hash = ""
	}
	slices.SortFunc(list, func(a, b natsjs.TokenRecord) int { return b.CreatedAt.Compare(a.CreatedAt) })
	return list, nil
}

func (t *Tokens) byID(ctx context.Context, id string) (natsjs.TokenRecord, error) {
	list, err := t.store.Tokens(ctx)
	if err != nil {
		return natsjs.TokenRecord{}, err
	}
	for _, r := range list {
		if r.ID == id {
			return r, nil
		}
	}
	return natsjs.TokenRecord{}, ErrTokenNotFound
}

// errBadToken: the token is unknown, revoked or expired. The caller is told
// no more than that.
var errBadToken = errors.New("unknown, revoked or expired token")

// Check authenticates a secret, and records its use (at most once a
// minute per token).
func (t *Tokens) Check(ctx context.Context, secret string) (Identity, error) {
	if !strings.HasPrefix(secret, TokenPrefix) {
		return Identity{}, errBadToken
	}
	rec, ok, err := t.store.TokenByHash(ctx, HashToken(secret))
	if err != nil {
		return Identity{}, err
	}
	now := t.now()
	if !ok || rec.RevokedAt != nil || rec.ExpiresAt != nil && !now.Before(*rec.ExpiresAt) {
		return Identity{}, errBadToken
	}
	role, err := ParseRole(rec.Role)
	if err != nil {
		return Identity{}, errBadToken
	}
	t.touch(ctx, rec, now)
	return Identity{ID: "token:" + rec.ID, Name: rec.Name, Kind: Token, Role: role, Scopes: rec.Scopes}, nil
}

// touch records the token's last use; a failure costs only the record.
func (t *Tokens) touch(ctx context.Context, rec natsjs.TokenRecord, now time.Time) {
	t.mu.Lock()
	last, seen := t.used[rec.ID]
	fresh := seen && now.Sub(last) < time.Minute || !seen && rec.LastUsedAt != nil && now.Sub(*rec.LastUsedAt) < time.Minute
	if !fresh {
		t.used[rec.ID] = now
	}
	t.mu.Unlock()
	if fresh {
		return
	}
	_ = t.store.TouchToken(ctx, rec.Hash, now.UTC())
}

// record appends an access change made by who; extra parts make a
// deterministic event id (a repeated revoke is one event).
func (t *Tokens) record(ctx context.Context, by Identity, key string, d events.Data, extra ...string) error {
	return Record(ctx, t.store, by, key, d, extra...)
}

// Record appends an access change on the ACCESS stream. With extra, the
// event id derives from the key and extra, so a retry records it once.
func Record(ctx context.Context, store *natsjs.Access, by Identity, key string, d events.Data, extra ...string) error {
	m := events.Meta{Actor: by.ID, ActorName: by.Name}
	if len(extra) > 0 {
		m.ID = events.DeriveID(append([]string{"access", key}, extra...)...)
	}
	env, err := events.New(key, d, m)
	if err != nil {
		return err
	}
	return store.AppendAccess(ctx, key, env)
}
