package projector

// Every signal's decision is kept where the projector keeps its state
// (signals.db), appended in the batch's transaction with its checkpoint:
// the log holds exactly the signals handled, once each, after a crash or
// a rebuild from the stream too. GET /api/v1/signals and `hikeshi
// signals` list it, so a dropped, none-routed or flagged signal is as
// visible as one that opened an incident.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/access"
	"github.com/hikeshi/hikeshi/services/httpjson"
	"github.com/hikeshi/hikeshi/services/projection"
	"github.com/hikeshi/hikeshi/services/readmodel"
	"github.com/hikeshi/hikeshi/services/signals/rules"
)

// DecisionsConfig bounds the decisions log (signals.decisions).
type DecisionsConfig struct {
	// Keep is how many of the latest signals keep their decision
	// (default 100,000).
	Keep int `yaml:"keep"`
	// MaxAge drops decisions of signals stored longer ago (default 30
	// days).
	MaxAge time.Duration `yaml:"max_age"`
}

func (c *DecisionsConfig) defaults() {
	if c.Keep <= 0 {
		c.Keep = 100_000
	}
	if c.MaxAge <= 0 {
		c.MaxAge = 30 * 24 * time.Hour
	}
}

// RouteDrop is the route of a dropped signal in the decisions log.
const RouteDrop = "drop"

// SignalDecision is one signal and what became of it, as GET
// /api/v1/signals lists it.
type SignalDecision struct {
	Seq         uint64    `json:"seq"`  // on the SIGNALS stream
	Time        time.Time `json:"time"` // when the hub stored it
	Source      string    `json:"source"`
	Kind        string    `json:"kind"`
	Fingerprint string    `json:"fingerprint"`
	Status      string    `json:"status"`
	Title       string    `json:"title"`
	Severity    string    `json:"severity"`
	GroupKey    string    `json:"group_key"`
	// Rules matched, in order; Rule decided (the default when none did,
	// or when the decision was flagged).
	Rules []string `json:"rules,omitempty"`
	Rule  string   `json:"rule"`
	// Route is incident, ticket, triage, none or drop.
	Route    string `json:"route"`
	Priority string `json:"priority,omitempty"`
	// Where it went: the incident (id, and case number when listed), the
	// ticket (owner/repo#N or a JIRA key).
	Incident   string `json:"incident,omitempty"`
	CaseNumber string `json:"case_number,omitempty"`
	Ticket     string `json:"ticket,omitempty"`
	// Note says why nothing was done: a repeat, a rate limit.
	Note    string `json:"note,omitempty"`
	Flagged string `json:"flagged,omitempty"`
}

// tally is the projector's counters before a signal is handled, to tell
// afterwards what handling it counted.
type tally struct{ repeated, limited int64 }

func (p *Runner) tally() tally { return tally{p.repeated.Load(), p.limited.Load()} }

// record logs the decision d carried out for sig, once handle returned
// err: read back from the states it left, where the signal went. A
// signal that will be handled again (any other error) is not logged now.
func (p *Runner) record(ctx context.Context, e events.Stored, sig *events.Signal, d *rules.Decision, before tally, err error) {
	failed := err != nil && (errors.Is(err, events.ErrMalformed) || errors.Is(err, projection.ErrPermanent))
	if err != nil && !failed {
		return
	}
	r := SignalDecision{Seq: e.Seq, Time: e.Time.UTC(), Source: sig.Source, Kind: sig.Kind, Fingerprint: sig.Fingerprint,
		Status: sig.Status, Title: sig.Title, Severity: sig.Severity, GroupKey: d.GroupKey, Rules: d.Rules,
		Rule: p.rules.DefaultName(), Route: d.Route, Priority: d.Priority, Flagged: d.Flagged}
	if d.Drop {
		r.Route = RouteDrop
	}
	if n := len(d.Rules); n > 0 && d.Flagged == "" && (d.Drop || p.rules.RoutedBy(d.Rules[n-1])) {
		r.Rule = d.Rules[n-1]
	}
	switch now := p.tally(); {
	case now.repeated > before.repeated:
		r.Note = "a repeat of a signal already handled: counted nothing"
	case now.limited > before.limited:
		r.Note = "over its rate limit: counted, not notified"
	}
	if failed {
		d.Flag("not carried out, dead-lettered: " + err.Error())
		r.Flagged = d.Flagged
	} else if where := p.outcome(ctx, sig, d); where != nil {
		r.Incident, r.Ticket = where.Incident, where.Ticket
	}
	p.st.logDecision(&r)
}

// outcome reads where the signal went from the states handling left.
func (p *Runner) outcome(ctx context.Context, sig *events.Signal, d *rules.Decision) *SignalDecision {
	var out SignalDecision
	switch {
	case d.Drop:
	case d.Route == rules.RouteIncident:
		var g groupState
		if p.st.get(ctx, "group."+natsjs.EffectKey(d.GroupKey), &g) == nil {
			out.Incident = g.Incident
		}
	case d.Route == rules.RouteTicket && p.tickets != nil:
		var fp fpState
		if p.st.get(ctx, "fp."+natsjs.EffectKey(sig.Source, sig.Fingerprint), &fp) == nil && fp.Ref() != "" {
			out.Ticket = p.tickets.Name(fp.Ref())
		}
	}
	return &out
}

// logDecision keeps r until the batch is flushed (or discarded).
func (s *states) logDecision(r *SignalDecision) {
	b, _ := json.Marshal(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log = append(s.log, readmodel.Decision{Seq: r.Seq, Time: r.Time, Source: r.Source, Fingerprint: r.Fingerprint,
		Route: r.Route, Rule: r.Rule, Flagged: r.Flagged, Data: b})
}

// errNotHere: this process does not run the signal projector now.
var errNotHere = errors.New("this process does not run the signal projector (another hub process holds its lease, or it is starting); ask the process that runs it")

// decisions lists the log, newest first.
func (s *states) decisions(ctx context.Context, f readmodel.DecisionFilter) ([]readmodel.Decision, error) {
	s.mu.Lock()
	db := s.db
	s.mu.Unlock()
	if db == nil {
		return nil, errNotHere
	}
	return db.Decisions(ctx, f)
}

// Limits of GET /api/v1/signals.
const (
	defaultListed = 50
	maxListed     = 1000
)

// ListSignals serves GET /api/v1/signals: the latest signals and their
// decisions, filtered by source, fingerprint, route, rule and flagged,
// paged back with before=SEQ. It is mounted behind the API's check of
// its caller (Deps.APIAuth).
func (p *Runner) ListSignals(w http.ResponseWriter, r *http.Request) {
	f, err := signalFilter(r.URL.Query())
	if err != nil {
		httpjson.WriteError(w, http.StatusBadRequest, "bad_query", err.Error())
		return
	}
	f.Since = p.now().Add(-p.cfg.Decisions.MaxAge)
	rows, err := p.st.decisions(r.Context(), f)
	if err != nil {
		p.env.Logger.Warn("signal decisions could not be listed", "err", err)
		w.Header().Set("Retry-After", "5")
		msg := "the decisions log could not be read; retry"
		if errors.Is(err, errNotHere) {
			msg = err.Error()
		}
		httpjson.WriteError(w, http.StatusServiceUnavailable, "unavailable", msg)
		return
	}
	out := struct {
		Signals []SignalDecision `json:"signals"`
		// Before pages back: pass it as before= for the next page.
		Before uint64 `json:"before,omitempty"`
	}{Signals: make([]SignalDecision, 0, len(rows))}
	cases := map[string]string{}
	for _, row := range rows {
		var d SignalDecision
		if err := json.Unmarshal(row.Data, &d); err != nil {
			continue // written by this code; never expected
		}
		if d.Incident != "" && !access.MayRead(r.Context(), p.env.Commands, d.Incident) {
			continue // need-to-know: a confidential incident's signals stay with its people
		}
		d.CaseNumber = p.caseNumber(r.Context(), d.Incident, cases)
		out.Signals = append(out.Signals, d)
	}
	if len(rows) == f.Limit {
		out.Before = rows[len(rows)-1].Seq
	}
	httpjson.WriteJSON(w, http.StatusOK, out)
}

// caseNumber names an incident by its case number, looked up once per
// answer.
func (p *Runner) caseNumber(ctx context.Context, id string, seen map[string]string) string {
	if id == "" {
		return ""
	}
	if c, ok := seen[id]; ok {
		return c
	}
	st, err := p.env.Commands.Get(ctx, id)
	if err == nil {
		seen[id] = st.CaseNumber
	}
	return st.CaseNumber
}

// signalFilter reads the query of GET /api/v1/signals; an unknown
// parameter is an error rather than a filter silently not applied.
func signalFilter(q url.Values) (readmodel.DecisionFilter, error) {
	f := readmodel.DecisionFilter{Limit: defaultListed}
	for k, vs := range q {
		v := vs[len(vs)-1]
		var err error
		switch k {
		case "source":
			f.Source = v
		case "fingerprint":
			f.Fingerprint = v
		case "route":
			switch v {
			case rules.RouteIncident, rules.RouteTicket, rules.RouteTriage, rules.RouteNone, RouteDrop:
				f.Route = v
			default:
				return f, fmt.Errorf("route %q must be incident, ticket, triage, none or drop", v)
			}
		case "rule":
			f.Rule = v
		case "flagged":
			var b bool
			if b, err = strconv.ParseBool(v); err != nil {
				return f, fmt.Errorf("flagged %q must be true or false", v)
			}
			f.Flagged = &b
		case "limit":
			if f.Limit, err = strconv.Atoi(v); err != nil || f.Limit < 1 || f.Limit > maxListed {
				return f, fmt.Errorf("limit %q must be a number from 1 to %d", v, maxListed)
			}
		case "before":
			if f.Before, err = strconv.ParseUint(v, 10, 64); err != nil {
				return f, fmt.Errorf("before %q must be a stream sequence (the before of the previous page)", v)
			}
		default:
			return f, fmt.Errorf("unknown parameter %q: filter by source, fingerprint, route, rule or flagged; page with limit and before", k)
		}
	}
	return f, nil
}
