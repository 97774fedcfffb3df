package signals

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/command"
	"github.com/hikeshi/hikeshi/services/incident"
)

// projector evaluates the rules over each stored signal and carries out
// the decision. It is idempotent: counts carry the stream sequence they
// reached, incidents and facts are appended under keys derived from the
// group and its count, and tickets go through the effects ledger.
type projector struct {
	m       *module
	st      *states
	tickets *tickets // nil without signals.github or signals.jira
	now     func() time.Time
	// ackWait is how long the server waits for a batch's ack before it
	// delivers the batch again; handling retries well inside it.
	ackWait time.Duration

	handled, dropped, flagged, limited, repeated atomic.Int64
}

func newProjector(m *module, d deps) (*projector, error) {
	st, err := newStates(context.Background(), m.env.Bus.JS)
	if err != nil {
		return nil, err
	}
	p := &projector{m: m, st: st, now: d.now, ackWait: 5 * time.Minute}
	var tr tracker
	switch {
	case m.cfg.GitHub != nil:
		tr, err = newGitHub(*m.cfg.GitHub, m.sec.github, d.client)
	case m.cfg.JIRA != nil:
		tr, err = newJira(*m.cfg.JIRA, m.sec.jira, d.client)
	}
	if err != nil {
		return nil, err
	}
	if tr != nil {
		p.tickets = &tickets{tr: tr, effects: m.env.Effects, env: m.env, st: st}
	}
	return p, nil
}

const actor = "signals"

// handle evaluates and carries out one stored signal.
func (p *projector) handle(ctx context.Context, e events.Stored, sig *events.Signal) (err error) {
	p.handled.Add(1)
	d := p.m.rules.Evaluate(sig)
	defer p.record(ctx, e, sig, &d, p.tally(), &err)
	if d.Flagged != "" {
		p.flagged.Add(1)
		p.m.env.Logger.Warn("signal rule failed; default route used", "fingerprint", sig.Fingerprint, "why", d.Flagged)
	}
	if d.Drop {
		p.dropped.Add(1)
		return nil
	}
	// A fingerprint's state is kept only where something reads it: an
	// alert ticket, a triage item, a rate window, and the incident route,
	// which reads its status to count the group's firing fingerprints. A
	// signal routed nowhere costs no read and no write.
	if d.Route == RouteNone && d.RateLimit == nil {
		return nil
	}
	fpKey := "fp." + natsjs.EffectKey(sig.Source, sig.Fingerprint)
	var fp fpState
	if err := p.st.get(ctx, fpKey, &fp); err != nil {
		return err
	}
	if repeated(&fp, sig) {
		p.repeated.Add(1)
		return nil
	}
	fresh := e.Seq > fp.Seq
	prev := fp.Status
	notify := true
	if fresh {
		fp.Seq = e.Seq
		fp.Occurrences++
		if fp.FirstSeen == "" {
			fp.FirstSeen = sig.StartsAt.Format(time.RFC3339)
		}
		fp.Status = sig.Status
		notify = p.window(&fp, &d)
	}
	changed := fresh
	if d.Route == RouteIncident && d.RateLimit == nil {
		// Only the status and its start are read here: an occurrence that
		// leaves them as they were is counted by the group alone, not
		// written per fingerprint.
		changed = fresh && (prev != sig.Status || !fp.Start.Equal(sig.StartsAt))
	}
	if fresh {
		fp.Start = sig.StartsAt.UTC()
	}
	switch d.Route {
	case RouteIncident:
		if err := p.incident(ctx, e, sig, &d, prev, fresh); err != nil {
			return err
		}
	case RouteTicket:
		if p.tickets == nil {
			p.flagged.Add(1)
			p.m.env.Logger.Warn("signal routed to a ticket but neither signals.github nor signals.jira is configured", "fingerprint", sig.Fingerprint)
			break
		}
		did, err := p.tickets.apply(ctx, e, sig, &fp, &d, notify)
		if err != nil {
			return err
		}
		changed = changed || did
	case RouteTriage:
		if fp.Triage == "" {
			err := p.st.openTriage(ctx, "triage."+natsjs.EffectKey(sig.Source, sig.Fingerprint), triageItem{
				Status: "open", Title: sig.Title, ReportedBy: sig.ReportedBy, ReportedAt: sig.StartsAt.Format(time.RFC3339),
				CustomerImpact: sig.CustomerImpact, Service: sig.Service, Severity: sig.Severity, Source: sig.Source,
				Fingerprint: sig.Fingerprint, Links: sig.Links, Priority: d.Priority, Annotations: d.Annotations, Flagged: d.Flagged,
			})
			if err != nil {
				return err
			}
			if err := p.publishTriage(ctx, e, sig, &d); err != nil {
				return err
			}
			fp.Triage, changed = "open", true
		}
	}
	if !changed {
		return nil
	}
	return p.st.put(fpKey, &fp)
}

// repeated reports a signal the fingerprint's state has already seen: the
// same status of the same episode (a redelivery the stream's two-minute
// Msg-Id window no longer catches, such as Alertmanager's repeat_interval
// or an SNS retry days later), an episode older than the one recorded, or
// the firing of an episode already resolved.
func repeated(fp *fpState, sig *events.Signal) bool {
	if fp.Start.IsZero() {
		return false
	}
	switch at := sig.StartsAt; {
	case at.Before(fp.Start):
		return true
	case at.Equal(fp.Start):
		return sig.Status == fp.Status || fp.Status == events.SignalResolved
	}
	return false
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// window counts the fingerprint in its rate window and reports whether
// this occurrence may notify.
func (p *projector) window(fp *fpState, d *Decision) bool {
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

// incident attaches the signal to the open incident of its group,
// declaring one when there is none. Facts are appended on the first
// signal, every CountEvery signals, and on status changes, so a storm
// adds a handful of events to the timeline.
func (p *projector) incident(ctx context.Context, e events.Stored, sig *events.Signal, d *Decision, prev string, fresh bool) error {
	gKey := "group." + natsjs.EffectKey(d.GroupKey)
	var g groupState
	if err := p.st.get(ctx, gKey, &g); err != nil {
		return err
	}
	if e.Seq <= g.Seq {
		return nil // counted before a crash; nothing left to do for it
	}
	g.Seq = e.Seq
	reason := ""
	changed := fresh && prev != sig.Status
	switch {
	case changed && sig.Status == events.SignalFiring:
		g.Firing++
	case changed && prev == events.SignalFiring:
		g.Firing = max(0, g.Firing-1)
	}
	if g.Incident == "" && sig.Status == events.SignalResolved {
		return p.st.put(gKey, &g) // nothing open to resolve
	}
	g.Count++
	switch {
	case g.Incident == "" || g.Count == 1:
		reason = "first"
	case changed && sig.Status == events.SignalResolved && g.Firing == 0:
		reason = "resolved"
	case changed && prev != "":
		reason = "status"
	case g.Count%p.m.cfg.CountEvery == 0:
		reason = "count"
	}
	if reason != "" && g.Incident != "" {
		// Only now is the incident looked at: a closed one ends the group's
		// incident, and the signal opens the next.
		st, err := p.m.env.Commands.Get(ctx, g.Incident)
		if err != nil && err != incident.ErrNotFound {
			return err
		}
		if err != nil || !st.Open() {
			g.Incident, g.Count, reason = "", 1, "first"
		}
	}
	if g.Incident == "" {
		if sig.Status == events.SignalResolved {
			return p.st.put(gKey, &g)
		}
		g.Gen++
		st, err := p.m.env.Commands.Declare(ctx, declaration(sig, d), command.Meta{
			Actor: actor, Key: "signals/" + d.GroupKey + "/" + strconv.Itoa(g.Gen), CorrelationID: e.ID,
		})
		if err != nil {
			return fmt.Errorf("declare for group %s: %w", d.GroupKey, err)
		}
		g.Incident = st.ID
	}
	if reason != "" {
		fact := &events.SignalOccurrences{GroupKey: d.GroupKey, Occurrences: g.Count, Firing: g.Firing,
			Fingerprint: sig.Fingerprint, Status: sig.Status, Title: sig.Title, Reason: reason}
		key := fmt.Sprintf("signals/%s/%d/%d", d.GroupKey, g.Gen, g.Count)
		if _, err := p.m.env.Commands.Execute(ctx, g.Incident, incident.RecordFact{Data: fact},
			command.Meta{Actor: actor, Key: key, CorrelationID: e.ID}); err != nil {
			return fmt.Errorf("count on %s: %w", g.Incident, err)
		}
	}
	return p.st.put(gKey, &g)
}

// declaration is the incident a routed signal opens.
func declaration(sig *events.Signal, d *Decision) incident.Declare {
	sev := d.Incident.Severity
	if sev == "" {
		sev = map[string]string{"critical": "SEV1", "high": "SEV2", "medium": "SEV3", "low": "SEV4"}[sig.Severity]
		if sev == "" {
			sev = "SEV5"
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Declared from %s signal %s (group %s).", sig.Source, sig.Fingerprint, d.GroupKey)
	if sig.Summary != "" {
		b.WriteString("\n" + sig.Summary)
	}
	if d.Priority != "" {
		b.WriteString("\nPriority: " + d.Priority)
	}
	for _, k := range sortedKeys(d.Annotations) {
		fmt.Fprintf(&b, "\n%s: %s", k, d.Annotations[k])
	}
	for _, l := range sig.Links {
		fmt.Fprintf(&b, "\n%s: %s", first(l.Title, "link"), l.URL)
	}
	title := sig.Title
	if len(title) > incident.MaxTitle {
		title = title[:incident.MaxTitle]
	}
	return incident.Declare{
		Title: title, Service: serviceName(first(d.Incident.Service, sig.Service, sig.Source)),
		Severity: sev, Summary: truncate(b.String(), incident.MaxText), DeclaredBy: actor,
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
	if len(s) > incident.MaxName {
		s = s[:incident.MaxName]
	}
	return s
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
