package console

import (
	"cmp"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/hikeshi/hikeshi/events"
)

// The dashboard's view of alerting: the alert tickets still open, and the
// noisiest rules and fingerprints of the last week. Both are read from the
// signals module's decisions log through its GET /api/v1/signals, asked as
// the caller, so the signals of a confidential incident the caller may not
// read are neither listed nor counted.

const (
	// noiseWindow is how far back the noisiest rules and fingerprints are
	// counted.
	noiseWindow   = 7 * 24 * time.Hour
	noisiestShown = 10
	// pageRead is the page size asked for; pagesRead bounds the pages one
	// dashboard reads, past which the counts say they cover the latest
	// signals only.
	pageRead  = 1000
	pagesRead = 10
)

// alertTicket is a fingerprint's ticket that is still open: the last
// signal routed to it fired and none resolved it since.
type alertTicket struct {
	Ticket      string
	Source      string
	Fingerprint string
	Title       string
	Severity    string
	Last        time.Time
}

// noisy is a rule or fingerprint and how many signals it had.
type noisy struct {
	Name  string
	Count int
	URL   string
}

// decisionsSince reads the decisions q selects, newest first, back to
// since (zero: as far back as the log keeps), at most pagesRead pages;
// capped says it stopped there.
func (c *Console) decisionsSince(r *http.Request, q url.Values, since time.Time) (rows []signalRow, capped bool, problem string) {
	q.Set("limit", strconv.Itoa(pageRead))
	for range pagesRead {
		a, problem := c.listSignals(r, q)
		if problem != "" {
			return nil, false, problem
		}
		for _, s := range a.Signals {
			if s.Time.Before(since) {
				return rows, false, ""
			}
			rows = append(rows, s)
		}
		if a.Before == 0 {
			return rows, false, ""
		}
		q.Set("before", strconv.FormatUint(a.Before, 10))
	}
	return rows, true, ""
}

// openTickets lists the alert tickets whose fingerprint's last ticket
// decision is a firing signal. A ticket whose signals all left the log
// (signals.decisions.max_age) is not known here.
func (c *Console) openTickets(r *http.Request, p *dashboardPage) {
	rows, capped, problem := c.decisionsSince(r, url.Values{"route": {"ticket"}}, time.Time{})
	p.TicketsCapped, p.TicketsProblem = capped, problem
	seen := map[[2]string]bool{}
	for _, s := range rows { // newest first: the first of a fingerprint is its state
		k := [2]string{s.Source, s.Fingerprint}
		if s.Ticket == "" || seen[k] {
			continue
		}
		seen[k] = true
		if s.Status != events.SignalResolved {
			p.Tickets = append(p.Tickets, alertTicket{Ticket: s.Ticket, Source: s.Source, Fingerprint: s.Fingerprint,
				Title: s.Title, Severity: s.Severity, Last: s.Time})
		}
	}
}

// noisiest counts the last week's signals by the rule that decided them
// and by fingerprint.
func (c *Console) noisiest(r *http.Request, p *dashboardPage) {
	rows, capped, problem := c.decisionsSince(r, url.Values{}, time.Now().Add(-noiseWindow))
	p.NoiseCapped, p.NoiseProblem = capped, problem
	rules, fingerprints := map[noisy]int{}, map[noisy]int{}
	for _, s := range rows {
		rules[noisy{Name: s.Rule, URL: "/signals?" + url.Values{"rule": {s.Rule}}.Encode()}]++
		fingerprints[noisy{Name: s.Source + " " + s.Fingerprint,
			URL: "/signals?" + url.Values{"source": {s.Source}, "fingerprint": {s.Fingerprint}}.Encode()}]++
	}
	p.NoisyRules, p.NoisyFingerprints = top(rules), top(fingerprints)
}

// top is the noisiestShown with the highest counts, ties by name.
func top(counts map[noisy]int) []noisy {
	out := make([]noisy, 0, len(counts))
	for n, count := range counts {
		n.Count = count
		out = append(out, n)
	}
	slices.SortFunc(out, func(a, b noisy) int { return cmp.Or(b.Count-a.Count, cmp.Compare(a.Name, b.Name)) })
	return out[:min(len(out), noisiestShown)]
}
