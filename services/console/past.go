package console

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/hikeshi/hikeshi/services/history"
	"github.com/hikeshi/hikeshi/services/incident"
)

// showPast renders the incident page as it stood after its ?at=N-th
// event: the header folded from its first N events, the timeline up to
// them, no forms and no live updates. The time slider moves N.
func (c *Console) showPast(w http.ResponseWriter, r *http.Request, who Caller, now incident.State) {
	n, err := strconv.Atoi(r.URL.Query().Get("at"))
	if err != nil || n < 1 || n > now.Events {
		c.fail(w, r, who, http.StatusBadRequest, fmt.Sprintf("at: must be an event number from 1 to %d.", now.Events))
		return
	}
	then, err := c.d.History.At(r.Context(), now.ID, history.Point{Events: n})
	if errors.Is(err, incident.ErrNotFound) {
		c.fail(w, r, who, http.StatusNotFound, "No incident "+strconv.Quote(r.PathValue("id"))+".")
		return
	}
	if err != nil {
		c.d.Logger.Error("console: folding an incident's past failed", "incident", now.ID, "at", n, "err", err)
		c.fail(w, r, who, http.StatusServiceUnavailable, "The incident's past could not be read from the event bus; try again in a moment.")
		return
	}
	p := incidentPage{view: newView(then), Slider: true, Total: now.Events, At: n}
	if !c.fillTimeline(w, r, who, &p, then.Version+1) {
		return
	}
	c.render(w, r, who, http.StatusOK, "incident", p)
}
