// Package slacksign verifies that an HTTP request comes from Slack: the v0
// signature is HMAC-SHA256 over "v0:<timestamp>:<raw body>" with the app's
// signing secret, and the timestamp must be within five minutes of now so a
// captured request cannot be replayed later.
package slacksign

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Headers Slack sets on every request it signs.
const (
	HeaderSignature = "X-Slack-Signature"
	HeaderTimestamp = "X-Slack-Request-Timestamp"
)

// MaxAge is how far the request timestamp may be from local time.
const MaxAge = 5 * time.Minute

// MaxBody bounds what is read before the signature is checked.
const MaxBody = 1 << 20

// Errors callers branch on: all mean 401 except ErrTooLarge (413).
var (
	ErrMissing   = errors.New("slack signature or timestamp missing")
	ErrStale     = errors.New("slack request timestamp outside the 5-minute window")
	ErrSignature = errors.New("slack signature does not match")
	ErrTooLarge  = errors.New("request body too large")
)

// Sign returns the X-Slack-Signature value for body sent at timestamp.
func Sign(secret, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte("v0:" + timestamp + ":"))
	mac.Write(body)
	return "v0=" + hex.EncodeToString(mac.Sum(nil))
}

// Verify checks a signature and timestamp against body at time now.
func Verify(secret, signature, timestamp string, body []byte, now time.Time) error {
	if signature == "" || timestamp == "" {
		return ErrMissing
	}
	ts, err := strconv.ParseInt(strings.TrimSpace(timestamp), 10, 64)
	if err != nil {
		return fmt.Errorf("%w: timestamp %q is not a number", ErrMissing, timestamp)
	}
	if d := now.Sub(time.Unix(ts, 0)); d > MaxAge || d < -MaxAge {
		return ErrStale
	}
	want := Sign(secret, timestamp, body)
	if !hmac.Equal([]byte(want), []byte(signature)) {
		return ErrSignature
	}
	return nil
}

// Verifier reads and verifies request bodies.
type Verifier struct {
	Secret string
	Now    func() time.Time // default time.Now
}

// Body reads r's body (at most MaxBody) and returns it only when the
// signature is valid; nothing of it is parsed before.
func (v *Verifier) Body(r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
	if err != nil {
		return nil, err
	}
	if len(body) > MaxBody {
		return nil, ErrTooLarge
	}
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	if err := Verify(v.Secret, r.Header.Get(HeaderSignature), r.Header.Get(HeaderTimestamp), body, now()); err != nil {
		return nil, err
	}
	return body, nil
}
