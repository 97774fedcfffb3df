package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/hikeshi/hikeshi/services/access"
	"github.com/hikeshi/hikeshi/services/incident"
	"github.com/hikeshi/hikeshi/services/readmodel"
)

// DeclareRequest is the body of POST /api/v1/incidents.
type DeclareRequest struct {
	Title        string `json:"title"`
	Service      string `json:"service"`
	Severity     string `json:"severity"`
	Summary      string `json:"summary"`
	DeclaredBy   string `json:"declared_by"`
	Confidential bool   `json:"confidential"`
	Drill        bool   `json:"drill"`
}

func writeIncident(w http.ResponseWriter, status int, st incident.State) {
	w.Header().Set("ETag", strconv.Quote(strconv.FormatUint(st.Version, 10)))
	writeJSON(w, status, st)
}

func (s *Server) declare(w http.ResponseWriter, r *http.Request) error {
	var req DeclareRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	m, err := meta(r)
	if err != nil {
		return err
	}
	if req.DeclaredBy == "" {
		req.DeclaredBy = m.Actor
	}
	st, err := s.d.Commands.Declare(r.Context(), incident.Declare{
		Title: req.Title, Service: req.Service, Severity: req.Severity, Summary: req.Summary,
		DeclaredBy: req.DeclaredBy, Confidential: req.Confidential, Drill: req.Drill,
	}, m)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/incidents/"+st.ID)
	writeIncident(w, http.StatusCreated, st)
	return nil
}

// execute decodes body into req, builds the command and runs it.
func execute[T any](s *Server, w http.ResponseWriter, r *http.Request, build func(T) incident.Command) error {
	return executeChecked(s, w, r, func(q T) (incident.Command, error) { return build(q), nil })
}

// executeChecked is execute for a request whose fields are parsed (a
// time) before the command is built: a parse error is the answer.
func executeChecked[T any](s *Server, w http.ResponseWriter, r *http.Request, build func(T) (incident.Command, error)) error {
	id, err := s.incidentID(r)
	if err != nil {
		return err
	}
	// Before the body: a caller outside a confidential incident learns
	// nothing of it, not even that its body would have been wrong. The
	// cached state serves (no read of the bus on the append path); a
	// refusal is checked again on a fresh read before it is answered.
	if st, err := s.d.Commands.Known(r.Context(), id); err != nil {
		return err
	} else if access.Allowed(r.Context(), st, access.Act) != nil {
		if _, err := s.visible(r, id, access.Act); err != nil {
			return err
		}
	}
	var req T
	if err := decode(r, &req); err != nil {
		return err
	}
	m, err := meta(r)
	if err != nil {
		return err
	}
	c, err := build(req)
	if err != nil {
		return err
	}
	// And again on the state the command is decided on, which the append
	// is conditional on: what is stored was allowed.
	ctx := r.Context()
	m.Allow = func(st incident.State) error {
		if !st.Exists() {
			return nil // Decide answers: not found
		}
		return access.Allowed(ctx, st, access.Act)
	}
	st, err := s.d.Commands.Execute(ctx, id, c, m)
	if err != nil {
		return err
	}
	writeIncident(w, http.StatusOK, st)
	return nil
}

func (s *Server) severity(w http.ResponseWriter, r *http.Request) error {
	return execute(s, w, r, func(q struct {
		Severity string `json:"severity"`
		Reason   string `json:"reason"`
	}) incident.Command {
		return incident.ChangeSeverity{Severity: q.Severity, Reason: q.Reason}
	})
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) error {
	return execute(s, w, r, func(q struct {
		Status  string `json:"status"`
		Message string `json:"message"`
	}) incident.Command {
		return incident.UpdateStatus{Status: q.Status, Message: q.Message}
	})
}

func (s *Server) commander(w http.ResponseWriter, r *http.Request) error {
	return execute(s, w, r, func(q struct {
		User string `json:"user"`
	}) incident.Command {
		return incident.AssignCommander{User: q.User}
	})
}

func (s *Server) note(w http.ResponseWriter, r *http.Request) error {
	return executeChecked(s, w, r, func(q struct {
		Text       string `json:"text"`
		OccurredAt string `json:"occurred_at"`
	}) (incident.Command, error) {
		at, err := instant("occurred_at", q.OccurredAt)
		return incident.AddNote{Text: q.Text, OccurredAt: at, Now: time.Now()}, err
	})
}

func (s *Server) close(w http.ResponseWriter, r *http.Request) error {
	return execute(s, w, r, func(q struct {
		Resolution     string `json:"resolution"`
		LessonsLearned string `json:"lessons_learned"`
	}) incident.Command {
		return incident.Close{Resolution: q.Resolution, LessonsLearned: q.LessonsLearned}
	})
}

func (s *Server) get(w http.ResponseWriter, r *http.Request) error {
	id, err := s.incidentID(r)
	if err != nil {
		return err
	}
	st, err := s.visible(r, id, access.Read)
	if err != nil {
		return err
	}
	if p, ok, err := pointParam(r); err != nil || ok {
		if err != nil {
			return err
		}
		return s.writeAsOf(w, r, id, p)
	}
	writeIncident(w, http.StatusOK, st)
	return nil
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) error {
	status := r.URL.Query().Get("status")
	if status != "" && status != "open" && status != "closed" {
		return &apiError{Status: http.StatusBadRequest, Code: "invalid_query", Field: "status", Message: "status: must be open or closed"}
	}
	limit, err := intParam(r, "limit", 500)
	if err != nil {
		return err
	}
	before := r.URL.Query().Get("before")
	rows, err := s.d.Timeline.List(r.Context(), readmodel.ListFilter{Status: status, Limit: limit, Before: before})
	if errors.Is(err, readmodel.ErrNotFound) {
		return &apiError{Status: http.StatusBadRequest, Code: "invalid_query", Field: "before", Message: "before: no incident " + strconv.Quote(before) + " (pass the id of the last incident of the previous page)"}
	}
	if err != nil {
		return err
	}
	body := map[string]any{"incidents": s.listed(r.Context(), rows)}
	if next := nextBefore(rows, limit); next != "" {
		body["next_before"] = next
		q := r.URL.Query()
		q.Set("before", next)
		w.Header().Set("Link", "<"+r.URL.Path+"?"+q.Encode()+`>; rel="next"`)
	}
	writeJSON(w, http.StatusOK, body)
	return nil
}

// nextBefore is the cursor of the page after a full one: the id of its
// last incident.
func nextBefore(rows []json.RawMessage, limit int) string {
	if limit == 0 || len(rows) < limit {
		return ""
	}
	var last struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(rows[len(rows)-1], &last) != nil {
		return ""
	}
	return last.ID
}

func intParam(r *http.Request, name string, def int) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, &apiError{Status: http.StatusBadRequest, Code: "invalid_query", Field: name, Message: name + ": must be a non-negative integer"}
	}
	return n, nil
}

// maxWait bounds a long poll on the timeline.
const maxWait = 30 * time.Second

// timeline lists the incident's events. With ?after=SEQ&wait=5s it waits
// until an event newer than SEQ is in the store, so a client can follow
// an incident without polling.
func (s *Server) timeline(w http.ResponseWriter, r *http.Request) error {
	id, err := s.incidentID(r)
	if err != nil {
		return err
	}
	st, err := s.visible(r, id, access.Read)
	if err != nil {
		return err
	}
	order, err := timelineOrder(r)
	if err != nil {
		return err
	}
	after, err := intParam(r, "after", 0)
	if err != nil {
		return err
	}
	limit, err := intParam(r, "limit", 10_000)
	if err != nil {
		return err
	}
	until, err := untilParam(r)
	if err != nil {
		return err
	}
	if !until.IsZero() {
		return s.timelineUntil(w, r, id, uint64(after), limit, until)
	}
	var wait time.Duration
	if v := r.URL.Query().Get("wait"); v != "" {
		if wait, err = time.ParseDuration(v); err != nil || wait < 0 {
			return &apiError{Status: http.StatusBadRequest, Code: "invalid_query", Field: "wait", Message: "wait: must be a duration such as 5s"}
		}
		wait = min(wait, maxWait)
		if err := s.holdOpen(w, r, wait); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), wait)
	defer cancel()
	for {
		changed := s.d.Timeline.Changed(id)
		entries, err := s.d.Timeline.TimelineIn(r.Context(), order, id, uint64(after), limit)
		if err != nil {
			return err
		}
		if n := len(entries); n > 0 && maxSeq(entries) > st.Version {
			// Events landed while waiting: answer the version they made.
			if st, err = s.d.Commands.Get(r.Context(), id); err != nil {
				return err
			}
		}
		if len(entries) > 0 || wait == 0 {
			writeJSON(w, http.StatusOK, map[string]any{"incident_id": id, "case_number": st.CaseNumber, "version": st.Version, "events": entries})
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			wait = 0
		}
	}
}

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if s.d.Ready != nil {
		if err := s.d.Ready(ctx); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": err.Error()})
			return
		}
	}
	answer := map[string]any{"status": "ready"}
	if s.d.Standby != nil {
		// A part waiting for another process's lease is a standby: the API
		// serves meanwhile, so the process stays ready and only says so.
		if waiting := s.d.Standby(); len(waiting) > 0 {
			answer["standby"] = waiting
		}
	}
	writeJSON(w, http.StatusOK, answer)
}

// maxSeq is the last sequence among entries, whatever their order.
func maxSeq(entries []readmodel.Entry) uint64 {
	var m uint64
	for _, e := range entries {
		m = max(m, e.Seq)
	}
	return m
}
