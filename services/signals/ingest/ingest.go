package ingest

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/httpjson"
)

// badRequest is a payload error: the answer is 400 with its message, which
// names the field.
type badRequest struct{ msg string }

func (e *badRequest) Error() string { return e.msg }

func bad(format string, a ...any) error { return &badRequest{fmt.Sprintf(format, a...)} }

// unauthorized is a caller that could not be verified (401).
type unauthorized struct{ msg string }

func (e *unauthorized) Error() string { return e.msg }

func denied(format string, a ...any) error { return &unauthorized{fmt.Sprintf(format, a...)} }

// reply writes the JSON API's error shape.
func reply(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

// accepted is the answer to a stored delivery.
type accepted struct {
	Accepted int `json:"accepted"` // signals in the delivery, all stored
	New      int `json:"new"`      // of which not seen before
}

// readBody reads at most max bytes; more is 413.
func readBody(w http.ResponseWriter, r *http.Request, max int64) ([]byte, bool) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		reply(w, http.StatusMethodNotAllowed, "method_not_allowed", "use POST")
		return nil, false
	}
	body := http.MaxBytesReader(w, r.Body, max)
	var b []byte
	var err error
	if n := r.ContentLength; n > 0 && n <= max {
		// The announced length: one allocation instead of ReadAll's growth.
		b = make([]byte, n)
		if _, err = io.ReadFull(body, b); err == nil {
			_, err = body.Read(make([]byte, 1))
			if err == io.EOF {
				err = nil
			} else if err == nil {
				err = errors.New("body is longer than its Content-Length")
			}
		}
	} else {
		b, err = io.ReadAll(body)
	}
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			reply(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("body is larger than %d bytes", max))
		} else {
			// The cause (a connection cut or too slow) names sockets: not for the sender.
			reply(w, http.StatusBadRequest, "bad_request", "the body could not be read whole (connection closed or too slow); send it again")
		}
		return nil, false
	}
	return b, true
}

// fail answers an error from verification, parsing or storing.
func fail(w http.ResponseWriter, err error) {
	var br *badRequest
	var un *unauthorized
	var ku *keysUnavailable
	switch {
	case errors.As(err, &un):
		reply(w, http.StatusUnauthorized, "unauthorized", un.msg)
	case errors.As(err, &ku):
		w.Header().Set("Retry-After", strconv.Itoa(int(keyRetryAfter.Seconds())))
		reply(w, http.StatusServiceUnavailable, "keys_unavailable", ku.Error())
	case errors.As(err, &br):
		reply(w, http.StatusBadRequest, "bad_request", br.msg)
	case errors.Is(err, natsjs.ErrUnavailable):
		w.Header().Set("Retry-After", "5")
		reply(w, http.StatusServiceUnavailable, "unavailable", "the signal could not be stored; retry")
	default:
		// Internal causes stay in the log, never in the answer.
		slog.Error("signal delivery failed", "err", err)
		reply(w, http.StatusInternalServerError, "internal", "the hub failed to take the signal; the cause is in its log")
	}
}

var jsonType = []string{"application/json"}

// Limits on what one signal may carry.
const (
	maxText   = 10_000
	maxLabels = 64
	// Identifiers are copied into incident facts and reasons, whose size
	// is bounded: a longer one is refused here, not by the projector.
	maxFingerprint = 1024
	maxGroupKey    = 4096
	maxRevision    = 1024
)

// validate checks what every parser must produce.
func validate(s *events.Signal) error {
	switch {
	case !events.ValidID(s.Source):
		return fmt.Errorf("source %q must be 1 to 64 characters from [A-Za-z0-9_-]", s.Source)
	case s.Fingerprint == "":
		return errors.New("fingerprint is required")
	case s.Status != events.SignalFiring && s.Status != events.SignalResolved:
		return fmt.Errorf("status %q must be firing or resolved", s.Status)
	case strings.TrimSpace(s.Title) == "":
		return errors.New("title is required")
	case s.StartsAt.IsZero():
		return errors.New("starts_at is required")
	case len(s.Labels) > maxLabels:
		return fmt.Errorf("labels: more than %d", maxLabels)
	case len(s.Title) > maxText || len(s.Summary) > maxText || len(s.CustomerImpact) > maxText:
		return fmt.Errorf("title, summary or customer_impact is longer than %d bytes", maxText)
	case len(s.Fingerprint) > maxFingerprint:
		return fmt.Errorf("fingerprint is longer than %d bytes", maxFingerprint)
	case len(s.GroupKey) > maxGroupKey:
		return fmt.Errorf("group_key is longer than %d bytes", maxGroupKey)
	case len(s.Revision) > maxRevision:
		return fmt.Errorf("revision is longer than %d bytes", maxRevision)
	}
	for k, v := range s.Labels {
		if len(k)+len(v) > maxText {
			return fmt.Errorf("labels: %.40q is longer than %d bytes", k, maxText)
		}
	}
	if !validSeverity(s.Severity) {
		return fmt.Errorf("severity %q must be one of %s", s.Severity, strings.Join(events.SignalSeverities, ", "))
	}
	if s.GroupKey == "" {
		s.GroupKey = s.Source + "/" + s.Fingerprint
	}
	return nil
}

func validSeverity(s string) bool {
	for _, v := range events.SignalSeverities {
		if s == v {
			return true
		}
	}
	return false
}

// decode reads one JSON value: malformed JSON and trailing data are
// errors. strict also refuses unknown fields, for the payloads this hub
// defines; a vendor's payload gains fields over time and those are ignored.
func decode(b []byte, v any, strict bool) error { return decodeAt(b, v, strict, "") }

// decodeAt is decode of the value at path in the payload (for errors).
func decodeAt(b []byte, v any, strict bool, path string) error {
	if !strict {
		// Unmarshal refuses trailing data too, without a Decoder's copy.
		if err := json.Unmarshal(b, v); err != nil {
			var se *json.SyntaxError
			if errors.As(err, &se) && strings.HasSuffix(se.Error(), "after top-level value") {
				return bad("%sinvalid JSON: trailing data after the value", prefix(path))
			}
			return payloadError(b, v, strict, path, err)
		}
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return payloadError(b, v, strict, path, err)
	}
	if dec.More() {
		return bad("%sinvalid JSON: trailing data after the value", prefix(path))
	}
	if _, err := dec.Token(); err != io.EOF {
		return bad("%sinvalid JSON: trailing data after the value", prefix(path))
	}
	return nil
}

// bearer verifies Authorization: Bearer <token> in constant time.
func bearer(r *http.Request, token string) error {
	if !httpjson.Bearer(r, token) {
		return denied("missing or wrong bearer token")
	}
	return nil
}

// headerSecret verifies a shared secret sent in a header.
func headerSecret(r *http.Request, name, secret string) error {
	got := r.Header.Get(name)
	if !httpjson.SecretEqual(got, secret) {
		return denied("missing or wrong %s header", name)
	}
	return nil
}

// Grafana's webhook HMAC: hex HMAC-SHA256 of the body, or of
// "<timestamp>:<body>" when the timestamp header is configured.
const (
	grafanaSignatureHeader = "X-Grafana-Alerting-Signature"
	grafanaTimestampHeader = "X-Grafana-Alerting-Timestamp"
)

func grafanaHMAC(r *http.Request, body []byte, secret string, maxSkew time.Duration, now time.Time) error {
	sig, err := hex.DecodeString(r.Header.Get(grafanaSignatureHeader))
	if err != nil || len(sig) == 0 || secret == "" {
		return denied("missing or malformed %s header", grafanaSignatureHeader)
	}
	mac := hmac.New(sha256.New, []byte(secret))
	if ts := r.Header.Get(grafanaTimestampHeader); ts != "" {
		t, err := parseUnix(ts)
		if err != nil || now.Sub(t).Abs() > maxSkew {
			return denied("%s is missing, malformed or too old", grafanaTimestampHeader)
		}
		mac.Write([]byte(ts + ":"))
	}
	mac.Write(body)
	if !hmac.Equal(sig, mac.Sum(nil)) {
		return denied("wrong %s", grafanaSignatureHeader)
	}
	return nil
}

func parseUnix(s string) (time.Time, error) {
	var sec int64
	if _, err := fmt.Sscanf(s, "%d", &sec); err != nil {
		return time.Time{}, err
	}
	return time.Unix(sec, 0), nil
}
