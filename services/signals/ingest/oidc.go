package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// oidcVerifier checks the OIDC token Pub/Sub push attaches: a JWT signed
// by Google (RS256), for our audience, minted for the configured service
// account. go-oidc verifies the signature, algorithm, audience and expiry
// and caches the key set; a kid it does not know makes it fetch the set
// again, one fetch shared by every request waiting for it.
type oidcVerifier struct {
	serviceAccount string
	issuers        []string
	keys           *keySource
	verifier       *oidc.IDTokenVerifier
}

func newOIDCVerifier(c GCP, client *http.Client, now func() time.Time, log *slog.Logger) *oidcVerifier {
	ks := &keySource{url: c.JWKSURL, base: client, now: now, log: log}
	remote := oidc.NewRemoteKeySet(oidc.ClientContext(context.Background(), &http.Client{Transport: ks, Timeout: fetchTimeout}), c.JWKSURL)
	return &oidcVerifier{
		serviceAccount: c.ServiceAccount, issuers: c.Issuers, keys: ks,
		// The issuer is one of several (Google signs as
		// https://accounts.google.com and accounts.google.com): checked in
		// verify against the configured list.
		verifier: oidc.NewVerifier("", remote, &oidc.Config{ClientID: c.Audience, SkipIssuerCheck: true, Now: now}),
	}
}

func (v *oidcVerifier) verify(ctx context.Context, r *http.Request) error {
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return denied("missing bearer token")
	}
	tok, err := v.verifier.Verify(ctx, raw)
	if err != nil {
		if v.keys.unavailable() || ctx.Err() != nil {
			return errJWKSUnavailable
		}
		return denied("token does not verify: %s", strings.TrimPrefix(err.Error(), "oidc: "))
	}
	var c struct {
		Email         string `json:"email"`
		EmailVerified bool   `json:"email_verified"`
	}
	switch err := tok.Claims(&c); {
	case err != nil:
		return denied("token claims are malformed")
	case !slices.Contains(v.issuers, tok.Issuer):
		return denied("token issuer %q is not accepted", tok.Issuer)
	case c.Email != v.serviceAccount || !c.EmailVerified:
		return denied("token is for %q, not the configured service account", c.Email)
	}
	return nil
}

var errJWKSUnavailable = &keysUnavailable{what: "Google's signing keys"}

// keySource is the transport go-oidc fetches the key set through. It
// bounds what a caller can make the hub fetch: a token with a made-up kid
// makes go-oidc fetch again, so within a minute of a fetch the set last
// fetched is answered instead (keys rotate, attackers make up kids); a
// failed fetch is not tried again for keyRetryAfter, and meanwhile a
// token go-oidc cannot verify with the keys it holds is answered 503.
type keySource struct {
	url  string
	base *http.Client
	now  func() time.Time
	log  *slog.Logger

	mu sync.Mutex
	// body is the last key set fetched, at fetched; failed is the last
	// fetch that failed (zero once one succeeds).
	body            []byte
	fetched, failed time.Time
}

// unavailable: the last fetch of the key set failed.
func (k *keySource) unavailable() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return !k.failed.IsZero()
}

func (k *keySource) RoundTrip(req *http.Request) (*http.Response, error) {
	k.mu.Lock()
	now, body := k.now(), k.body
	recent := body != nil && now.Sub(k.fetched) < time.Minute
	failing := !k.failed.IsZero() && now.Sub(k.failed) < keyRetryAfter
	k.mu.Unlock()
	switch {
	case recent:
		return keySet(req, body), nil
	case failing:
		return nil, errors.New("the last fetch failed; not retried yet")
	}
	body, err := k.fetch(req)
	k.mu.Lock()
	defer k.mu.Unlock()
	if err != nil {
		k.failed = k.now()
		k.log.Warn("signals: cannot fetch the GCP signing keys; Pub/Sub pushes answer 503 until they can be fetched",
			"url", k.url, "err", err)
		return nil, err
	}
	k.body, k.fetched, k.failed = body, k.now(), time.Time{}
	return keySet(req, body), nil
}

func (k *keySource) fetch(req *http.Request) ([]byte, error) {
	base := k.base.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	resp, err := base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET: %s", resp.Status)
	}
	return io.ReadAll(io.LimitReader(resp.Body, 1<<20))
}

func keySet(req *http.Request, body []byte) *http.Response {
	return &http.Response{StatusCode: http.StatusOK, Status: "200 OK", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)), Request: req}
}
