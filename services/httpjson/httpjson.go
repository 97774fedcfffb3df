// Package httpjson holds what the API and the modules' own HTTP routes share:
// JSON answers in the API's error shape, the JSON content check, and the
// constant-time bearer and shared-secret checks. It imports the standard
// library only, so a module needs no part of the API server to answer as
// it does.
package httpjson

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"strings"
)

// Error is the body of every error answer: {"error":{"code","message"}},
// with the field at fault when there is one.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

func (e *Error) Error() string { return e.Message }

// WriteJSON answers with v as JSON.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Write answers with e. A 503 says when to retry.
func Write(w http.ResponseWriter, e *Error) {
	if e.Status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	WriteJSON(w, e.Status, map[string]*Error{"error": e})
}

// WriteError answers in the API's error shape, for routes that map their
// own errors.
func WriteError(w http.ResponseWriter, status int, code, message string) {
	Write(w, &Error{Status: status, Code: code, Message: message})
}

// Bearer reports whether the request carries "Authorization: Bearer
// <token>" for a non-empty token, compared with SecretEqual.
func Bearer(r *http.Request, token string) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && SecretEqual(got, token)
}

// SecretEqual compares what a caller sent with a non-empty secret. Both
// sides are hashed first, so the comparison takes the same time whatever
// the length and however much of the secret the caller guessed.
func SecretEqual(got, secret string) bool {
	a, b := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(secret))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1 && secret != ""
}
