package httpapi

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/services/access"
	"github.com/hikeshi/hikeshi/services/command"
	"github.com/hikeshi/hikeshi/services/httpjson"
	"github.com/hikeshi/hikeshi/services/incident"
)

// apiError is the body of every error: {"error":{"code","message"}}.
type apiError = httpjson.Error

func newErr(status int, code, msg string) *apiError {
	return &apiError{Status: status, Code: code, Message: msg}
}

// toAPIError maps domain and infrastructure errors to HTTP answers. What
// the bus did not store is never answered with a 2xx.
func toAPIError(err error) *apiError {
	var ae *apiError
	var ve *incident.ValidationError
	var ce *incident.ConflictError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &ve):
		e := newErr(http.StatusBadRequest, "invalid_field", ve.Error())
		e.Field = ve.Field
		return e
	case errors.Is(err, incident.ErrNotFound):
		return newErr(http.StatusNotFound, "not_found", "incident not found")
	case errors.As(err, &ce):
		return newErr(http.StatusConflict, "invalid_transition", ce.Reason)
	case errors.Is(err, command.ErrVersionConflict):
		return newErr(http.StatusConflict, "version_conflict", err.Error()+"; GET the incident and retry with its version")
	case errors.Is(err, access.ErrUnauthenticated):
		return newErr(http.StatusUnauthorized, "unauthorized", err.Error())
	case access.IsForbidden(err):
		return newErr(http.StatusForbidden, "forbidden", err.Error())
	case errors.Is(err, natsjs.ErrUnavailable):
		return newErr(http.StatusServiceUnavailable, "bus_unavailable", "the event bus did not store the event; nothing was recorded, retry later")
	}
	return newErr(http.StatusInternalServerError, "internal", "internal error")
}

func writeJSON(w http.ResponseWriter, status int, v any) { httpjson.WriteJSON(w, status, v) }

func writeError(w http.ResponseWriter, r *http.Request, err error) {
	ae := toAPIError(err)
	if ae.Status >= 500 {
		slog.Error("request failed", "method", r.Method, "path", r.URL.Path, "status", ae.Status, "err", err)
	}
	httpjson.Write(w, ae)
}
