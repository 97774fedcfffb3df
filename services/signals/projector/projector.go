package projector

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/command"
	"github.com/hikeshi/hikeshi/services/incident"
	"github.com/hikeshi/hikeshi/services/projection"
	"github.com/hikeshi/hikeshi/services/sanitize"
	"github.com/hikeshi/hikeshi/services/signals/rules"
	"github.com/hikeshi/hikeshi/services/signals/tickets"
)

const actor = "signals"

// related is the open incident of the group, if any.
func (p *Runner) related(ctx context.Context, groupKey string) (incident.State, bool) {
	var g groupState
	if err := p.st.get(ctx, "group."+natsjs.EffectKey(groupKey), &g); err != nil || g.Incident == "" {
		return incident.State{}, false
	}
	st, err := p.env.Commands.Get(ctx, g.Incident)
	return st, err == nil && st.Open()
}

// errNoTracker: a ticket route without a tracker to carry it out.
var errNoTracker = fmt.Errorf("%w: neither signals.github nor signals.jira is configured", projection.ErrPermanent)

// handle evaluates and carries out one stored signal.
func (p *Runner) handle(ctx context.Context, e events.Stored, sig *events.Signal) error {
	p.handled.Add(1)
	d := p.rules.Evaluate(sig)
	before := p.tally()
	err := p.carryOut(ctx, e, sig, &d)
	// d is now the decision as carried out: a rule that failed, or a route
	// that could not be carried out and gave way to the default, is flagged.
	if d.Flagged != "" {
		p.flagged.Add(1)
		p.env.Logger.Warn("signal flagged", "fingerprint", sig.Fingerprint, "route", d.Route, "why", d.Flagged)
	}
	p.record(ctx, e, sig, &d, before, err)
	return err
}

// occurrence is what a signal is to its fingerprint's state.
type occurrence struct {
	prev   string // the fingerprint's status before the signal
	fresh  bool   // not counted before
	repeat bool   // the same firing episode again (see repeated)
	notify bool   // inside the fingerprint's rate limit
}

// change is the signal's change of its group's firing set, if any.
func (o occurrence) change(sig *events.Signal) string {
	switch {
	case !o.fresh || o.repeat || o.prev == sig.Status:
		return ""
	case o.prev == "":
		return events.ChangeJoined
	case sig.Status == events.SignalResolved:
		return events.ChangeResolved
	}
	return events.ChangeFiringAgain
}

// carryOut updates the fingerprint's state and carries out d.
func (p *Runner) carryOut(ctx context.Context, e events.Stored, sig *events.Signal, d *rules.Decision) error {
	if d.Drop {
		p.dropped.Add(1)
		return nil
	}
	// A fingerprint's state is kept only where something reads it: an
	// alert ticket, a triage item, a rate window, and the incident route,
	// which reads its status to count the group's firing fingerprints. A
	// signal routed nowhere costs no read and no write.
	if d.Route == rules.RouteNone && d.RateLimit == nil {
		return nil
	}
	fpKey := "fp." + natsjs.EffectKey(sig.Source, sig.Fingerprint)
	var fp fpState
	if err := p.st.get(ctx, fpKey, &fp); err != nil {
		return err
	}
	if repeated(&fp, sig) {
		p.repeated.Add(1)
		// An alert that keeps firing is sent again (repeat_interval, an
		// updated finding): it counts nothing, but its group may need a
		// new incident (the last one was closed) or a worse severity.
		if d.Route != rules.RouteIncident || !stillFiring(&fp, sig) {
			return nil
		}
		changed, err := p.carry(ctx, e, sig, d, &fp, occurrence{prev: fp.Status, repeat: true})
		if err != nil || !changed {
			return err
		}
		return p.st.put(fpKey, &fp)
	}
	o := occurrence{prev: fp.Status, fresh: e.Seq > fp.Seq, notify: true}
	if o.fresh {
		fp.Seq = e.Seq
		fp.Occurrences++
		if fp.FirstSeen == "" {
			fp.FirstSeen = sig.StartsAt.Format(time.RFC3339)
		}
		fp.Status = sig.Status
		o.notify = p.window(&fp, d)
	}
	changed := o.fresh
	if d.Route == rules.RouteIncident && d.RateLimit == nil {
		// Only the status and its start are read here: an occurrence that
		// leaves them as they were is counted by the group alone, not
		// written per fingerprint.
		changed = o.fresh && (o.prev != sig.Status || !fp.Start.Equal(sig.StartsAt))
	}
	if o.fresh {
		fp.Start = sig.StartsAt.UTC()
	}
	did, err := p.carry(ctx, e, sig, d, &fp, o)
	if err != nil {
		return err
	}
	if !changed && !did {
		return nil
	}
	return p.st.put(fpKey, &fp)
}

// carry carries out d's route. A route that cannot be carried out for
// good (the tracker refuses, the incident cannot be declared) gives way to
// the default route, and d says so, flagged: the signal still ends where a
// person sees it. When the default is that same route, or fails too, the
// error stands and the signal is dead-lettered, flagged.
func (p *Runner) carry(ctx context.Context, e events.Stored, sig *events.Signal, d *rules.Decision, fp *fpState, o occurrence) (bool, error) {
	changed, err := p.route(ctx, e, sig, d, fp, o)
	if !errors.Is(err, projection.ErrPermanent) {
		return changed, err
	}
	route, inc := p.rules.Default(sig)
	if route == d.Route {
		d.Flag(fmt.Sprintf("route %s failed (%v), and it is the default route", d.Route, err))
		return changed, err
	}
	d.Flag(fmt.Sprintf("route %s failed (%v); default route %s used", d.Route, err, route))
	d.Route, d.Incident = route, inc
	more, err := p.route(ctx, e, sig, d, fp, o)
	return changed || more, err
}

// route carries out d.Route; changed reports a change of fp.
func (p *Runner) route(ctx context.Context, e events.Stored, sig *events.Signal, d *rules.Decision, fp *fpState, o occurrence) (changed bool, err error) {
	switch d.Route {
	case rules.RouteIncident:
		return false, p.incident(ctx, e, sig, d, o)
	case rules.RouteTicket:
		if p.tickets == nil {
			return false, errNoTracker
		}
		if o.repeat {
			return false, nil
		}
		return p.tickets.Apply(ctx, e, sig, &fp.State, tickets.Occurrence{Count: fp.Occurrences, FirstSeen: fp.FirstSeen}, d, o.notify)
	case rules.RouteTriage:
		if fp.Triage != "" {
			return false, nil
		}
		err := p.st.openTriage(ctx, "triage."+natsjs.EffectKey(sig.Source, sig.Fingerprint), triageItem{
			Status: "open", Title: sig.Title, ReportedBy: sig.ReportedBy, ReportedAt: sig.StartsAt.Format(time.RFC3339),
			CustomerImpact: sig.CustomerImpact, Service: sig.Service, Severity: sig.Severity, Source: sig.Source,
			Fingerprint: sig.Fingerprint, Links: sig.Links, Priority: d.Priority, Annotations: d.Annotations, Flagged: d.Flagged,
		})
		if err != nil {
			return false, err
		}
		if err := p.publishTriage(ctx, e, sig, d); err != nil {
			return false, err
		}
		fp.Triage = "open"
		return true, nil
	}
	return false, nil
}

// repeated reports a signal the fingerprint's state has already seen: the
// same status of the same episode (a redelivery the stream's two-minute
// Msg-Id window no longer catches, such as Alertmanager's repeat_interval
// or an SNS retry days later), or an episode older than the one recorded.
// The firing of an episode already resolved is not one: Prometheus sends
// an alert with its first start again once Alertmanager resolved it for
// want of news (an outage longer than the alert's endsAt), and a finding
// made active again keeps its creation time. Taken for a late copy, that
// alert would fire unseen.
func repeated(fp *fpState, sig *events.Signal) bool {
	if fp.Start.IsZero() {
		return false
	}
	switch at := sig.StartsAt; {
	case at.Before(fp.Start):
		return true
	case at.Equal(fp.Start):
		return sig.Status == fp.Status
	}
	return false
}

// stillFiring: the signal repeats the firing episode the fingerprint is in.
func stillFiring(fp *fpState, sig *events.Signal) bool {
	return sig.Status == events.SignalFiring && fp.Status == events.SignalFiring && sig.StartsAt.Equal(fp.Start)
}

// window counts the fingerprint in its rate window and reports whether
// this occurrence may notify.
func (p *Runner) window(fp *fpState, d *rules.Decision) bool {
	if d.RateLimit == nil {
		return true
	}
	now := p.now().Unix()
	if now-fp.WindowStart >= int64(d.RateLimit.Window/time.Second) {
		fp.WindowStart, fp.WindowCount = now, 0
	}
	fp.WindowCount++
	if fp.WindowCount > d.RateLimit.Max {
		fp.Suppressed++
		p.limited.Add(1)
		return false
	}
	return true
}

// incident attaches the signal to the open incident of its group. A
// firing signal of a group with none open declares one, whatever its
// fingerprint, even when it repeats an alert that kept firing while the
// last incident was closed; a resolved signal never does. Every change of
// the group's firing set (a fingerprint joining, resolving, firing again),
// the incident's first signal and every CountEvery-th signal go into the
// batch's occurrences record (see records); a firing signal that asks for
// a worse severity than the group's signals so far raises the incident's.
func (p *Runner) incident(ctx context.Context, e events.Stored, sig *events.Signal, d *rules.Decision, o occurrence) error {
	gKey := "group." + natsjs.EffectKey(d.GroupKey)
	var g groupState
	if err := p.st.get(ctx, gKey, &g); err != nil {
		return err
	}
	if e.Seq <= g.Seq {
		return nil // counted before a crash; nothing left to do for it
	}
	g.Seq = e.Seq
	change := o.change(sig)
	switch {
	case change != "" && sig.Status == events.SignalFiring:
		g.Firing++
	case change != "" && o.prev == events.SignalFiring:
		g.Firing = max(0, g.Firing-1)
	}
	if !o.repeat {
		g.Count++
	}
	if err := p.current(ctx, &g, e.Time); err != nil {
		return err
	}
	firing := sig.Status == events.SignalFiring
	first := false
	switch {
	case g.Incident == "" && !firing:
		return p.st.put(gKey, &g) // nothing open to resolve
	case g.Incident == "":
		if err := p.declare(ctx, e, sig, d, &g); err != nil {
			return err
		}
		first = true
	case firing:
		if err := p.raise(ctx, e, sig, d, &g); err != nil {
			return err
		}
	}
	if first || change != "" || (!o.repeat && g.Count%p.cfg.CountEvery == 0) {
		p.note(e, sig, d, &g, change, first)
	}
	return p.st.put(gKey, &g)
}

// current forgets the group's incident when the signal was stored after
// the incident was closed (or the incident is gone): the group's next
// firing signal declares a new one. A signal stored while the incident was
// open still belongs to it, so a state file rebuilt from the stream (lost,
// or taken over on another machine) attaches the old signals to the
// incidents they were attached to and declares nothing new. The projector
// reads the incident's state through the command side, the aggregate every
// command is decided on, rather than learning of closes from a consumer of
// close events: that consumer would race with the signals and need a
// checkpoint of its own. The read costs one request per incident per
// batch, not per signal.
func (p *Runner) current(ctx context.Context, g *groupState, stored time.Time) error {
	if g.Incident == "" {
		return nil
	}
	end, known := p.cur.ends[g.Incident]
	if !known {
		st, err := p.env.Commands.Get(ctx, g.Incident)
		if err != nil && !errors.Is(err, incident.ErrNotFound) {
			return err
		}
		end = endOf(st, err)
		p.cur.known(g.Incident, end)
	}
	if end.ended && !stored.Before(end.at) {
		g.Incident = ""
	}
	return nil
}

// incidentEnd is whether an incident has ended and when it was closed
// (zero when it is gone).
type incidentEnd struct {
	ended bool
	at    time.Time
}

func endOf(st incident.State, err error) incidentEnd {
	switch {
	case err != nil:
		return incidentEnd{ended: true}
	case st.Open():
		return incidentEnd{}
	case st.ClosedAt != nil:
		return incidentEnd{ended: true, at: *st.ClosedAt}
	}
	return incidentEnd{ended: true}
}

// declare opens the group's next incident (its key is the group and its
// generation, so a redelivery declares nothing twice).
func (p *Runner) declare(ctx context.Context, e events.Stored, sig *events.Signal, d *rules.Decision, g *groupState) error {
	c := Declaration(sig, d)
	// A generation's key may already name an incident that ended before
	// this signal was stored: the state file was rebuilt from a stream
	// that no longer holds the signals that declared it. The signal then
	// belongs to a later generation. The loop is bounded by the group's
	// incidents: each pass finds one that exists.
	for {
		g.Gen++
		st, err := p.env.Commands.Declare(ctx, c, command.Meta{
			Actor: actor, Key: "signals/" + d.GroupKey + "/" + strconv.Itoa(g.Gen), CorrelationID: e.ID,
		})
		var invalid *incident.ValidationError
		if errors.As(err, &invalid) {
			err = fmt.Errorf("%w: %v", projection.ErrPermanent, err) // no retry declares it
		}
		if err != nil {
			return fmt.Errorf("declare for group %s: %w", d.GroupKey, err)
		}
		end := endOf(st, nil)
		p.cur.known(st.ID, end)
		if end.ended && !e.Time.Before(end.at) {
			continue
		}
		g.Incident, g.Count, g.Severity = st.ID, 1, c.Severity
		return nil
	}
}

// raise appends a severity change when the signal asks for a worse
// severity than the group's signals did so far (an updated finding, a
// critical alert joining) and than the incident has now. It never lowers
// one: a severity a person chose stands until a signal asks for worse.
func (p *Runner) raise(ctx context.Context, e events.Stored, sig *events.Signal, d *rules.Decision, g *groupState) error {
	sev := events.Severity(incidentSeverity(sig, d))
	if !worse(sev, events.Severity(g.Severity)) {
		return nil
	}
	st, err := p.env.Commands.Get(ctx, g.Incident)
	if err != nil && !errors.Is(err, incident.ErrNotFound) {
		return err
	}
	g.Severity = string(sev)
	if !st.Open() || !worse(sev, st.Severity) {
		return nil
	}
	_, err = p.env.Commands.Execute(ctx, g.Incident, incident.ChangeSeverity{Severity: string(sev),
		// No title: a confidential incident's reason may be shown outside.
		Reason: fmt.Sprintf("%s signal %s is %s.", sig.Source, sig.Fingerprint, sig.Severity),
	}, command.Meta{Actor: actor, Key: fmt.Sprintf("signals/%s/%d/severity/%s", d.GroupKey, g.Gen, sev), CorrelationID: e.ID})
	var conflict *incident.ConflictError
	var invalid *incident.ValidationError
	switch {
	case errors.As(err, &conflict):
		return nil // closed or changed by a person meanwhile
	case errors.As(err, &invalid):
		// Never retried: a raise the incident refuses must not hold up
		// every signal behind it.
		p.env.Logger.Warn("severity raise refused", "incident", g.Incident, "err", err)
		return nil
	case err != nil:
		return fmt.Errorf("severity of %s: %w", g.Incident, err)
	}
	return nil
}

// worse: a is a worse severity than b (any is worse than none).
func worse(a, b events.Severity) bool { return b.Rank() == 0 || a.Rank() < b.Rank() }

// batchState is what the projector learns and owes during one batch: the
// incidents it found open or closed, and the occurrences records it
// appends before the batch's states are committed.
type batchState struct {
	ends    map[string]incidentEnd
	records []*record
	last    map[string]*record // by incident
}

func (b *batchState) reset() {
	b.ends, b.records, b.last = nil, nil, nil
}

func (b *batchState) known(id string, end incidentEnd) {
	if b.ends == nil {
		b.ends = map[string]incidentEnd{}
	}
	b.ends[id] = end
}

// record is an incident's occurrences fact for signals of one batch: the
// group's signals counted from..to of its generation gen.
type record struct {
	incident, group string
	gen, from, to   int
	first           bool
	cause           string
	fact            events.SignalOccurrences
}

// note adds the signal to the batch's record for the group's incident.
func (p *Runner) note(e events.Stored, sig *events.Signal, d *rules.Decision, g *groupState, change string, first bool) {
	r := p.cur.last[g.Incident]
	if r == nil || r.gen != g.Gen || len(r.fact.Changes) >= events.MaxSignalChanges {
		r = &record{incident: g.Incident, group: d.GroupKey, gen: g.Gen, from: g.Count}
		p.cur.records = append(p.cur.records, r)
		if p.cur.last == nil {
			p.cur.last = map[string]*record{}
		}
		p.cur.last[g.Incident] = r
	}
	r.to, r.first, r.cause = g.Count, r.first || first, e.ID
	if change != "" {
		r.fact.Changes = append(r.fact.Changes, events.SignalChange{Fingerprint: sig.Fingerprint, Change: change,
			Status: sig.Status, Title: sanitize.Truncate(sig.Title, 120)})
	}
	r.fact.GroupKey, r.fact.Occurrences, r.fact.Firing = d.GroupKey, g.Count, g.Firing
	r.fact.Fingerprint, r.fact.Status, r.fact.Title = sig.Fingerprint, sig.Status, sig.Title
}

// reason is first (the incident's first record), resolved (the group's
// fingerprints all resolved), status (the firing set changed) or count.
func (r *record) reason() string {
	switch {
	case r.first:
		return "first"
	case len(r.fact.Changes) > 0 && r.fact.Firing == 0:
		return "resolved"
	case len(r.fact.Changes) > 0:
		return "status"
	}
	return "count"
}

// records appends the batch's occurrences records. Their keys name the
// group, its generation and the signals counted, so a batch handled again
// after a crash appends none twice; one cut longer the second time (more
// signals had arrived) appends its longer record too: a change may then be
// listed twice, never lost.
func (p *Runner) records(ctx context.Context) error {
	for _, r := range p.cur.records {
		r.fact.Reason = r.reason()
		key := fmt.Sprintf("signals/%s/%d/%d-%d", r.group, r.gen, r.from, r.to)
		if _, err := p.env.Commands.Execute(ctx, r.incident, incident.RecordFact{Data: &r.fact},
			command.Meta{Actor: actor, Key: key, CorrelationID: r.cause}); err != nil {
			return fmt.Errorf("count on %s: %w", r.incident, err)
		}
	}
	p.cur.records, p.cur.last = nil, nil
	return nil
}

// sevOf maps a signal's severity to an incident's; anything else is SEV5.
var sevOf = map[string]string{"critical": "SEV1", "high": "SEV2", "medium": "SEV3", "low": "SEV4"}

// incidentSeverity is the severity of the incident a signal asks for: the
// rule's, or the signal's own mapped by sevOf.
func incidentSeverity(sig *events.Signal, d *rules.Decision) string {
	if d.Incident.Severity != "" {
		return d.Incident.Severity
	}
	if sev, ok := sevOf[sig.Severity]; ok {
		return sev
	}
	return "SEV5"
}

// Declaration is the incident a routed signal opens.
func Declaration(sig *events.Signal, d *rules.Decision) incident.Declare {
	var b strings.Builder
	fmt.Fprintf(&b, "Declared from %s signal %s (group %s).", sig.Source, sig.Fingerprint, d.GroupKey)
	if d.Flagged != "" {
		b.WriteString("\nRouted by the default: " + d.Flagged)
	}
	if sig.Summary != "" {
		b.WriteString("\n" + sig.Summary)
	}
	if d.Priority != "" {
		b.WriteString("\nPriority: " + d.Priority)
	}
	for _, k := range slices.Sorted(maps.Keys(d.Annotations)) {
		fmt.Fprintf(&b, "\n%s: %s", k, d.Annotations[k])
	}
	for _, l := range sig.Links {
		fmt.Fprintf(&b, "\n%s: %s", cmp.Or(l.Title, "link"), l.URL)
	}
	return incident.Declare{
		Title:    sanitize.Truncate(cmp.Or(strings.TrimSpace(sig.Title), sig.Source+" "+sig.Fingerprint), incident.MaxTitle),
		Service:  cmp.Or(serviceName(d.Incident.Service), serviceName(sig.Service), serviceName(sig.Source)),
		Severity: incidentSeverity(sig, d), Summary: sanitize.Truncate(b.String(), incident.MaxText), DeclaredBy: actor,
		Confidential: d.Incident.Confidential,
	}
}

// serviceName makes a label value a service name: one word without
// spaces or slashes.
func serviceName(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == ' ' || r == '/' || r == '\t' || r == '\n' {
			return '-'
		}
		return r
	}, strings.TrimSpace(s))
	return sanitize.Truncate(s, incident.MaxName)
}
