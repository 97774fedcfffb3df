package httpapi

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/hikeshi/hikeshi/services/history"
	"github.com/hikeshi/hikeshi/services/incident"
	"github.com/hikeshi/hikeshi/services/readmodel"
)

// pointParam reads ?as_of=<RFC 3339> or ?seq=N; ok is false when neither
// is given.
func pointParam(r *http.Request) (p history.Point, ok bool, err error) {
	q := r.URL.Query()
	asOf, seq := q.Get("as_of"), q.Get("seq")
	switch {
	case q.Has("as_of") && q.Has("seq"):
		return p, false, queryErr("as_of", "as_of and seq: give one or the other, not both")
	case q.Has("as_of"):
		t, err := timeParam("as_of", asOf)
		return history.Point{Time: t}, err == nil, err
	case q.Has("seq"):
		n, err := strconv.ParseUint(seq, 10, 64)
		if err != nil || n == 0 {
			return p, false, queryErr("seq", "seq: must be a stream sequence (a positive integer), e.g. seq=42; an incident's version is one")
		}
		return history.Point{Seq: n}, true, nil
	}
	return p, false, nil
}

// timeParam parses an RFC 3339 time (fractions of a second allowed).
func timeParam(name, v string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return t, queryErr(name, name+": must be an RFC 3339 time such as 2026-11-21T14:05:00Z, got "+strconv.Quote(v))
	}
	return t, nil
}

func queryErr(field, msg string) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: "invalid_query", Field: field, Message: msg}
}

// asOf is the incident id as it stood at p, a 404 that says when it was
// declared if p is earlier.
func (s *Server) asOf(r *http.Request, id string, p history.Point) (incident.State, error) {
	st, err := s.history.At(r.Context(), id, p)
	var bd *history.BeforeDeclared
	if errors.As(err, &bd) {
		return st, newErr(http.StatusNotFound, "not_yet_declared", bd.Error())
	}
	return st, err
}

// writeAsOf answers GET /api/v1/incidents/{id}?as_of=|seq=. No ETag: the
// past state's version is no If-Match for a command.
func (s *Server) writeAsOf(w http.ResponseWriter, r *http.Request, id string, p history.Point) error {
	st, err := s.asOf(r, id, p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}

// untilParam reads the timeline's ?until=<RFC 3339>; zero when not given.
func untilParam(r *http.Request) (time.Time, error) {
	if !r.URL.Query().Has("until") {
		return time.Time{}, nil
	}
	if r.URL.Query().Has("wait") {
		return time.Time{}, queryErr("until", "until and wait: a timeline up to a past time does not wait for new events; give one or the other")
	}
	return timeParam("until", r.URL.Query().Get("until"))
}

// cutTimeline keeps the entries an as-of read at until folds: those up to
// the incident's version then.
func cutTimeline(entries []readmodel.Entry, version uint64) []readmodel.Entry {
	for i, e := range entries {
		if e.Seq > version {
			return entries[:i]
		}
	}
	return entries
}

// timelineUntil answers the timeline as it stood at until: its events up
// to the version an as-of read at until folds.
func (s *Server) timelineUntil(w http.ResponseWriter, r *http.Request, id string, after uint64, limit int, until time.Time) error {
	then, err := s.asOf(r, id, history.Point{Time: until})
	if err != nil {
		return err
	}
	entries, err := s.d.Timeline.Timeline(r.Context(), id, after, limit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"incident_id": id, "case_number": then.CaseNumber, "version": then.Version, "until": until, "events": cutTimeline(entries, then.Version)})
	return nil
}

// History is the API's cache of past states, for the other parts of the
// process that read them (the console), so that they share its bound.
func (s *Server) History() *history.Cache { return s.history }
