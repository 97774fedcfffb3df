package command_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/adapters/natsjs/natstest"
	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/command"
	"github.com/hikeshi/hikeshi/services/incident"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// replica is one hub process: its own connection, store binding, case
// allocator and command cache, over the shared bus.
func replica(t *testing.T, bus *natstest.Bus, name string, opts ...command.Option) *command.Handler {
	t.Helper()
	h, _ := replicaConn(t, bus, name, opts...)
	return h
}

// replicaConn is replica with its connection, for a test that closes it.
func replicaConn(t *testing.T, bus *natstest.Bus, name string, opts ...command.Option) (*command.Handler, *nats.Conn) {
	t.Helper()
	ctx := context.Background()
	nc, err := bus.Dial(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := natsjs.NewStore(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	cases, err := natsjs.NewCases(ctx, js, "INC")
	if err != nil {
		t.Fatal(err)
	}
	return command.New(st, cases, append([]command.Option{command.Source("urn:hikeshi:" + name)}, opts...)...), nc
}

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func declare(t *testing.T, ctx context.Context, h *command.Handler, title string) incident.State {
	t.Helper()
	st, err := h.Declare(ctx, incident.Declare{Title: title, Service: "checkout", Severity: "SEV3", DeclaredBy: "alice"}, command.Meta{Actor: "alice"})
	if err != nil {
		t.Fatalf("declare %q: %v", title, err)
	}
	return st
}

// fold rebuilds an incident from the stream, one event after another.
func fold(t *testing.T, ctx context.Context, store *natsjs.Store, id string) (incident.State, []events.Stored) {
	t.Helper()
	stored, err := store.Load(ctx, id, 0)
	if err != nil {
		t.Fatalf("load %s: %v", id, err)
	}
	var st incident.State
	for _, e := range stored {
		if err := st.Apply(e.Envelope, e.Seq); err != nil {
			t.Fatalf("fold %s seq %d: %v", id, e.Seq, err)
		}
	}
	return st, stored
}

func sameState(t *testing.T, label string, got, want incident.State) {
	t.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if string(g) != string(w) {
		t.Errorf("%s differs from the stream's fold:\n got  %s\n want %s", label, g, w)
	}
}

func dataJSON(t *testing.T, d events.Data) string {
	t.Helper()
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

type outcome struct {
	cmd incident.Command
	st  incident.State
	err error
}

// TestConcurrentCommandsOnOneIncident runs 50 writers on two replicas
// against one incident and checks that nothing is lost or decided on a
// stale state.
func TestConcurrentCommandsOnOneIncident(t *testing.T) {
	ctx := testCtx(t)
	bus := natstest.Start(t)
	hs := []*command.Handler{replica(t, bus, "replica-a"), replica(t, bus, "replica-b")}
	id := declare(t, ctx, hs[0], "payments down").ID
	// Both replicas have the incident cached before the race starts, so
	// the second one works from a stale cache as soon as the first writes.
	for _, h := range hs {
		if _, err := h.Get(ctx, id); err != nil {
			t.Fatal(err)
		}
	}

	const workers, perWorker = 50, 4
	var (
		mu       sync.Mutex
		outcomes []outcome
		wg       sync.WaitGroup
		start    = make(chan struct{})
	)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := hs[w%2]
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			<-start
			for n := range perWorker {
				var c incident.Command
				switch (w + n) % 5 {
				case 0, 1, 2:
					c = incident.AddNote{Text: fmt.Sprintf("note-%d-%d", w, n)}
				case 3:
					c = incident.AssignCommander{User: fmt.Sprintf("user-%d-%d", w, n)}
				default:
					c = incident.ChangeSeverity{Severity: string(events.Severities[rng.IntN(len(events.Severities))]), Reason: fmt.Sprintf("worker %d", w)}
				}
				st, err := h.Execute(ctx, id, c, command.Meta{Actor: fmt.Sprintf("worker-%d", w)})
				mu.Lock()
				outcomes = append(outcomes, outcome{cmd: c, st: st, err: err})
				mu.Unlock()
			}
		}()
	}
	close(start)
	wg.Wait()

	var ok []outcome
	notes, refusals := 0, 0
	for _, o := range outcomes {
		if o.err == nil {
			ok = append(ok, o)
			if _, isNote := o.cmd.(incident.AddNote); isNote {
				notes++
			}
			continue
		}
		var ce *incident.ConflictError
		_, isSeverity := o.cmd.(incident.ChangeSeverity)
		if !errors.As(o.err, &ce) || !isSeverity {
			t.Errorf("%#v failed with %v; only a severity change to the current severity may be refused", o.cmd, o.err)
			continue
		}
		refusals++
	}
	t.Logf("%d commands: %d stored, %d refused (severity already set)", len(outcomes), len(ok), refusals)

	folded, stored := fold(t, ctx, bus.Store, id)
	for i, h := range hs {
		got, err := h.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		sameState(t, fmt.Sprintf("replica %d Get", i), got, folded)
	}
	if folded.Notes != notes {
		t.Errorf("stream holds %d notes, %d AddNote calls succeeded", folded.Notes, notes)
	}
	if len(stored) != 1+len(ok) {
		t.Errorf("stream holds %d events for the incident, want 1 declared + %d successful commands", len(stored), len(ok))
	}

	bySeq := map[uint64]events.Stored{}
	for _, e := range stored {
		bySeq[e.Seq] = e
	}
	claimed := map[uint64]int{}
	for _, o := range ok {
		claimed[o.st.Version]++
		if _, found := bySeq[o.st.Version]; !found {
			t.Errorf("%#v returned version %d, which is not an event of the incident", o.cmd, o.st.Version)
		}
	}
	for seq, n := range claimed {
		if n != 1 {
			t.Errorf("version %d was returned by %d successful commands, want 1", seq, n)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// Serial equivalence: the successful commands, replayed one by one in
	// stream order through a fresh model, decide exactly the stored events.
	slices.SortFunc(ok, func(a, b outcome) int { return int(a.st.Version) - int(b.st.Version) })
	var model incident.State
	if err := model.Apply(stored[0].Envelope, stored[0].Seq); err != nil {
		t.Fatal(err)
	}
	for _, o := range ok {
		ev := bySeq[o.st.Version]
		want, err := ev.Decode()
		if err != nil {
			t.Fatal(err)
		}
		got, err := o.cmd.Decide(&model)
		if err != nil {
			t.Fatalf("seq %d: %#v is refused by the sequential model: %v (decided on a stale state?)", ev.Seq, o.cmd, err)
		}
		if g, w := dataJSON(t, got), dataJSON(t, want); g != w {
			t.Fatalf("seq %d: sequential model decides %s %s, the stream holds %s %s", ev.Seq, got.EventType(), g, ev.Type, w)
		}
		if err := model.Apply(ev.Envelope, ev.Seq); err != nil {
			t.Fatal(err)
		}
	}
	sameState(t, "sequential model", model, folded)
}

func TestIdempotencyKey(t *testing.T) {
	ctx := testCtx(t)
	bus := natstest.Start(t)
	a, b := replica(t, bus, "replica-a"), replica(t, bus, "replica-b")
	id := declare(t, ctx, a, "disk full").ID
	if _, err := b.Get(ctx, id); err != nil { // b caches version 1
		t.Fatal(err)
	}
	m := command.Meta{Actor: "bob", Key: "note-1"}
	first, err := a.Execute(ctx, id, incident.AddNote{Text: "rebooted"}, m)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		h    *command.Handler
	}{{"same replica", a}, {"other replica with a stale cache", b}} {
		again, err := tc.h.Execute(ctx, id, incident.AddNote{Text: "rebooted"}, m)
		if err != nil {
			t.Fatalf("%s: retry: %v", tc.name, err)
		}
		if again.Version != first.Version || again.Notes != 1 {
			t.Errorf("%s: retry answered version %d with %d notes, want version %d with 1 note", tc.name, again.Version, again.Notes, first.Version)
		}
	}
	folded, stored := fold(t, ctx, bus.Store, id)
	if len(stored) != 2 || folded.Notes != 1 {
		t.Fatalf("stream holds %d events (%d notes), want declared + 1 note", len(stored), folded.Notes)
	}
	if want := events.DeriveID("event", id, m.Key); stored[1].ID != want {
		t.Errorf("note event id %s, want %s derived from the key", stored[1].ID, want)
	}

	// A declare with a key is repeatable too: same incident, same case
	// number, no second allocation.
	dm := command.Meta{Actor: "alice", Key: "declare-1"}
	dc := incident.Declare{Title: "api errors", Service: "api", Severity: "SEV2", DeclaredBy: "alice"}
	d1, err := a.Declare(ctx, dc, dm)
	if err != nil {
		t.Fatal(err)
	}
	d2, err := b.Declare(ctx, dc, dm)
	if err != nil {
		t.Fatal(err)
	}
	if d1.ID != d2.ID || d1.CaseNumber != d2.CaseNumber || d2.Version != d1.Version {
		t.Errorf("repeated declare: %s %s v%d, then %s %s v%d", d1.ID, d1.CaseNumber, d1.Version, d2.ID, d2.CaseNumber, d2.Version)
	}
	if d3 := declare(t, ctx, b, "next one"); d3.CaseNumber != "INC-3" {
		t.Errorf("next declare got %s, want INC-3 (the repeated declare must not allocate)", d3.CaseNumber)
	}
}

func TestExpectVersion(t *testing.T) {
	ctx := testCtx(t)
	bus := natstest.Start(t)
	a, b := replica(t, bus, "replica-a"), replica(t, bus, "replica-b")
	st := declare(t, ctx, a, "queue backlog")
	declared := st.Version
	if _, err := b.Get(ctx, st.ID); err != nil {
		t.Fatal(err)
	}
	st, err := a.Execute(ctx, st.ID, incident.AddNote{Text: "first"}, command.Meta{Actor: "a"})
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []*command.Handler{a, b} {
		_, err := h.Execute(ctx, st.ID, incident.AddNote{Text: "stale"}, command.Meta{Actor: "a", ExpectVersion: declared})
		if !errors.Is(err, command.ErrVersionConflict) {
			t.Fatalf("If-Match %d on version %d: got %v, want ErrVersionConflict", declared, st.Version, err)
		}
	}
	// b's cache is stale, but an If-Match is checked against the stream.
	got, err := b.Execute(ctx, st.ID, incident.AddNote{Text: "current"}, command.Meta{Actor: "b", ExpectVersion: st.Version})
	if err != nil {
		t.Fatalf("If-Match with the current version: %v", err)
	}
	folded, stored := fold(t, ctx, bus.Store, st.ID)
	if len(stored) != 3 || folded.Notes != 2 || got.Version != folded.Version {
		t.Errorf("stream: %d events, %d notes, version %d; want 3 events, 2 notes, version %d", len(stored), folded.Notes, folded.Version, got.Version)
	}
}

func TestUnknownIncident(t *testing.T) {
	ctx := testCtx(t)
	bus := natstest.Start(t)
	h := replica(t, bus, "replica-a")
	for _, id := range []string{events.NewID(), "not.a.subject", ""} {
		if _, err := h.Execute(ctx, id, incident.AddNote{Text: "x"}, command.Meta{Actor: "a"}); !errors.Is(err, incident.ErrNotFound) {
			t.Errorf("Execute(%q): got %v, want incident.ErrNotFound", id, err)
		}
		if _, err := h.Get(ctx, id); !errors.Is(err, incident.ErrNotFound) {
			t.Errorf("Get(%q): got %v, want incident.ErrNotFound", id, err)
		}
	}
	info, err := bus.JS.Stream(ctx, events.IncidentStream)
	if err != nil {
		t.Fatal(err)
	}
	if n := info.CachedInfo().State.Msgs; n != 0 {
		t.Errorf("stream holds %d events after commands on unknown incidents, want 0", n)
	}
}

func TestDeclareCaseNumbers(t *testing.T) {
	ctx := testCtx(t)
	bus := natstest.Start(t)
	hs := []*command.Handler{replica(t, bus, "replica-a"), replica(t, bus, "replica-b")}
	for i, want := range []string{"INC-1", "INC-2"} {
		if st := declare(t, ctx, hs[i%2], want); st.CaseNumber != want {
			t.Fatalf("declare %d: case %s, want %s", i+1, st.CaseNumber, want)
		}
	}
	const n = 20
	cases := make([]string, n)
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			st, err := hs[i%2].Declare(ctx, incident.Declare{Title: fmt.Sprintf("concurrent %d", i), Service: "edge", Severity: "SEV4", DeclaredBy: "bot"}, command.Meta{Actor: "bot"})
			if err != nil {
				t.Errorf("declare %d: %v", i, err)
				return
			}
			cases[i], ids[i] = st.CaseNumber, st.ID
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	var want []string
	for i := 3; i < 3+n; i++ {
		want = append(want, fmt.Sprintf("INC-%d", i))
	}
	got := slices.Clone(cases)
	slices.SortFunc(got, cmpCase)
	if !slices.Equal(got, want) {
		t.Errorf("concurrent declares got case numbers %v, want each of %v once", got, want)
	}
	// The stream agrees with what the callers were told.
	for i, id := range ids {
		st, _ := fold(t, ctx, bus.Store, id)
		if st.CaseNumber != cases[i] {
			t.Errorf("incident %s: stream says %s, caller was told %s", id, st.CaseNumber, cases[i])
		}
	}
}

// cmpCase orders INC-9 before INC-10.
func cmpCase(a, b string) int {
	var x, y int
	fmt.Sscanf(a, "INC-%d", &x)
	fmt.Sscanf(b, "INC-%d", &y)
	return x - y
}

func TestConfidentialDeclareGetsCodename(t *testing.T) {
	ctx := testCtx(t)
	bus := natstest.Start(t)
	h := replica(t, bus, "replica-a")
	st, err := h.Declare(ctx, incident.Declare{Title: "credential leak", Service: "auth", Severity: "SEV1", DeclaredBy: "sec", Confidential: true}, command.Meta{Actor: "sec"})
	if err != nil {
		t.Fatal(err)
	}
	if st.Codename == "" || st.Codename != incident.Codename(st.ID) {
		t.Fatalf("codename %q, want %q derived from the id", st.Codename, incident.Codename(st.ID))
	}
	if st.DisplayTitle() != st.Codename {
		t.Errorf("display title %q, want the codename %q", st.DisplayTitle(), st.Codename)
	}
	folded, stored := fold(t, ctx, bus.Store, st.ID)
	if !folded.Confidential || folded.Codename != st.Codename {
		t.Errorf("stream: confidential=%v codename %q, want true %q", folded.Confidential, folded.Codename, st.Codename)
	}
	var d events.Declared
	if err := json.Unmarshal(stored[0].Data, &d); err != nil {
		t.Fatal(err)
	}
	if d.Codename != st.Codename {
		t.Errorf("declared event carries codename %q, want %q", d.Codename, st.Codename)
	}
	plain := declare(t, ctx, h, "not secret")
	if plain.Codename != "" {
		t.Errorf("non-confidential incident got codename %q", plain.Codename)
	}
}

// An integration result is visible in the state the writer returns and
// caches, not only after a reload from the stream.
func TestRecordLinkShowsInState(t *testing.T) {
	ctx := testCtx(t)
	bus := natstest.Start(t)
	a := replica(t, bus, "replica-a")
	st := declare(t, ctx, a, "link me")
	link := incident.RecordLink{Type: events.TypeSlackChannelLinked, Linked: events.Linked{System: "slack", Ref: "C42", Name: "#inc-1"}}
	got, err := a.Execute(ctx, st.ID, link, command.Meta{Actor: "slack", Key: "link-1"})
	if err != nil {
		t.Fatal(err)
	}
	if got.Links["slack"].Ref != "C42" {
		t.Fatalf("returned state links %v, want slack C42", got.Links)
	}
	again, err := a.Get(ctx, st.ID)
	if err != nil || again.Links["slack"].Ref != "C42" {
		t.Fatalf("cached state links %v (%v), want slack C42", again.Links, err)
	}
}

// A case number resolves on another replica the moment it is allocated,
// through the index on JetStream; one the index lacks is asked of the
// fallback (the timeline); ids pass through; anything else is not found.
func TestResolveCaseNumbers(t *testing.T) {
	ctx := testCtx(t)
	bus := natstest.Start(t)
	a, b := replica(t, bus, "replica-a"), replica(t, bus, "replica-b")
	st := declare(t, ctx, a, "resolve me")
	for _, ref := range []string{st.CaseNumber, strings.ToLower(st.CaseNumber), st.ID} {
		if got, err := b.Resolve(ctx, ref); err != nil || got != st.ID {
			t.Fatalf("Resolve(%q) on the other replica = %q, %v; want %q", ref, got, err, st.ID)
		}
	}
	for _, ref := range []string{"INC-999", "not an id", ""} {
		if _, err := b.Resolve(ctx, ref); !errors.Is(err, incident.ErrNotFound) {
			t.Fatalf("Resolve(%q): %v, want ErrNotFound", ref, err)
		}
	}
	cases, err := natsjs.NewCases(ctx, bus.JS, "INC")
	if err != nil {
		t.Fatal(err)
	}
	withFallback := command.New(bus.Store, cases, command.CaseFallback(func(_ context.Context, number string) (string, error) {
		if number == "INC-999" {
			return "from-the-timeline", nil
		}
		return "", errors.New("not in the timeline either")
	}))
	if got, err := withFallback.Resolve(ctx, "INC-999"); err != nil || got != "from-the-timeline" {
		t.Fatalf("fallback: %q, %v", got, err)
	}
	if _, err := withFallback.Resolve(ctx, "INC-998"); !errors.Is(err, incident.ErrNotFound) {
		t.Fatalf("unknown everywhere: %v, want ErrNotFound", err)
	}
}

// TestAllowIsAskedOnTheStateDecidedOn: a command's Allow sees the state the
// command is decided on. A replica whose cache is stale (another replica
// assigned a new commander) looks again before refusing, and a refusal
// appends nothing.
func TestAllowIsAskedOnTheStateDecidedOn(t *testing.T) {
	ctx := testCtx(t)
	bus := natstest.Start(t)
	a, b := replica(t, bus, "replica-a"), replica(t, bus, "replica-b")
	st := declare(t, ctx, a, "payroll exfiltration")
	if _, err := b.Get(ctx, st.ID); err != nil { // b caches the incident without a commander
		t.Fatal(err)
	}
	if _, err := a.Execute(ctx, st.ID, incident.AssignCommander{User: "dana"}, command.Meta{Actor: "a"}); err != nil {
		t.Fatal(err)
	}
	errNotCommander := errors.New("not the commander")
	onlyDana := func(s incident.State) error {
		if s.Commander != "dana" {
			return errNotCommander
		}
		return nil
	}
	if _, err := b.Execute(ctx, st.ID, incident.AddNote{Text: "from dana"}, command.Meta{Actor: "dana", Allow: onlyDana}); err != nil {
		t.Fatalf("dana, commander on the stream but not in b's cache: %v", err)
	}
	refuse := func(incident.State) error { return errNotCommander }
	if _, err := b.Execute(ctx, st.ID, incident.AddNote{Text: "refused"}, command.Meta{Actor: "eve", Allow: refuse}); !errors.Is(err, errNotCommander) {
		t.Fatalf("a refused command: %v", err)
	}
	if folded, _ := fold(t, ctx, bus.Store, st.ID); folded.Notes != 1 {
		t.Fatalf("%d notes on the stream, want 1", folded.Notes)
	}
}
