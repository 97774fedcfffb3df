package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/services/access"
	"github.com/hikeshi/hikeshi/services/incident"
	"github.com/hikeshi/hikeshi/services/integration"
)

// incidentAccess looks an incident up for the live event stream.
func (s *Server) incidentAccess(ctx context.Context, id string) (*access.Incident, error) {
	st, err := s.d.Commands.Get(ctx, id)
	if errors.Is(err, incident.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	acc := access.IncidentOf(st)
	return &acc, nil
}

// visible loads the incident and checks the caller may take action on it
// (access.Allowed: an incident it may not read is not found).
func (s *Server) visible(r *http.Request, id string, a access.Action) (incident.State, error) {
	st, ok := s.stored(r.Context(), id)
	if !ok {
		var err error
		if st, err = s.d.Commands.Get(r.Context(), id); err != nil {
			return st, err
		}
	}
	return st, access.Allowed(r.Context(), st, a)
}

// stored is the incident as the timeline store has it, when that store
// holds every event on the stream (its checkpoint at the stream's last
// sequence, asked first): then it is as current as a read through the
// command side, which asks the stream for the incident's last event, and
// after a rest that makes the server load the message block holding it
// (tens of milliseconds in a stream of a million events). Here it costs
// the stream's state, which the server keeps in memory, and one row. ok is
// false while the store lags (under writes) or lacks the incident: the
// caller reads through the command side.
func (s *Server) stored(ctx context.Context, id string) (st incident.State, ok bool) {
	if s.d.TimelineCheckpoint == "" || s.d.Events == nil {
		return st, false
	}
	last, err := s.d.Events.LastStreamSeq(ctx)
	if err != nil {
		return st, false
	}
	// Exactly at it: a store ahead of the stream is not of this stream.
	if cp, err := s.d.Timeline.Checkpoint(ctx, s.d.TimelineCheckpoint); err != nil || cp != last {
		return st, false
	}
	raw, err := s.d.Timeline.Snapshot(ctx, id)
	if err != nil || json.Unmarshal(raw, &st) != nil || !st.Exists() {
		return incident.State{}, false
	}
	return st, true
}

// Codenamed is all that is said of a confidential incident to a caller
// who may not read it, when the hub lists such incidents at all.
func Codenamed(st incident.State) map[string]any {
	return map[string]any{
		"id": st.ID, "case_number": st.CaseNumber, "title": st.Codename, "codename": st.Codename,
		"service": integration.Service(st), "confidential": true, "severity": st.Severity, "status": st.Status,
		"declared_at": st.DeclaredAt, "updated_at": st.UpdatedAt,
	}
}

// listed filters a page of incident rows for the caller: a confidential
// incident it may not read is left out, or shown under its codename only.
func (s *Server) listed(ctx context.Context, rows []json.RawMessage) []any {
	who, _ := access.From(ctx)
	out := make([]any, 0, len(rows))
	for _, row := range rows {
		var st incident.State
		if err := json.Unmarshal(row, &st); err != nil {
			continue // written by the timeline; never expected
		}
		acc := access.IncidentOf(st)
		switch {
		case access.Can(who, access.Read, &acc):
			out = append(out, row)
		case s.d.ShowCodenames:
			out = append(out, Codenamed(st))
		}
	}
	return out
}

func (s *Server) whoami(w http.ResponseWriter, r *http.Request) error {
	who, _ := access.From(r.Context())
	writeJSON(w, http.StatusOK, who)
	return nil
}

// TokenAnswer is a token as the API shows it: never its hash; the secret
// only in the answer that created it.
type TokenAnswer struct {
	natsjs.TokenRecord
	Token string `json:"token,omitempty"`
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request) error {
	var q struct {
		Name    string   `json:"name"`
		Role    string   `json:"role"`
		Scopes  []string `json:"scopes"`
		Expires string   `json:"expires"`
	}
	if err := decode(r, &q); err != nil {
		return err
	}
	role, err := access.ParseRole(q.Role)
	if err != nil {
		return fieldErr("role", err.Error())
	}
	d, err := access.ParseExpiry(q.Expires)
	if err != nil {
		return fieldErr("expires", err.Error())
	}
	req := access.TokenRequest{Name: q.Name, Role: role, Scopes: q.Scopes, Expires: d}
	if err := req.Validate(); err != nil {
		return newErr(http.StatusBadRequest, "invalid_field", err.Error())
	}
	who, _ := access.From(r.Context())
	rec, secret, err := s.d.Tokens.Create(r.Context(), who, req)
	if err != nil {
		return err
	}
	rec.Hash = ""
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, TokenAnswer{TokenRecord: rec, Token: secret})
	return nil
}

func fieldErr(field, msg string) error {
	e := newErr(http.StatusBadRequest, "invalid_field", msg)
	e.Field = field
	return e
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request) error {
	list, err := s.d.Tokens.List(r.Context())
	if err != nil {
		return err
	}
	if list == nil {
		list = []natsjs.TokenRecord{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": list})
	return nil
}

func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request) error {
	who, _ := access.From(r.Context())
	rec, err := s.d.Tokens.Revoke(r.Context(), who, r.PathValue("id"))
	if errors.Is(err, access.ErrTokenNotFound) {
		return newErr(http.StatusNotFound, "not_found", "no token with id "+r.PathValue("id"))
	}
	if err != nil {
		return err
	}
	rec.Hash = ""
	writeJSON(w, http.StatusOK, rec)
	return nil
}

// accessEvents is the admin audit list: the latest access changes, newest
// first (?limit=N, default 100).
func (s *Server) accessEvents(w http.ResponseWriter, r *http.Request) error {
	limit, err := intParam(r, "limit", 100)
	if err != nil {
		return err
	}
	list, err := s.d.Tokens.Store().AccessEvents(r.Context(), max(limit, 1))
	if err != nil {
		return err
	}
	type entry struct {
		Seq       uint64          `json:"seq"`
		ID        string          `json:"id"`
		Type      string          `json:"type"`
		Time      time.Time       `json:"time"`
		Actor     string          `json:"actor"`
		ActorName string          `json:"actor_name,omitempty"`
		Data      json.RawMessage `json:"data"`
	}
	out := make([]entry, 0, len(list))
	for _, e := range list {
		out = append(out, entry{Seq: e.Seq, ID: e.ID, Type: e.Type, Time: e.Time, Actor: e.Actor, ActorName: e.ActorName, Data: e.Data})
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": out})
	return nil
}

// authorise authenticates the caller and checks it holds role need. On
// success the returned request carries the caller (access.From);
// otherwise the answer is written.
func authorise(a *access.Authenticator, w http.ResponseWriter, r *http.Request, need access.Role) (*http.Request, bool) {
	id, err := a.Authenticate(r)
	if err == nil {
		r = r.WithContext(access.With(r.Context(), id))
		err = access.Require(r.Context(), need)
	}
	if err != nil {
		writeError(w, r, err)
		return r, false
	}
	return r, true
}

// RequireCaller is the API's check of its caller for routes mounted
// outside it that serve API clients (a module's own endpoints): the caller
// is authenticated, must hold at least the viewer role, and is handed on in the
// request's context (access.From) for the handler's role and need-to-know
// checks (access.Require, access.Allowed); without one the answer is 401.
func RequireCaller(a *access.Authenticator) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r, ok := authorise(a, w, r, access.Viewer); ok {
				next.ServeHTTP(w, r)
			}
		})
	}
}
