package integrationtest

// The contract every projector keeps, checked by one suite in the manner of
// Watermill's shared pub/sub tests: a module supplies a ProjectorCase (how
// to start its projector and fake remote on a hub, and how to read what the
// remote saw) and TestProjector checks, each in a subtest of its own, that
// replaying from the start does what following live did, that a restarted
// projector repeats no effect, that a lost effects ledger repeats none
// either (integrations look up before they create), and that a permanent
// refusal by the remote dead-letters its event while the projector goes on.

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/incident"
	"github.com/hikeshi/hikeshi/services/projection"
	"github.com/nats-io/nats.go/jetstream"
)

// ProjectorCase is one projector under the contract.
type ProjectorCase struct {
	// World starts a hub with the projector's fake remote and
	// configuration. Each subtest calls it for a world of its own.
	World func(t *testing.T) *World
	// Lives are the incidents the suite drives, one after the other
	// (default: one ordinary incident, Life of Ordinary).
	Lives    []Life
	Features Features
}

// World is a hub, the projector's remote, and how to look at it.
type World struct {
	Hub *Hub
	// Projector builds a new instance of the projector on the hub's
	// ledger and remote, as a process that starts does.
	Projector func(t testing.TB) projection.Projector
	// Effects is what the remote holds, as a canonical list that two
	// worlds can be compared by ("case [SEV1] Checkout down", "comment
	// Note: rolled back", "transition done"; for a read model its rows):
	// without the ids and times that differ between two worlds (Hub.Mask).
	Effects func(t testing.TB) []string
	// Refuse makes the remote refuse its next call for good, as it would
	// (a 400, 404 or 422; Slack's restricted_action). Nil with
	// Features.NoRemote.
	Refuse func(t testing.TB)
}

// Features say where a projector departs from the contract, and why.
type Features struct {
	// NoRemote says why the projector has no remote to refuse it (the
	// timeline writes a store of its own): the refusal subtest is skipped
	// with this reason.
	NoRemote string
	// RecordsRefusals says where the projector records a refused effect
	// instead of dead-lettering its event (notify records a refused
	// notification on the incident): the refusal subtest then wants no
	// dead letter, and still wants the projector to go on.
	RecordsRefusals string
	// Departs names the subtests whose comparison with live is known to
	// fail, each with the reason (a defect not fixed yet): the difference
	// is logged instead of failing, and the subtest fails once it no
	// longer departs, so that the entry is removed with the fix.
	Departs map[string]string
}

// Life is one incident's life: its declaration, then commands.
type Life struct {
	Declare  incident.Declare
	Commands []incident.Command
}

// Declarations for the lives of a case: Ordinary is the default life's.
var (
	Ordinary = incident.Declare{Title: "Card payments failing", Service: "payments", Severity: "SEV2",
		Summary: "12% of authorisations fail", DeclaredBy: "alice"}
	Confidential = incident.Declare{Title: "Token leak", Service: "identity", Severity: "SEV2", Confidential: true}
	Drill        = incident.Declare{Title: "Game day: zone loss", Service: "search", Severity: "SEV3", Drill: true}
)

// LifeOf is the usual life of the incident d declares: escalated,
// commanded, identified, noted, resolved and closed.
func LifeOf(d incident.Declare) Life {
	return Life{Declare: d, Commands: []incident.Command{
		incident.ChangeSeverity{Severity: "SEV1", Reason: "every region now"},
		incident.AssignCommander{User: "bob"},
		incident.UpdateStatus{Status: "identified", Message: "expired gateway certificate"},
		incident.AddNote{Text: "rolled back to v41"},
		incident.UpdateStatus{Status: "resolved", Message: "certificate renewed"},
		incident.Close{Resolution: "renewed the certificate", LessonsLearned: "alert on expiry"},
	}}
}

// comparedWithLive are the subtests whose runs must end as the live one.
var comparedWithLive = []string{"ReplayFromTheStartEqualsLive", "RestartAfterEveryEventRepeatsNoEffect", "WipedLedgerRepeatsNoEffect"}

// TestProjector runs the contract's subtests on c.
func TestProjector(t *testing.T, c ProjectorCase) {
	t.Helper()
	if len(c.Lives) == 0 {
		c.Lives = []Life{LifeOf(Ordinary)}
	}
	for name := range c.Features.Departs {
		if !slices.Contains(comparedWithLive, name) {
			t.Fatalf("Features.Departs names %q, not one of the subtests compared with live %v", name, comparedWithLive)
		}
	}
	var live []string // the remote's effects, then the log's event types
	t.Run("Live", func(t *testing.T) { live = c.live(t) })
	if live == nil {
		t.Fatal("the live run failed: nothing to compare the other runs with")
	}
	t.Run("ReplayFromTheStartEqualsLive", func(t *testing.T) { c.replayFromTheStart(t, live) })
	t.Run("RestartAfterEveryEventRepeatsNoEffect", func(t *testing.T) { c.restartEveryEvent(t, live, false) })
	t.Run("WipedLedgerRepeatsNoEffect", func(t *testing.T) { c.restartEveryEvent(t, live, true) })
	t.Run("PermanentRefusalDeadLetters", c.permanentRefusal)
}

// play drives every life on w's hub, calling after once each event is
// stored.
func (c ProjectorCase) play(t *testing.T, w *World, after func()) {
	t.Helper()
	for _, l := range c.Lives {
		st := w.Hub.Declare(t, l.Declare)
		after()
		for _, cmd := range l.Commands {
			w.Hub.Do(t, st.ID, cmd)
			after()
		}
	}
}

// live runs the projector on its durable consumer while the lives happen,
// waiting for it after every event, and returns the effects.
func (c ProjectorCase) live(t *testing.T) []string {
	w := c.World(t)
	p := w.Projector(t)
	stop := w.Hub.Run(t, []projection.Projector{p})
	defer stop()
	c.play(t, w, func() { w.Hub.WaitIdle(t, p) })
	effects := w.Effects(t)
	if len(effects) == 0 {
		t.Fatal("the live run had no effect: the contract would check nothing")
	}
	out := w.outcome(t)
	t.Logf("live:\n%s", listFrom(out, 0, len(out)))
	return out
}

// replayFromTheStart: the lives happen with no projector running; then a
// new one starts on its consumer from the first event, into a fresh
// remote. It must do what following live did.
func (c ProjectorCase) replayFromTheStart(t *testing.T, live []string) {
	w := c.World(t)
	c.play(t, w, func() {})
	p := w.Projector(t)
	stop := w.Hub.Run(t, []projection.Projector{p})
	defer stop()
	w.Hub.WaitIdle(t, p)
	c.judge(t, "replayed from the start", w.outcome(t), live)
}

// restartEveryEvent: after every event, a new projector instance is handed
// every event from the first, on the same ledger and remote (a consumer
// that starts over, a process killed before its acks); with wipe the
// ledger is emptied before each instance starts (a crash after every side
// effect and before its record). The remote must end as live left it.
func (c ProjectorCase) restartEveryEvent(t *testing.T, live []string, wipe bool) {
	w := c.World(t)
	c.play(t, w, func() {
		if wipe {
			w.Hub.ForgetEffects(t)
		}
		w.Hub.DeliverAll(t, w.Projector(t))
	})
	what := "restarted after every event"
	if wipe {
		what += ", its ledger wiped each time"
	}
	c.judge(t, what, w.outcome(t), live)
}

// permanentRefusal: the remote refuses one call for good. The event goes
// to the dead-letter stream (or the refusal is recorded, RecordsRefusals)
// and the projector goes on with the next events.
func (c ProjectorCase) permanentRefusal(t *testing.T) {
	if c.Features.NoRemote != "" {
		t.Skip(c.Features.NoRemote)
	}
	w := c.World(t)
	p := w.Projector(t)
	stop := w.Hub.Run(t, []projection.Projector{p})
	defer stop()
	w.Refuse(t)
	c.play(t, w, func() { w.Hub.WaitIdle(t, p) })
	dead := w.Hub.DeadLetters(t, p.Durable)
	switch {
	case c.Features.RecordsRefusals != "" && len(dead) != 0:
		t.Errorf("%d events dead-lettered, want none: %s", len(dead), c.Features.RecordsRefusals)
	case c.Features.RecordsRefusals == "" && len(dead) != 1:
		t.Errorf("%d events dead-lettered, want the one whose call was refused", len(dead))
	}
	for _, m := range dead {
		if h := m.Header.Get("handler_poisoned"); h != p.Durable {
			t.Errorf("dead letter from handler %q, want %q", h, p.Durable)
		}
		if !strings.HasPrefix(m.Header.Get("hikeshi_subject"), events.IncidentSubjectPrefix+".") {
			t.Errorf("dead letter names no incident event: headers %v", m.Header)
		}
	}
	if len(w.Effects(t)) == 0 {
		t.Error("no effect after the refusal: the projector did not go on")
	}
}

// outcome is what a run left: the remote's effects and the log's events.
func (w *World) outcome(t testing.TB) []string {
	return append(w.Effects(t), w.Hub.logTypes(t)...)
}

// WaitIdle waits until projector p has handled and acknowledged every event
// of its stream, including those it appended itself meanwhile.
func (h *Hub) WaitIdle(t testing.TB, p projection.Projector) {
	t.Helper()
	stream, filter := streamOf(p)
	Eventually(t, p.Durable+" to handle every event", func() bool {
		return CaughtUp(h.Bus.JS, stream, p.Durable, filter)
	})
}

// CaughtUp reports whether the durable consumer has acknowledged the last
// message of stream in filter. The consumer's own pending count alone is
// not enough: right after an append it may still say 0 for a message not
// yet counted, so the stream's last matching sequence is the measure.
func CaughtUp(js jetstream.JetStream, stream, durable, filter string) bool {
	ctx := context.Background()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return false
	}
	info, err := s.Info(ctx)
	if err != nil {
		return false
	}
	var last uint64
	for seq := info.State.LastSeq; seq >= info.State.FirstSeq && seq > 0; seq-- {
		m, err := s.GetMsg(ctx, seq)
		if err == nil && SubjectMatches(filter, m.Subject) {
			last = seq
			break
		}
	}
	c, err := js.PushConsumer(ctx, stream, durable)
	if err != nil {
		return false
	}
	ci, err := c.Info(ctx)
	return err == nil && ci.AckFloor.Stream >= last && ci.NumAckPending == 0 && ci.NumRedelivered == 0
}

// DeliverAll hands p every event of its stream from the first, in order,
// as a projector whose consumer starts over sees them, then the events it
// appended meanwhile, until there are no more. A handler error fails t.
func (h *Hub) DeliverAll(t testing.TB, p projection.Projector) {
	t.Helper()
	stream, filter := streamOf(p)
	var done uint64
	for {
		var batch []events.Stored
		for _, e := range Stream(t, h.Bus.JS, stream) {
			if e.Seq > done && SubjectMatches(filter, e.Subject) {
				batch = append(batch, e)
			}
		}
		if len(batch) == 0 {
			return
		}
		ctx := context.Background()
		if p.HandleBatch != nil {
			if err := p.HandleBatch(ctx, batch); err != nil {
				t.Fatalf("%s: batch up to seq %d: %v", p.Durable, batch[len(batch)-1].Seq, err)
			}
		}
		for _, e := range batch {
			if p.Handle == nil {
				break
			}
			if err := p.Handle(ctx, e); err != nil {
				t.Fatalf("%s: seq %d %s: %v", p.Durable, e.Seq, e.Type, err)
			}
		}
		done = batch[len(batch)-1].Seq
	}
}

// DeadLetters returns the messages the runner dead-lettered for durable.
func (h *Hub) DeadLetters(t testing.TB, durable string) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx := context.Background()
	s, err := h.Bus.JS.Stream(ctx, natsjs.DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		if m.Subject == natsjs.DeadLetterPrefix+"."+durable {
			out = append(out, m)
		}
	}
	return out
}

// streamOf is the stream and filter p consumes, with the runner's defaults.
func streamOf(p projection.Projector) (stream, filter string) {
	stream, filter = p.Stream, p.Filter
	if stream == "" {
		stream = events.IncidentStream
	}
	if filter == "" {
		filter = events.IncidentSubjectPrefix + ".>"
	}
	return stream, filter
}

// SubjectMatches reports whether subject is in NATS filter (with * and >).
func SubjectMatches(filter, subject string) bool {
	f, s := strings.Split(filter, "."), strings.Split(subject, ".")
	for i, tok := range f {
		switch {
		case tok == ">":
			return len(s) > i
		case i >= len(s):
			return false
		case tok != "*" && tok != s[i]:
			return false
		}
	}
	return len(f) == len(s)
}

var (
	uuid      = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	clockTime = regexp.MustCompile(`(\d{4}-\d{2}-\d{2}[ T])?\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z| UTC)?`)
)

// Mask makes s comparable with its like from another world, where the
// same incidents have other ids and happen at another time: the id and
// codename of the n-th incident Declare declared become <incident n> and
// <codename n>, any other id (an event's) <id>, times of day <time>.
func (h *Hub) Mask(s string) string {
	for i, st := range h.declared {
		s = strings.ReplaceAll(s, st.ID, fmt.Sprintf("<incident %d>", i+1))
		if st.Codename != "" {
			s = strings.ReplaceAll(s, st.Codename, fmt.Sprintf("<codename %d>", i+1))
		}
	}
	return clockTime.ReplaceAllString(uuid.ReplaceAllString(s, "<id>"), "<time>")
}

// logTypes is how many events of each type the incident log holds: the
// lives' own and those the projector appended (a link, a fact), which a
// restart must not append twice.
func (h *Hub) logTypes(t testing.TB) []string {
	t.Helper()
	n := map[string]int{}
	for _, e := range Stream(t, h.Bus.JS, events.IncidentStream) {
		n[e.Type]++
	}
	var out []string
	for typ, k := range n {
		out = append(out, fmt.Sprintf("log: %d × %s", k, typ))
	}
	slices.Sort(out)
	return out
}

// judge compares a run's outcome with the live one, unless the subtest
// departs from it (Features.Departs).
func (c ProjectorCase) judge(t *testing.T, what string, got, live []string) {
	t.Helper()
	reason, departs := c.Features.Departs[t.Name()[strings.LastIndex(t.Name(), "/")+1:]]
	switch diff := difference(what, got, live); {
	case !departs && diff != "":
		t.Error(diff)
	case departs && diff == "":
		t.Errorf("%s: equal to live, though Features.Departs says %q: remove the entry", what, reason)
	case departs:
		t.Logf("departs from live as Features.Departs says (%s): %s", reason, diff)
	}
}

// difference shows got and want around their first difference; "" when
// they are equal.
func difference(what string, got, want []string) string {
	if slices.Equal(got, want) {
		return ""
	}
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	return fmt.Sprintf("%s: %d effects, live %d; first difference at %d:\n%s\nlive:\n%s", what, len(got), len(want), i,
		listFrom(got, i-2, i+8), listFrom(want, i-2, i+8))
}

// listFrom shows list[from:to], as far as it goes, with indexes.
func listFrom(list []string, from, to int) string {
	var b strings.Builder
	for j := max(0, from); j < len(list) && j < to; j++ {
		fmt.Fprintf(&b, "  %3d %q\n", j, list[j])
	}
	if b.Len() == 0 {
		return "  (none)\n"
	}
	return b.String()
}
