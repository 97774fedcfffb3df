package console

import (
	"cmp"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/incident"
	"github.com/hikeshi/hikeshi/services/readmodel"
)

// ageBuckets are the columns of the dashboard's open incidents: how long
// they have been open.
var ageBuckets = []ageBucket{
	{"under 1 hour", time.Hour}, {"1 hour to 1 day", 24 * time.Hour}, {"1 to 7 days", 7 * 24 * time.Hour}, {"over 7 days", 1 << 62},
}

type ageBucket struct {
	Label string
	Below time.Duration
}

// oldestShown is how many of the longest-open incidents the dashboard lists.
const oldestShown = 10

type dashboardPage struct {
	Buckets []string
	Rows    []severityRow
	Total   int
	Oldest  []view
	// Triage is the open escalations; TriageOn: the queue is shown (the
	// hub has a bus); TriageProblem: it could not be read.
	Triage        []triageItem
	TriageOn      bool
	TriageProblem string
	CanDecide     bool
	// Followups are the incidents overdue for follow-up (open too long,
	// postmortem missing or unmerged); FollowupsOn: the GitHub module runs
	// here.
	Followups        []followup
	FollowupsOn      bool
	FollowupsProblem string
	// Flagged are the latest flagged signal decisions (a rule that could
	// not be evaluated, a route that could not be carried out);
	// FlaggedOn: the signals module runs here.
	Flagged        []signalRow
	FlaggedOn      bool
	FlaggedProblem string
	// Tickets are the open alert tickets; NoisyRules and
	// NoisyFingerprints the last week's noisiest (shown with FlaggedOn).
	// Capped: counted over the latest signals only.
	Tickets           []alertTicket
	TicketsCapped     bool
	TicketsProblem    string
	NoisyRules        []noisy
	NoisyFingerprints []noisy
	NoiseCapped       bool
	NoiseProblem      string
}

// flaggedShown is how many flagged decisions the dashboard lists.
const flaggedShown = 10

// flagged asks the signals module for its latest flagged decisions.
func (c *Console) flagged(r *http.Request, p *dashboardPage) {
	if p.FlaggedOn = c.d.Signals != nil; !p.FlaggedOn {
		return
	}
	rows, problem := c.listSignals(r, url.Values{"flagged": {"true"}, "limit": {strconv.Itoa(flaggedShown)}})
	p.Flagged, p.FlaggedProblem = rows.Signals, problem
}

// followup is one overdue follow-up, as the GitHub module answers.
type followup struct {
	CaseNumber  string `json:"case_number"`
	Title       string `json:"title"`
	Severity    string `json:"severity"`
	Days        int    `json:"days"`
	Reason      string `json:"reason"`
	Postmortem  string `json:"postmortem"`
	Explanation string `json:"explanation"`
}

// followups asks the GitHub module for the overdue follow-ups.
func (c *Console) followups(r *http.Request, p *dashboardPage) {
	if p.FollowupsOn = c.d.Followups != nil; !p.FollowupsOn {
		return
	}
	code, body := ask(r, c.d.Followups, "/api/v1/followups", nil)
	var answer struct {
		Followups []followup `json:"followups"`
		Error     struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &answer); err != nil || code != http.StatusOK {
		p.FollowupsProblem = "The follow-ups could not be listed: " + cmp.Or(answer.Error.Message, "the GitHub module's answer could not be read")
		return
	}
	p.Followups = answer.Followups
}

type severityRow struct {
	Severity events.Severity
	Counts   []int
	Total    int
	URL      string
}

func (dashboardPage) title() string { return "Dashboard" }

// dashboard shows the open incidents (drills left out) by severity and
// age, the longest open, the triage queue, and, from the modules running
// here, the overdue follow-ups, the open alert tickets, the noisiest
// signal rules and fingerprints and the flagged signal decisions.
func (c *Console) dashboard(w http.ResponseWriter, r *http.Request, who Caller) {
	c.showDashboard(w, r, who, http.StatusOK, nil)
}

// showDashboard renders the dashboard with the dismiss forms given (by
// item key) shown as sent.
func (c *Console) showDashboard(w http.ResponseWriter, r *http.Request, who Caller, status int, forms map[string]form) {
	rows, err := c.d.Timeline.SearchIncidents(r.Context(), readmodel.Search{Status: "open", Drill: "no"})
	if err != nil {
		c.d.Logger.Error("console: listing incidents failed", "err", err)
		c.fail(w, r, who, http.StatusInternalServerError, "The incidents could not be read from the timeline store; try again, and check the hub's log if it persists.")
		return
	}
	p := dashboardPage{TriageOn: c.d.JS != nil, CanDecide: who.Can(Declare, nil)}
	if p.Triage, err = c.openTriage(r.Context()); err != nil {
		c.d.Logger.Error("console: reading the triage queue failed", "err", err)
		p.TriageProblem = "The triage queue could not be read from the event bus; reload in a moment."
	}
	c.followups(r, &p)
	c.flagged(r, &p)
	if p.FlaggedOn {
		c.openTickets(r, &p)
		c.noisiest(r, &p)
	}
	for k, f := range forms {
		i := slices.IndexFunc(p.Triage, func(it triageItem) bool { return it.Key == k })
		if i < 0 {
			// Decided meanwhile: its form is gone, the answer is not.
			p.TriageProblem = f.E["reason"]
			continue
		}
		p.Triage[i].Form, p.Triage[i].FormKey = f, f.V["key"]
	}
	for _, b := range ageBuckets {
		p.Buckets = append(p.Buckets, b.Label)
	}
	bySeverity := map[events.Severity]*severityRow{}
	for _, s := range events.Severities {
		row := &severityRow{Severity: s, Counts: make([]int, len(ageBuckets)),
			URL: listURL(readmodel.Search{Severity: string(s), Drill: "no"}, "open", "")}
		bySeverity[s] = row
	}
	var open []view
	now := time.Now()
	for _, raw := range rows {
		var st incident.State
		if json.Unmarshal(raw, &st) != nil || !who.Can(Read, &st) {
			continue
		}
		row, ok := bySeverity[st.Severity]
		if !ok {
			continue
		}
		age := now.Sub(st.DeclaredAt)
		i := slices.IndexFunc(ageBuckets, func(b ageBucket) bool { return age < b.Below })
		row.Counts[i]++
		row.Total++
		p.Total++
		open = append(open, newView(st))
	}
	for _, s := range events.Severities {
		p.Rows = append(p.Rows, *bySeverity[s])
	}
	slices.SortFunc(open, func(a, b view) int { return a.DeclaredAt.Compare(b.DeclaredAt) })
	p.Oldest = open[:min(len(open), oldestShown)]
	c.render(w, r, who, status, "dashboard", p)
}
