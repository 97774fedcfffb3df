package console

import (
	"encoding/csv"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/incident"
	"github.com/hikeshi/hikeshi/services/readmodel"
)

// Insights: how long the response took to reach each milestone
// (acknowledged, identified, mitigated, resolved, closed), the median per
// week or month and per severity or service, drills left out, computed
// from the events in the timeline store. A milestone recorded on the
// incident wins over the one derived from its events, and times count
// from the recorded start of the impact (or its detection) when there is
// one, else from the declaration. Charts are drawn on the server (SVG, no
// script).

// milestone is one measured step.
type milestone struct {
	Key, Label string
	at         func(readmodel.Milestones) time.Time
}

// recordedOr is the recorded milestone name, else the derived time.
func recordedOr(name string, derived func(readmodel.Milestones) time.Time) func(readmodel.Milestones) time.Time {
	return func(m readmodel.Milestones) time.Time {
		if at, ok := m.Recorded[name]; ok {
			return at
		}
		return derived(m)
	}
}

var milestones = []milestone{
	// Keyed "commander" as before: the CSV's columns keep their names.
	{"commander", "Time to acknowledged", recordedOr(events.MilestoneAcknowledged, func(m readmodel.Milestones) time.Time { return m.Commander })},
	{"identified", "Time to identified", func(m readmodel.Milestones) time.Time { return m.Identified }},
	{"mitigated", "Time to mitigated", recordedOr(events.MilestoneMitigated, func(m readmodel.Milestones) time.Time { return m.Mitigated })},
	{"resolved", "Time to resolved", recordedOr(events.MilestoneResolved, func(m readmodel.Milestones) time.Time { return m.Resolved })},
	{"closed", "Time to closed", func(m readmodel.Milestones) time.Time { return m.Closed }},
}

// start is when the clock of an incident's response starts: the recorded
// start of its impact, else its recorded detection, else its declaration.
func start(m readmodel.Milestones) time.Time {
	for _, name := range []string{events.MilestoneImpactStarted, events.MilestoneDetected} {
		if at, ok := m.Recorded[name]; ok {
			return at
		}
	}
	return m.Declared
}

// periods are the time grains, with how far back each looks.
var periods = map[string]struct {
	label string
	back  time.Duration
	key   func(time.Time) string
}{
	"week": {"week", 26 * 7 * 24 * time.Hour, func(t time.Time) string {
		y, w := t.UTC().ISOWeek()
		return fmt.Sprintf("%d-W%02d", y, w)
	}},
	"month": {"month", 365 * 24 * time.Hour, func(t time.Time) string { return t.UTC().Format("2006-01") }},
}

// figure is the median time to one milestone over the incidents that
// reached it.
type figure struct {
	N   int
	P50 time.Duration
}

// bucket is the incidents of one period and group (a severity or a
// service), with a figure per milestone.
type bucket struct {
	Period, Severity, Service string
	Incidents                 int
	Figures                   []figure
	durations                 [][]time.Duration
}

// aggregate groups the incidents by period and by key (severity, service
// or both) and takes the median of each milestone.
func aggregate(ms []readmodel.Milestones, period func(time.Time) string, key func(readmodel.Milestones) (sev, svc string)) []bucket {
	index := map[[3]string]*bucket{}
	var out []*bucket
	for _, m := range ms {
		sev, svc := key(m)
		k := [3]string{period(m.Declared), sev, svc}
		b, ok := index[k]
		if !ok {
			b = &bucket{Period: k[0], Severity: sev, Service: svc, durations: make([][]time.Duration, len(milestones))}
			index[k] = b
			out = append(out, b)
		}
		b.Incidents++
		from := start(m)
		for i, ml := range milestones {
			if at := ml.at(m); !at.IsZero() && !at.Before(from) {
				b.durations[i] = append(b.durations[i], at.Sub(from))
			}
		}
	}
	res := make([]bucket, 0, len(out))
	for _, b := range out {
		for _, ds := range b.durations {
			b.Figures = append(b.Figures, median(ds))
		}
		res = append(res, *b)
	}
	slices.SortFunc(res, func(a, b bucket) int {
		if a.Period != b.Period {
			return compareStrings(a.Period, b.Period)
		}
		if a.Severity != b.Severity {
			return compareStrings(a.Severity, b.Severity)
		}
		return compareStrings(a.Service, b.Service)
	})
	return res
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func median(ds []time.Duration) figure {
	if len(ds) == 0 {
		return figure{}
	}
	slices.Sort(ds)
	m := ds[len(ds)/2]
	if len(ds)%2 == 0 {
		m = (ds[len(ds)/2-1] + ds[len(ds)/2]) / 2
	}
	return figure{N: len(ds), P50: m}
}

// readable keeps the incidents the caller may read.
func readable(ms []readmodel.Milestones, who Caller) []readmodel.Milestones {
	out := ms[:0:0]
	for _, m := range ms {
		st := incident.State{Confidential: m.Confidential, DeclaredBy: m.DeclaredBy, Commander: m.CommanderNow}
		if who.Can(Read, &st) {
			out = append(out, m)
		}
	}
	return out
}

type insightsPage struct {
	Metric, By, Per string
	Milestones      []milestone
	Charts          []chart
	Periods         []string
	Problem         string
	CSV             string
}

func (insightsPage) title() string { return "Insights" }

// chart is one group's bars, one per period, drawn to a shared scale.
type chart struct {
	Group string
	Bars  []bar
}

type bar struct {
	X, Y, W, H float64
	Label      string
}

// Chart geometry, in SVG user units.
const (
	chartW, chartH = 600.0, 120.0
)

func (c *Console) insights(w http.ResponseWriter, r *http.Request, who Caller) {
	q := r.URL.Query()
	p := insightsPage{Metric: q.Get("metric"), By: q.Get("by"), Per: q.Get("per"), Milestones: milestones}
	mi := slices.IndexFunc(milestones, func(m milestone) bool { return m.Key == p.Metric })
	if mi < 0 {
		p.Metric = "resolved"
		mi = slices.IndexFunc(milestones, func(m milestone) bool { return m.Key == p.Metric })
	}
	if p.By != "service" {
		p.By = "severity"
	}
	per, ok := periods[p.Per]
	if !ok {
		p.Per, per = "week", periods["week"]
	}
	p.CSV = "/insights.csv?per=" + p.Per
	ms, err := c.d.Timeline.Milestones(r.Context(), time.Now().Add(-per.back))
	if err != nil {
		c.d.Logger.Error("console: reading milestones failed", "err", err)
		c.fail(w, r, who, http.StatusInternalServerError, "The figures could not be computed from the timeline store; try again, and check the hub's log if it persists.")
		return
	}
	buckets := aggregate(readable(ms, who), per.key, func(m readmodel.Milestones) (string, string) {
		if p.By == "service" {
			return "", m.Service
		}
		return m.Severity, ""
	})
	p.Charts, p.Periods = draw(buckets, mi, p.By)
	c.render(w, r, who, http.StatusOK, "insights", p)
}

// draw makes one chart per group, a bar per period, all to the scale of
// the longest median.
func draw(buckets []bucket, mi int, by string) ([]chart, []string) {
	var periodsSeen, groups []string
	var longest time.Duration
	for _, b := range buckets {
		if !slices.Contains(periodsSeen, b.Period) {
			periodsSeen = append(periodsSeen, b.Period)
		}
		g := b.Severity
		if by == "service" {
			g = b.Service
		}
		if !slices.Contains(groups, g) {
			groups = append(groups, g)
		}
		longest = max(longest, b.Figures[mi].P50)
	}
	slices.Sort(periodsSeen)
	slices.SortFunc(groups, func(a, b string) int {
		if ra, rb := events.Severity(a).Rank(), events.Severity(b).Rank(); ra != rb {
			return ra - rb
		}
		return compareStrings(a, b)
	})
	width := chartW / float64(max(len(periodsSeen), 1))
	var charts []chart
	for _, g := range groups {
		ch := chart{Group: g}
		for i, period := range periodsSeen {
			j := slices.IndexFunc(buckets, func(b bucket) bool {
				return b.Period == period && (b.Severity == g && by != "service" || b.Service == g && by == "service")
			})
			if j < 0 || buckets[j].Figures[mi].N == 0 {
				continue
			}
			f := buckets[j].Figures[mi]
			h := chartH * float64(f.P50) / float64(max(longest, 1))
			h = max(h, 2) // a reached milestone shows, however quick
			ch.Bars = append(ch.Bars, bar{X: float64(i)*width + width*0.1, Y: chartH - h, W: width * 0.8, H: h,
				Label: fmt.Sprintf("%s: median %s over %d incidents", period, roundDuration(f.P50), f.N)})
		}
		charts = append(charts, ch)
	}
	return charts, periodsSeen
}

func roundDuration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return d.Round(time.Second).String()
	case d < time.Hour:
		return d.Round(time.Minute).String()
	}
	return age(d)
}

// insightsCSV downloads the figures by period, severity and service.
func (c *Console) insightsCSV(w http.ResponseWriter, r *http.Request, who Caller) {
	perKey := r.URL.Query().Get("per")
	per, ok := periods[perKey]
	if !ok {
		perKey, per = "week", periods["week"]
	}
	ms, err := c.d.Timeline.Milestones(r.Context(), time.Now().Add(-per.back))
	if err != nil {
		c.d.Logger.Error("console: reading milestones failed", "err", err)
		c.fail(w, r, who, http.StatusInternalServerError, "The figures could not be computed from the timeline store; try again.")
		return
	}
	buckets := aggregate(readable(ms, who), per.key, func(m readmodel.Milestones) (string, string) { return m.Severity, m.Service })
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="hikeshi-insights-by-`+perKey+`.csv"`)
	cw := csv.NewWriter(w)
	head := []string{perKey, "severity", "service", "incidents"}
	for _, m := range milestones {
		head = append(head, m.Key+"_incidents", m.Key+"_median_seconds")
	}
	_ = cw.Write(head)
	for _, b := range buckets {
		row := []string{b.Period, b.Severity, b.Service, strconv.Itoa(b.Incidents)}
		for _, f := range b.Figures {
			secs := ""
			if f.N > 0 {
				secs = strconv.FormatFloat(f.P50.Seconds(), 'f', 3, 64)
			}
			row = append(row, strconv.Itoa(f.N), secs)
		}
		_ = cw.Write(row)
	}
	cw.Flush()
}
