package signals

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// oidcVerifier checks the OIDC token Pub/Sub push attaches: an RS256 JWT
// from Google, for our audience, minted for the configured service account.
type oidcVerifier struct {
	audience       string
	serviceAccount string
	issuers        []string
	keys           *jwks
	now            func() time.Time
}

type jwtClaims struct {
	Iss           string `json:"iss"`
	Aud           string `json:"aud"`
	Email         string `json:"email"`
	EmailVerified bool   `json:"email_verified"`
	Exp           int64  `json:"exp"`
	Iat           int64  `json:"iat"`
}

func (v *oidcVerifier) verify(ctx context.Context, r *http.Request) error {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return denied("missing bearer token")
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return denied("token is not a JWT")
	}
	var hdr struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}
	if err := decodeSegment(parts[0], &hdr); err != nil || hdr.Alg != "RS256" {
		return denied("token header is malformed or not RS256")
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return denied("token signature is malformed")
	}
	key, err := v.keys.key(ctx, hdr.Kid)
	if err != nil {
		return err
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if rsa.VerifyPKCS1v15(key, crypto.SHA256, sum[:], sig) != nil {
		return denied("token signature does not verify")
	}
	var c jwtClaims
	if err := decodeSegment(parts[1], &c); err != nil {
		return denied("token claims are malformed")
	}
	now := v.now().Unix()
	switch {
	case !contains(v.issuers, c.Iss):
		return denied("token issuer %q is not accepted", c.Iss)
	case c.Aud != v.audience:
		return denied("token audience %q is not %q", c.Aud, v.audience)
	case c.Email != v.serviceAccount || !c.EmailVerified:
		return denied("token is for %q, not the configured service account", c.Email)
	case c.Exp < now-30 || c.Iat > now+300:
		return denied("token is expired or not yet valid")
	}
	return nil
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

func decodeSegment(s string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// jwks fetches the issuer's signing keys and caches them; an unknown kid
// refreshes at most once a minute (keys rotate, attackers make up kids).
// A refresh holds no lock: known keys keep verifying meanwhile, and the
// requests that need the new set wait for one shared fetch.
type jwks struct {
	url    string
	client *http.Client
	now    func() time.Time
	log    *slog.Logger

	flight singleflight.Group
	mu     sync.Mutex // guards the fields below, never held during a fetch
	keys   map[string]*rsa.PublicKey
	// fetched is the last fetch that succeeded, failed the last that did
	// not (zero once one succeeds).
	fetched, failed time.Time
}

var errJWKSUnavailable = &keysUnavailable{what: "Google's signing keys"}

func (j *jwks) key(ctx context.Context, kid string) (*rsa.PublicKey, error) {
	j.mu.Lock()
	k, ok := j.keys[kid]
	now := j.now()
	recent := !j.fetched.IsZero() && now.Sub(j.fetched) < time.Minute
	failing := !j.failed.IsZero() && now.Sub(j.failed) < keyRetryAfter
	j.mu.Unlock()
	switch {
	case ok:
		return k, nil
	case recent:
		return nil, denied("token key %q is unknown", kid)
	case failing:
		return nil, errJWKSUnavailable
	}
	keys, err := fetchOnce(ctx, &j.flight, "", errJWKSUnavailable, j.refresh)
	if err != nil {
		return nil, err
	}
	if k, ok := keys[kid]; ok {
		return k, nil
	}
	return nil, denied("token key %q is unknown", kid)
}

// refresh fetches the key set and records the outcome; a failure keeps
// the keys fetched before.
func (j *jwks) refresh(ctx context.Context) (map[string]*rsa.PublicKey, error) {
	keys, err := j.fetch(ctx)
	j.mu.Lock()
	defer j.mu.Unlock()
	if err != nil {
		j.failed = j.now()
		j.log.Warn("signals: cannot fetch the GCP signing keys; Pub/Sub pushes answer 503 until they can be fetched",
			"url", j.url, "err", err)
		return nil, errJWKSUnavailable
	}
	j.keys, j.fetched, j.failed = keys, j.now(), time.Time{}
	return keys, nil
}

func (j *jwks) fetch(ctx context.Context) (map[string]*rsa.PublicKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := j.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET: %s", resp.Status)
	}
	var set struct {
		Keys []struct {
			Kty string `json:"kty"`
			Kid string `json:"kid"`
			N   string `json:"n"`
			E   string `json:"e"`
		} `json:"keys"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&set); err != nil {
		return nil, err
	}
	out := map[string]*rsa.PublicKey{}
	for _, k := range set.Keys {
		if k.Kty != "RSA" {
			continue
		}
		n, err1 := base64.RawURLEncoding.DecodeString(k.N)
		e, err2 := base64.RawURLEncoding.DecodeString(k.E)
		if err1 != nil || err2 != nil || len(e) > 4 {
			continue
		}
		out[k.Kid] = &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
	}
	return out, nil
}
