package projector

import (
	"context"
	"errors"
	"fmt"
	"github.com/hikeshi/hikeshi/services/signals/ingest"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/adapters/jiratest"
	"github.com/hikeshi/hikeshi/adapters/sqlite"
	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/command"
	"github.com/hikeshi/hikeshi/services/config"
	"github.com/hikeshi/hikeshi/services/incident"
	"github.com/hikeshi/hikeshi/services/integrationtest"
	"github.com/hikeshi/hikeshi/services/signals/rules"
)

// diskFull is one instance of an Alertmanager alert of the group
// `{}:{alertname="DiskFull"}`, starting start seconds into the test.
func diskFull(instance, status string, start int64) stormAlert {
	return stormAlert{Status: status, StartsAt: time.Unix(1750000000+start, 0).UTC(), Fingerprint: "fp-" + instance,
		Labels: map[string]string{"alertname": "DiskFull", "severity": "critical", "service": "search", "instance": instance}}
}

// notify posts the group's Alertmanager notification (every alert of the
// group, as Alertmanager sends it) and waits until the projector handled
// what was stored.
func (r *rig) notify(alerts ...stormAlert) {
	r.t.Helper()
	resp, out := r.post(ingest.PathAlertmanager, webhookV4(`{}:{alertname="DiskFull"}`, alerts), auth(testToken))
	must(r.t, resp.StatusCode == http.StatusAccepted, "%d %s", resp.StatusCode, out)
	r.settle()
}

// settle waits until the projector handled every stored signal.
func (r *rig) settle() {
	r.t.Helper()
	r.waitHandled(r.count(), 20*time.Second)
}

// repeat stores again the last stored signal of fingerprint, as a copy
// that arrives after the stream's Msg-Id window (Alertmanager's
// repeat_interval), with change applied, and waits until it is handled.
func (r *rig) repeat(fingerprint string, change func(*events.Signal)) {
	r.t.Helper()
	var last *events.Signal
	for _, s := range r.stored() {
		if s.Fingerprint == fingerprint {
			last = &s
		}
	}
	must(r.t, last != nil, "no signal of %s stored", fingerprint)
	if change != nil {
		change(last)
	}
	r.publishLate(*last)
	r.settle()
}

// timeline is one incident's events, in order.
type timeline struct {
	id     string
	events []events.Stored
}

// timelines are the incidents on the stream, in the order declared.
func (r *rig) timelines() []timeline {
	r.t.Helper()
	var out []timeline
	at := map[string]int{}
	for _, e := range integrationtest.Stream(r.t, r.bus.JS, events.IncidentStream) {
		i, ok := at[e.Envelope.Subject]
		if !ok {
			i, at[e.Envelope.Subject] = len(out), len(out)
			out = append(out, timeline{id: e.Envelope.Subject})
		}
		out[i].events = append(out[i].events, e)
	}
	return out
}

// occurrences are the incident's occurrences records.
func (tl timeline) occurrences(t *testing.T) []events.SignalOccurrences {
	t.Helper()
	var out []events.SignalOccurrences
	for _, e := range tl.events {
		if e.Type != events.TypeSignalOccurrences {
			continue
		}
		d, err := e.Decode()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, *d.(*events.SignalOccurrences))
	}
	return out
}

// changes are the firing-set changes the incident's records report, as
// "fingerprint change".
func (tl timeline) changes(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, o := range tl.occurrences(t) {
		for _, c := range o.Changes {
			out = append(out, c.Fingerprint+" "+c.Change)
		}
	}
	return out
}

// close resolves and closes the incident, as its commander would.
func (r *rig) close(id string) {
	r.t.Helper()
	ctx, m := context.Background(), command.Meta{Actor: "alice"}
	if _, err := r.env.Commands.Execute(ctx, id, incident.UpdateStatus{Status: "resolved"}, m); err != nil {
		r.t.Fatal(err)
	}
	if _, err := r.env.Commands.Execute(ctx, id, incident.Close{Resolution: "Disk cleaned up"}, m); err != nil {
		r.t.Fatal(err)
	}
}

// A group whose incident was closed opens a new incident on its next
// firing signal: another instance of the alert joining, or an alert that
// kept firing sent again by Alertmanager's repeat_interval. A resolved
// signal never opens one, and a repeat while the incident is open opens
// none.
func TestClosedGroupOpensNextIncident(t *testing.T) {
	setSecrets(t)
	r := newRig(t, rigOpts{yaml: incidentYAML})
	r.run()
	r.notify(diskFull("db-1", "firing", 0))
	tls := r.timelines()
	must(t, len(tls) == 1, "incidents after the first alert: %d", len(tls))
	r.close(tls[0].id)

	// A second instance fires; Alertmanager sends the group again.
	r.notify(diskFull("db-1", "firing", 0), diskFull("db-2", "firing", 60))
	tls = r.timelines()
	must(t, len(tls) == 2, "a new instance in a closed group: %d incidents, want 2", len(tls))
	r.close(tls[1].id)

	// Both keep firing; hours later Alertmanager repeats the notification.
	r.repeat("fp-db-1", nil)
	tls = r.timelines()
	must(t, len(tls) == 3, "an alert still firing, repeated after the close: %d incidents, want 3", len(tls))
	occ := tls[2].occurrences(t)
	must(t, len(occ) == 1 && occ[0].Reason == "first" && occ[0].Firing == 2, "the new incident's record: %+v", occ)

	// Repeated again while that incident is open: nothing new.
	r.repeat("fp-db-2", nil)
	r.repeat("fp-db-1", nil)
	must(t, len(r.timelines()) == 3, "repeats of an open incident's alerts declared %d incidents", len(r.timelines()))

	// Resolved after the close: no incident for a resolved alert.
	r.close(tls[2].id)
	r.notify(diskFull("db-1", "resolved", 0), diskFull("db-2", "resolved", 60))
	must(t, len(r.timelines()) == 3, "resolved signals declared an incident")
}

// Every change of a group's firing set is on its incident's timeline: the
// first alert, a second instance joining, each resolving, a third instance
// firing after all resolved, the first firing again. A new episode of an
// alert still firing changes nothing and is counted only.
func TestFiringSetChangesOnTimeline(t *testing.T) {
	setSecrets(t)
	r := newRig(t, rigOpts{yaml: incidentYAML})
	r.run()
	a, b, c := diskFull("db-1", "firing", 0), diskFull("db-2", "firing", 60), diskFull("db-3", "firing", 600)
	r.notify(a)
	r.notify(a, b)
	resolved := func(s stormAlert) stormAlert { s.Status = "resolved"; return s }
	r.notify(resolved(a), resolved(b))
	tls := r.timelines()
	must(t, len(tls) == 1, "incidents: %d", len(tls))
	last := tls[0].occurrences(t)
	must(t, last[len(last)-1].Reason == "resolved" && last[len(last)-1].Firing == 0, "after all resolved: %+v", last)

	r.notify(c)
	again := diskFull("db-1", "firing", 900)
	r.notify(c, again)
	tls = r.timelines()
	want := []string{"fp-db-1 joined", "fp-db-2 joined", "fp-db-1 resolved", "fp-db-2 resolved", "fp-db-3 joined", "fp-db-1 firing_again"}
	got := tls[0].changes(t)
	must(t, slices.Equal(got, want), "changes on the timeline:\n got %q\nwant %q", got, want)
	occ := tls[0].occurrences(t)
	must(t, occ[len(occ)-1].Firing == 2 && occ[len(occ)-1].Reason == "status", "last record: %+v", occ[len(occ)-1])

	// db-3 fires again with a new start without having resolved: the same
	// firing set, counted only.
	before := len(tls[0].events)
	c.StartsAt = c.StartsAt.Add(time.Hour)
	r.notify(c, again)
	tls = r.timelines()
	must(t, len(tls) == 1 && len(tls[0].events) == before, "a new episode of a firing alert: %d events, %d before", len(tls[0].events), before)
}

// Prometheus is cut off from Alertmanager for longer than its alert's
// endsAt: Alertmanager resolves the alert, then, when Prometheus sends it
// again with its first start, notifies it firing again. That is the group
// firing again, on the timeline; once the incident is closed, the same
// alert firing again opens the next.
func TestResolvedEpisodeFiringAgain(t *testing.T) {
	setSecrets(t)
	r := newRig(t, rigOpts{yaml: incidentYAML})
	r.run()
	r.notify(diskFull("db-1", "firing", 0))
	r.notify(diskFull("db-1", "resolved", 0))
	firing := func(s *events.Signal) { s.Status, s.EndsAt = events.SignalFiring, time.Time{} }
	r.repeat("fp-db-1", firing) // after the Msg-Id window
	tls := r.timelines()
	got := tls[0].changes(t)
	must(t, slices.Equal(got, []string{"fp-db-1 joined", "fp-db-1 resolved", "fp-db-1 firing_again"}), "changes: %q", got)
	occ := tls[0].occurrences(t)
	must(t, occ[len(occ)-1].Firing == 1, "firing after the resolved episode fired again: %+v", occ[len(occ)-1])

	r.repeat("fp-db-1", func(s *events.Signal) { s.Status, s.EndsAt = events.SignalResolved, s.StartsAt.Add(time.Hour) })
	r.close(tls[0].id)
	r.repeat("fp-db-1", firing)
	must(t, len(r.timelines()) == 2, "incidents after the alert fired again in a closed group: %d", len(r.timelines()))
}

// A storm of instances joining one group is listed on the timeline, each
// once, in a few records rather than one per alert.
func TestJoiningStormListedInFewRecords(t *testing.T) {
	setSecrets(t)
	r := newRig(t, rigOpts{yaml: incidentYAML})
	const n = 120
	var sigs []events.Signal
	for i := range n {
		sigs = append(sigs, sigFor(i, 1, "firing"))
	}
	r.publish(sigs)
	r.run()
	r.settle()
	tls := r.timelines()
	must(t, len(tls) == 1, "incidents: %d", len(tls))
	got := tls[0].changes(t)
	must(t, len(got) == n, "%d changes listed for %d instances", len(got), n)
	for i, c := range got {
		must(t, c == fmt.Sprintf("fp-%d joined", i), "change %d: %s", i, c)
	}
	must(t, len(tls[0].events) <= 1+(n+events.MaxSignalChanges-1)/events.MaxSignalChanges+1,
		"%d events for %d alerts", len(tls[0].events), n)
}

const findingsYAML = `
signals:
  token_env: SIG_TOKEN
  rules:
    - name: findings
      when: 'signal.kind == "finding"'
      route: incident
`

// severities are the incident's severity changes, as "from>to by actor".
func (tl timeline) severities(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, e := range tl.events {
		if e.Type != events.TypeSeverityChanged {
			continue
		}
		d, err := e.Decode()
		if err != nil {
			t.Fatal(err)
		}
		c := d.(*events.SeverityChanged)
		out = append(out, fmt.Sprintf("%s>%s by %s", c.From, c.To, e.Actor))
	}
	return out
}

// sshFinding is a finding of one group, as the AWS endpoint stores it.
func sshFinding(id, severity string) events.Signal {
	return events.Signal{Source: "aws", Kind: "finding", Fingerprint: "arn:aws:guardduty:finding/" + id, Status: "firing",
		Title: "UnauthorizedAccess:EC2/SSHBruteForce", Severity: severity, Account: "111122223333",
		StartsAt: time.Unix(1750000000, 0).UTC(), GroupKey: "aws/111122223333/SSHBruteForce"}
}

// An updated finding (same finding and start, a higher severity) raises
// the incident's severity once however often it is delivered; a lower one
// never lowers it, and a severity a person chose stands until a signal
// asks for worse.
func TestUpdatedFindingRaisesSeverity(t *testing.T) {
	setSecrets(t)
	r := newRig(t, rigOpts{yaml: findingsYAML})
	r.run()
	finding := sshFinding
	r.publish([]events.Signal{finding("1", "medium")})
	r.settle()
	tls := r.timelines()
	must(t, len(tls) == 1, "incidents: %d", len(tls))
	st, err := r.env.Commands.Get(context.Background(), tls[0].id)
	must(t, err == nil && st.Severity == events.SEV3, "declared %s %v", st.Severity, err)

	high := func(s *events.Signal) { s.Severity = "high" }
	r.repeat("arn:aws:guardduty:finding/1", high)
	r.repeat("arn:aws:guardduty:finding/1", high) // delivered again
	r.repeat("arn:aws:guardduty:finding/1", func(s *events.Signal) { s.Severity = "low" })
	must(t, slices.Equal(r.timelines()[0].severities(t), []string{"SEV3>SEV2 by signals"}), "after the update: %q", r.timelines()[0].severities(t))

	// A person lowers it; the same finding at the same severity leaves it,
	// a critical one in the group raises it.
	if _, err := r.env.Commands.Execute(context.Background(), tls[0].id, incident.ChangeSeverity{Severity: "SEV4", Reason: "contained"},
		command.Meta{Actor: "alice"}); err != nil {
		t.Fatal(err)
	}
	r.repeat("arn:aws:guardduty:finding/1", high)
	r.publish([]events.Signal{finding("2", "critical")})
	r.settle()
	got := r.timelines()[0].severities(t)
	must(t, slices.Equal(got, []string{"SEV3>SEV2 by signals", "SEV2>SEV4 by alice", "SEV4>SEV1 by signals"}), "severity changes: %q", got)
	must(t, len(r.timelines()) == 1, "incidents: %d", len(r.timelines()))
}

// The batch that opens a closed group's next incident and raises its
// severity is handled again after a crash before its commit: nothing is
// declared, raised or recorded twice.
func TestNextIncidentOnceAfterCrash(t *testing.T) {
	setSecrets(t)
	r := newRig(t, rigOpts{yaml: findingsYAML})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.p.Run(ctx) }()
	f := sshFinding("1", "medium")
	r.publish([]events.Signal{f})
	r.settle()
	r.close(r.timelines()[0].id)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// The finding, still active, is sent again, then updated to high; the
	// process handles both and dies before its commit.
	r.publishLate(f)
	f.Severity = "high"
	r.publishLate(f)
	bctx := context.Background()
	if err := r.p.st.open(bctx, r.env.Store, filepath.Join(r.env.DataDir, StateFile)); err != nil {
		t.Fatal(err)
	}
	c, err := ensureConsumer(bctx, r.bus.JS, r.env.Logger, 5*time.Minute, r.p.st.checkpoint())
	if err != nil {
		t.Fatal(err)
	}
	msgs, _, err := next(bctx, c)
	must(t, err == nil && len(msgs) == 2, "fetched %d: %v", len(msgs), err)
	r.p.cur.reset()
	for _, m := range msgs {
		e, sig, err := ingest.DecodeSignal(m.Subject(), seq(m), m.Data())
		if err != nil {
			t.Fatal(err)
		}
		if err := r.p.handle(bctx, e, sig); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.p.records(bctx); err != nil {
		t.Fatal(err)
	}
	r.p.st.discard()
	if err := r.p.st.close(); err != nil {
		t.Fatal(err)
	}
	before := r.timelines()
	must(t, len(before) == 2 && slices.Equal(before[1].severities(t), []string{"SEV3>SEV2 by signals"}),
		"before the crash: %d incidents, %q", len(before), before[len(before)-1].severities(t))

	r.restart()
	r.run()
	r.settle()
	after := r.timelines()
	must(t, len(after) == 2, "incidents after the redelivery: %d", len(after))
	for i := range after {
		must(t, len(after[i].events) == len(before[i].events), "incident %d: %d events after the redelivery, %d before",
			i, len(after[i].events), len(before[i].events))
	}
}

// A route that cannot be carried out at run time gives way to the default
// route, flagged: a tracker that refuses the ticket for good. The incident
// the default declares says why, and so does the signal's decision. (A
// ticket route without any tracker is refused at load.)
func TestRouteFallsBackToDefault(t *testing.T) {
	finding := events.Signal{Source: "aws", Kind: "finding", Fingerprint: "arn:aws:guardduty:finding/9", Status: "firing",
		Title: "Recon:EC2/PortProbeUnprotectedPort", Severity: "medium", StartsAt: time.Unix(1750000000, 0).UTC(), GroupKey: "aws/recon"}
	check := func(t *testing.T, r *rig, why string) {
		t.Helper()
		r.publish([]events.Signal{finding})
		r.run()
		r.settle()
		tls := r.timelines()
		must(t, len(tls) == 1, "incidents: %d, want the default route's", len(tls))
		st, err := r.env.Commands.Get(context.Background(), tls[0].id)
		if err != nil {
			t.Fatal(err)
		}
		must(t, strings.Contains(st.Summary, "Routed by the default: route ticket failed") && strings.Contains(st.Summary, why),
			"summary does not say why: %q", st.Summary)
		must(t, r.p.flagged.Load() == 1, "flagged: %d", r.p.flagged.Load())
		must(t, len(integrationtest.Stream(t, r.bus.JS, "DEADLETTER")) == 0, "signal dead-lettered")
		// The decision as carried out is listed, flagged.
		_, got, raw := r.listSignals("flagged=true", "")
		must(t, len(got.Signals) == 1 && got.Signals[0].Route == rules.RouteIncident && got.Signals[0].Rule == "default" &&
			got.Signals[0].CaseNumber == "INC-1" && strings.Contains(got.Signals[0].Flagged, why), "flagged decisions: %s", raw)
	}
	const rules = `
  default:
    route: incident
  rules:
    - name: findings-get-tickets
      when: 'signal.kind == "finding"'
      route: ticket
`
	t.Run("no tracker", func(t *testing.T) {
		// Refused at load, naming the rule, rather than falling back on
		// every signal (see TestConfigErrorsNameTheRule).
		setSecrets(t)
		f, err := config.Parse("hikeshi.yaml", []byte("\nsignals:\n  token_env: SIG_TOKEN"+rules))
		if err != nil {
			t.Fatal(err)
		}
		_, _, _, err = load(f, integrationtest.New(t, "").Env)
		must(t, err != nil && strings.Contains(err.Error(), "signals.rules[0] (findings-get-tickets): route ticket needs signals.github or signals.jira"),
			"a ticket route without a tracker: %v", err)
	})
	t.Run("tracker refuses", func(t *testing.T) {
		setSecrets(t)
		t.Setenv("SIG_JIRA", "jira-token")
		fake := jiratest.New(t, "Basic YWxlcnRzQGFjbWUudGVzdDpqaXJhLXRva2Vu")
		fake.Add("POST /rest/api/2/issue", http.StatusBadRequest, "")
		yaml := strings.SplitN(jiraYAML(fake.URL), "  rules:", 2)[0] + strings.TrimPrefix(rules, "\n")
		check(t, newRig(t, rigOpts{yaml: yaml}), "jira create")
	})
}

// A title longer than an incident's in a script of multi-byte characters
// is cut between characters: the incident is declared, the projector does
// not retry the declaration forever.
func TestLongUnicodeTitleDeclares(t *testing.T) {
	setSecrets(t)
	r := newRig(t, rigOpts{yaml: incidentYAML})
	s := sigFor(0, 1, "firing")
	s.Title = strings.Repeat("決済APIで503エラー多発", 20)
	r.publish([]events.Signal{s})
	r.run()
	r.settle()
	tls := r.timelines()
	must(t, len(tls) == 1, "incidents: %d", len(tls))
	st, err := r.env.Commands.Get(context.Background(), tls[0].id)
	must(t, err == nil && strings.HasPrefix(s.Title, st.Title) && len(st.Title) > 100, "title %q: %v", st.Title, err)
}

// The state file lost after a group's incident was closed: rebuilt from
// the stream, the signals stored while the incident was open attach to it
// again and open no new incident; a signal stored after the close opens
// the next one.
func TestRebuildAfterCloseDeclaresNothingNew(t *testing.T) {
	setSecrets(t)
	r := newRig(t, rigOpts{yaml: incidentYAML})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.p.Run(ctx) }()
	r.notify(diskFull("db-1", "firing", 0))
	r.notify(diskFull("db-1", "firing", 0), diskFull("db-2", "firing", 60))
	tls := r.timelines()
	must(t, len(tls) == 1, "incidents: %d", len(tls))
	r.close(tls[0].id)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	r.restart()
	for _, f := range []string{StateFile, StateFile + "-wal", StateFile + "-shm"} {
		if err := os.Remove(filepath.Join(r.env.DataDir, f)); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
	}
	r.run()
	r.rebuilt(r.count())
	must(t, len(r.timelines()) == 1, "the rebuild declared %d incidents, want the 1 there was", len(r.timelines()))
	r.notify(diskFull("db-1", "firing", 0), diskFull("db-2", "firing", 60), diskFull("db-3", "firing", 120))
	must(t, len(r.timelines()) == 2, "a signal after the close: %d incidents, want 2", len(r.timelines()))
}

// rebuilt waits until the state file's checkpoint reaches seq: the
// consumer's ack floor already does before a rebuild starts.
func (r *rig) rebuilt(seq uint64) {
	r.t.Helper()
	path := filepath.Join(r.env.DataDir, StateFile)
	integrationtest.Eventually(r.t, "the state file rebuilt", func() bool {
		db, err := sqlite.OpenState(path)
		if err != nil {
			return false
		}
		defer db.Close()
		cp, err := db.Checkpoint(context.Background())
		return err == nil && cp >= seq
	})
}

// The state file rebuilt from a stream that no longer holds the signals
// that declared a group's incidents (they expired): the group's next
// firing signal opens a new incident, not one of the closed ones its
// generations' keys once declared.
func TestExpiredHistoryOpensNewIncident(t *testing.T) {
	setSecrets(t)
	r := newRig(t, rigOpts{yaml: incidentYAML})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.p.Run(ctx) }()
	for i := range 2 {
		r.notify(diskFull("db-1", "firing", int64(i*3600)))
		tls := r.timelines()
		must(t, len(tls) == i+1, "incidents: %d", len(tls))
		r.close(tls[i].id)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// A state file that stands past every signal, as after expiry.
	path := filepath.Join(r.env.DataDir, StateFile)
	for _, f := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
	}
	db, err := sqlite.OpenState(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Commit(context.Background(), nil, r.count()); err != nil {
		t.Fatal(err)
	}
	db.Close()
	r.restart()
	r.run()
	r.notify(diskFull("db-1", "firing", 3*3600))
	tls := r.timelines()
	must(t, len(tls) == 3, "incidents after a new firing episode: %d, want 3", len(tls))
}
