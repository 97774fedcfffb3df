package console

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/incident"
	"github.com/hikeshi/hikeshi/services/readmodel"
)

// pageSize is how many incidents the list shows at a time.
const pageSize = 50

type incidentsPage struct {
	Filter readmodel.Search
	Rows   []view
	// Counts per status of the incidents the filter selects (whatever its
	// status); Open sums the open statuses.
	Counts map[string]int
	Open   int
	All    int
	// Next and First are the links to the next and the first page; Next
	// is empty on the last page.
	Next, First string
	// Tabs link the filter with another status.
	Tabs []tab
	// Problem explains a filter that could not be read.
	Problem string
	// CanConfidential: the caller may read confidential incidents, and
	// filter by it.
	CanConfidential bool
}

type tab struct {
	Label   string
	Count   int
	URL     string
	Current bool
}

func (incidentsPage) title() string { return "Incidents" }

// incidents is the list: filtered, searched, most recent activity first,
// a page at a time with the keyset cursor ?before= (the last row's
// version).
func (c *Console) incidents(w http.ResponseWriter, r *http.Request, who Caller) {
	q := r.URL.Query()
	f := readmodel.Search{Status: q.Get("status"), Severity: q.Get("severity"), Service: strings.TrimSpace(q.Get("service")),
		Drill: q.Get("drill"), Confidential: q.Get("confidential"), Text: q.Get("q"), Limit: pageSize}
	if _, present := q["status"]; !present {
		f.Status = "open"
	}
	// Only those who may read confidential incidents filter by it: to the
	// others, the filter would tell which incidents they do not see.
	p := incidentsPage{Filter: f, CanConfidential: who.Can(Read, &incident.State{Confidential: true})}
	if !p.CanConfidential {
		f.Confidential, p.Filter.Confidential = "", ""
	}
	if v := q.Get("before"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			p.Problem = "The page link is broken (before must be a number); showing the first page."
		}
		p.Filter.Before, f.Before = n, n
	}
	rows, err := c.d.Timeline.SearchIncidents(r.Context(), f)
	if err == nil {
		p.Counts, err = c.countReadable(r.Context(), f, who, p.CanConfidential)
	}
	if err != nil {
		c.d.Logger.Error("console: listing incidents failed", "err", err)
		c.fail(w, r, who, http.StatusInternalServerError, "The incidents could not be read from the timeline store; try again, and check the hub's log if it persists.")
		return
	}
	for _, raw := range rows {
		var st incident.State
		if json.Unmarshal(raw, &st) != nil || !who.Can(Read, &st) {
			continue // need-to-know: an incident the caller may not read is not listed
		}
		p.Rows = append(p.Rows, newView(st))
	}
	if len(rows) == pageSize {
		var last struct{ Version uint64 }
		_ = json.Unmarshal(rows[len(rows)-1], &last)
		p.Next = listURL(f, f.Status, strconv.FormatUint(last.Version, 10))
	}
	if f.Before != 0 {
		p.First = listURL(f, f.Status, "")
	}
	p.tabs(f)
	c.render(w, r, who, http.StatusOK, "incidents", p)
}

// countReadable counts by status the incidents f selects that who may
// read: a count must not tell those outside a confidential incident that
// it exists, nor, with a search, what its title or notes say. allConfidential:
// who may read every confidential incident.
func (c *Console) countReadable(ctx context.Context, f readmodel.Search, who Caller, allConfidential bool) (map[string]int, error) {
	if allConfidential {
		return c.d.Timeline.CountByStatus(ctx, f)
	}
	public := f
	public.Confidential = "no"
	counts, err := c.d.Timeline.CountByStatus(ctx, public)
	if err != nil {
		return nil, err
	}
	// The confidential incidents the caller is a member of: few, read one
	// by one.
	confidential := f
	confidential.Confidential, confidential.Status, confidential.Before, confidential.Limit = "yes", "", 0, 0
	rows, err := c.d.Timeline.SearchIncidents(ctx, confidential)
	if err != nil {
		return nil, err
	}
	for _, raw := range rows {
		var st incident.State
		if json.Unmarshal(raw, &st) == nil && who.Can(Read, &st) {
			counts[string(st.Status)]++
		}
	}
	return counts, nil
}

// tabs fills the counts and one link per status.
func (p *incidentsPage) tabs(f readmodel.Search) {
	for st, n := range p.Counts {
		p.All += n
		if st != string(events.Closed) {
			p.Open += n
		}
	}
	add := func(label, status string, n int) {
		p.Tabs = append(p.Tabs, tab{Label: label, Count: n, URL: listURL(f, status, ""), Current: f.Status == status})
	}
	add("Open", "open", p.Open)
	for _, st := range events.Statuses {
		add(strings.ToUpper(string(st[:1]))+string(st[1:]), string(st), p.Counts[string(st)])
	}
	add("All", "", p.All)
}

// listURL is the list with f's filters, another status and a cursor.
func listURL(f readmodel.Search, status, before string) string {
	v := url.Values{}
	v.Set("status", status)
	for k, s := range map[string]string{"severity": f.Severity, "service": f.Service, "drill": f.Drill,
		"confidential": f.Confidential, "q": f.Text, "before": before} {
		if s != "" {
			v.Set(k, s)
		}
	}
	return "/incidents?" + v.Encode()
}
