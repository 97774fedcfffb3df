package httpapi_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/hikeshi/hikeshi/services/hub"
)

// TestAPIListPages: ?limit=N answers the newest N incidents, and the
// next_before cursor (also in a Link header) pages through the rest.
func TestAPIListPages(t *testing.T) {
	t.Parallel()
	h, c := startHub(t, hub.Config{})
	var declared []string // oldest first
	for i := range 7 {
		declared = append(declared, c.declare(declareBody(fmt.Sprint("incident ", i))).ID)
	}
	newest := slices.Clone(declared)
	slices.Reverse(newest)
	type page struct {
		Incidents  []Incident `json:"incidents"`
		NextBefore string     `json:"next_before"`
	}
	get := func(q string) (page, http.Header) {
		var p page
		r := c.get("/api/v1/incidents"+q).must(t, http.StatusOK, &p)
		return p, r.Header
	}
	ids := func(p page) []string {
		var out []string
		for _, i := range p.Incidents {
			out = append(out, i.ID)
		}
		return out
	}
	eventually(t, "all listed", func() error {
		if p, _ := get(""); len(p.Incidents) != 7 {
			return fmt.Errorf("%d listed", len(p.Incidents))
		}
		return nil
	})

	var got []string
	q := "?limit=3"
	for pages := 0; q != ""; pages++ {
		if pages > 3 {
			t.Fatalf("more than 3 pages: %v", got)
		}
		p, hdr := get(q)
		if len(p.Incidents) > 3 {
			t.Fatalf("page %d has %d incidents, want at most 3", pages, len(p.Incidents))
		}
		got = append(got, ids(p)...)
		q = ""
		if p.NextBefore != "" {
			q = "?limit=3&before=" + p.NextBefore
			if link := hdr.Get("Link"); !strings.Contains(link, "before="+p.NextBefore) || !strings.Contains(link, `rel="next"`) {
				t.Errorf("Link %q does not point at the next page", link)
			}
		}
	}
	if !slices.Equal(got, newest) {
		t.Errorf("pages gave\n %v\nwant newest first\n %v", got, newest)
	}

	// The cursor may be a case number; filters combine with it.
	first, _ := get("?limit=2&status=open")
	if !slices.Equal(ids(first), newest[:2]) {
		t.Errorf("?limit=2&status=open = %v, want %v", ids(first), newest[:2])
	}
	byCase, _ := get("?limit=2&before=" + first.Incidents[1].CaseNumber)
	if !slices.Equal(ids(byCase), newest[2:4]) {
		t.Errorf("before a case number = %v, want %v", ids(byCase), newest[2:4])
	}
	e := c.get("/api/v1/incidents?before=INC-999").mustError(t, http.StatusBadRequest, "invalid_query")
	if e.Error.Field != "before" {
		t.Errorf("unknown cursor: %+v", e)
	}
	quiesce(t, h)
}
