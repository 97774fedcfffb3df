package github

import (
	"errors"
	"net/http"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/services/access"
	"github.com/hikeshi/hikeshi/services/httpjson"
	"github.com/hikeshi/hikeshi/services/incident"
	"github.com/hikeshi/hikeshi/services/projection"
)

// api serves the module's endpoints to API clients; the hub's APIAuth
// checks the caller before they run.
type api struct{ p *Projector }

var (
	writeJSON  = httpjson.WriteJSON
	writeError = httpjson.WriteError
)

// incidentID resolves an incident id or a case number (INC-42).
func (a *api) incidentID(r *http.Request) (string, error) {
	return a.p.env.Commands.Resolve(r.Context(), r.PathValue("id"))
}

// postmortem opens (or finds) the postmortem pull request now, whatever
// the incident's status: POST /api/v1/incidents/{id}/postmortem.
func (a *api) postmortem(w http.ResponseWriter, r *http.Request) {
	if err := access.Require(r.Context(), access.Responder); err != nil {
		writeError(w, http.StatusForbidden, "forbidden", err.Error())
		return
	}
	id, err := a.incidentID(r)
	if err == nil {
		err = a.allowed(r, id, access.Act)
	}
	if err == nil {
		var pr PR
		if pr, err = a.p.Postmortem(r.Context(), id); err == nil {
			writeJSON(w, http.StatusOK, pr)
			return
		}
	}
	switch {
	case errors.Is(err, incident.ErrNotFound):
		writeError(w, http.StatusNotFound, "not_found", "incident not found")
	case access.IsForbidden(err):
		writeError(w, http.StatusForbidden, "forbidden", err.Error())
	case errors.Is(err, ErrSkipped):
		writeError(w, http.StatusConflict, "confidential_skipped", err.Error())
	case errors.Is(err, natsjs.ErrUnavailable):
		writeError(w, http.StatusServiceUnavailable, "bus_unavailable", "the event bus is unavailable; retry later")
	case errors.Is(err, projection.ErrPermanent):
		writeError(w, http.StatusBadGateway, "github_refused", err.Error())
	default:
		a.p.env.Logger.Error("postmortem on demand failed", "incident", id, "err", err)
		writeError(w, http.StatusBadGateway, "github_unavailable", "GitHub did not complete the request; retry later")
	}
}

// followups lists what the CSIRT should chase: GET /api/v1/followups.
func (a *api) followups(w http.ResponseWriter, r *http.Request) {
	if a.p.env.Incidents == nil {
		writeError(w, http.StatusServiceUnavailable, "no_timeline", "the timeline store is not available on this hub")
		return
	}
	list, err := a.p.Followups(r.Context(), nowFunc())
	if err != nil {
		a.p.env.Logger.Error("followups failed", "err", err)
		writeError(w, http.StatusBadGateway, "followups_failed", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"followups": a.visible(r, list)})
}

// allowed checks the caller may take action on the incident: an incident
// it may not read is not found.
func (a *api) allowed(r *http.Request, id string, action access.Action) error {
	st, err := a.p.env.Commands.Get(r.Context(), id)
	if err != nil {
		return err
	}
	return access.Allowed(r.Context(), st, action)
}

// visible leaves out the follow-ups of confidential incidents the caller
// may not read (they are named by codename only; listed at all only when
// the hub shows codenames).
func (a *api) visible(r *http.Request, list []Followup) []Followup {
	if a.p.env.ShowCodenames {
		return list
	}
	out := make([]Followup, 0, len(list))
	for _, f := range list {
		if access.MayRead(r.Context(), a.p.env.Commands, f.ID) {
			out = append(out, f)
		}
	}
	return out
}
