package httpapi

import (
	"net/http"
	"strings"
	"time"

	"github.com/hikeshi/hikeshi/services/access"
	"github.com/hikeshi/hikeshi/services/incident"
	"github.com/hikeshi/hikeshi/services/readmodel"
)

// Facts with their own time: evidence and its chain of custody, and the
// milestones of the response. Reads answer from the incident's state, so a
// write is visible at once; need-to-know applies as on every incident route.

// factRoutes adds the routes of evidence and milestones.
func (s *Server) factRoutes() {
	s.route("GET /api/v1/incidents/{id}/evidence", access.Viewer, s.listEvidence)
	s.route("POST /api/v1/incidents/{id}/evidence", access.Responder, s.addEvidence)
	s.route("POST /api/v1/incidents/{id}/evidence/{evidence}/handover", access.Responder, s.handOverEvidence)
	s.route("GET /api/v1/incidents/{id}/milestones", access.Viewer, s.milestones)
	s.route("POST /api/v1/incidents/{id}/milestones", access.Responder, s.recordMilestone)
}

// instant parses an optional RFC 3339 time of a request body.
func instant(field, v string) (time.Time, error) {
	if strings.TrimSpace(v) == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(v))
	if err != nil {
		e := newErr(http.StatusBadRequest, "invalid_field", field+": must be an RFC 3339 time such as 2026-11-21T02:13:00Z, got "+quote(v))
		e.Field = field
		return time.Time{}, e
	}
	return t, nil
}

func quote(v string) string {
	if len(v) > 40 {
		v = v[:40] + "…"
	}
	return `"` + v + `"`
}

// readIncident resolves the path's incident and checks the caller may read it.
func (s *Server) readIncident(r *http.Request) (incident.State, error) {
	id, err := s.incidentID(r)
	if err != nil {
		return incident.State{}, err
	}
	return s.visible(r, id, access.Read)
}

func (s *Server) listEvidence(w http.ResponseWriter, r *http.Request) error {
	st, err := s.readIncident(r)
	if err != nil {
		return err
	}
	items := st.Evidence
	if items == nil {
		items = []incident.Evidence{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"incident_id": st.ID, "case_number": st.CaseNumber, "version": st.Version, "evidence": items})
	return nil
}

func (s *Server) addEvidence(w http.ResponseWriter, r *http.Request) error {
	return executeChecked(s, w, r, func(q struct {
		Name        string `json:"name"`
		SHA256      string `json:"sha256"`
		Location    string `json:"location"`
		Custodian   string `json:"custodian"`
		Description string `json:"description"`
	}) (incident.Command, error) {
		return incident.AddEvidence{Name: q.Name, SHA256: q.SHA256, Location: q.Location, Custodian: q.Custodian, Description: q.Description}, nil
	})
}

func (s *Server) handOverEvidence(w http.ResponseWriter, r *http.Request) error {
	return executeChecked(s, w, r, func(q struct {
		From   string `json:"from"`
		To     string `json:"to"`
		Reason string `json:"reason"`
		At     string `json:"at"`
	}) (incident.Command, error) {
		at, err := instant("at", q.At)
		return incident.HandOverEvidence{EvidenceID: r.PathValue("evidence"), From: q.From, To: q.To, Reason: q.Reason, At: at, Now: time.Now()}, err
	})
}

func (s *Server) milestones(w http.ResponseWriter, r *http.Request) error {
	st, err := s.readIncident(r)
	if err != nil {
		return err
	}
	history := st.Milestones.History
	if history == nil {
		history = []incident.Milestone{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"incident_id": st.ID, "case_number": st.CaseNumber, "version": st.Version,
		"milestones": st.Milestones.Effective(), "history": history})
	return nil
}

func (s *Server) recordMilestone(w http.ResponseWriter, r *http.Request) error {
	return executeChecked(s, w, r, func(q struct {
		Name       string `json:"name"`
		OccurredAt string `json:"occurred_at"`
		Reason     string `json:"reason"`
	}) (incident.Command, error) {
		at, err := instant("occurred_at", q.OccurredAt)
		return incident.RecordMilestone{Name: q.Name, OccurredAt: at, Reason: q.Reason, Now: time.Now()}, err
	})
}

// timelineOrder reads ?order=recorded (the default) or occurred.
func timelineOrder(r *http.Request) (readmodel.Order, error) {
	switch r.URL.Query().Get("order") {
	case "", "recorded":
		return readmodel.Recorded, nil
	case "occurred":
		return readmodel.Occurred, nil
	}
	return 0, &apiError{Status: http.StatusBadRequest, Code: "invalid_query", Field: "order", Message: "order: must be recorded (when each event was recorded, the default) or occurred (when each fact happened)"}
}
