package timeline_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/adapters/natsjs/natstest"
	"github.com/hikeshi/hikeshi/adapters/postgres/pgtest"
	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/command"
	"github.com/hikeshi/hikeshi/services/incident"
	"github.com/hikeshi/hikeshi/services/integrationtest"
	"github.com/hikeshi/hikeshi/services/projection"
	"github.com/hikeshi/hikeshi/services/readmodel"
	"github.com/hikeshi/hikeshi/services/timeline"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// handler is a command handler on the test bus, as the API uses it.
func handler(t *testing.T, ctx context.Context, bus *natstest.Bus) *command.Handler {
	t.Helper()
	cases, err := natsjs.NewCases(ctx, bus.JS, "INC")
	if err != nil {
		t.Fatal(err)
	}
	return command.New(bus.Store, cases)
}

// populate declares incidents and runs random commands on them from a
// few concurrent writers. Refusals (a closed incident, a status that
// cannot go back) are part of normal traffic and ignored.
func populate(t *testing.T, ctx context.Context, h *command.Handler, incidents, commands int, seed uint64) []string {
	t.Helper()
	ids := make([]string, incidents)
	for i := range ids {
		st, err := h.Declare(ctx, incident.Declare{
			Title: fmt.Sprintf("incident %d/%d", seed, i), Service: fmt.Sprintf("svc-%d", i%5),
			Severity: string(events.Severities[i%5]), DeclaredBy: "oncall", Confidential: i%7 == 3,
		}, command.Meta{Actor: "oncall"})
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = st.ID
	}
	statuses := []string{"identified", "monitoring", "resolved", "investigating"}
	const writers = 4
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			for n := range commands / writers {
				id := ids[rng.IntN(len(ids))]
				var c incident.Command
				switch r := rng.IntN(100); {
				case r < 50:
					c = incident.AddNote{Text: fmt.Sprintf("note %d-%d-%d", seed, w, n)}
				case r < 65:
					c = incident.AssignCommander{User: fmt.Sprintf("user-%d", rng.IntN(6))}
				case r < 80:
					c = incident.ChangeSeverity{Severity: string(events.Severities[rng.IntN(5)]), Reason: "triage"}
				case r < 97:
					c = incident.UpdateStatus{Status: statuses[rng.IntN(len(statuses))], Message: "progress"}
				default:
					c = incident.Close{Resolution: "fixed", LessonsLearned: "more tests"}
				}
				_, err := h.Execute(ctx, id, c, command.Meta{Actor: fmt.Sprintf("writer-%d", w)})
				var ce *incident.ConflictError
				if err != nil && !errors.As(err, &ce) {
					t.Errorf("%#v on %s: %v", c, id, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return ids
}

// logBuffer collects the runner's log lines for failure messages and
// checks; it outlives the test safely, unlike t.Log.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// startRunner runs the timeline projector on its durable consumer, wired
// as services/hub wires it. stop closes the router and waits for Run.
func startRunner(t *testing.T, ctx context.Context, bus *natstest.Bus, store readmodel.Store, logs io.Writer) (stop func()) {
	t.Helper()
	return startRow(t, ctx, bus, timeline.New(store).Projection(), logs)
}

// startRow is startRunner for a projector row of the caller's.
func startRow(t *testing.T, ctx context.Context, bus *natstest.Bus, row projection.Projector, logs io.Writer) (stop func()) {
	t.Helper()
	runner, err := projection.New(ctx, projection.Config{
		Dial:   bus.Dial,
		JS:     bus.JS,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}, []projection.Projector{row})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- runner.Run(context.Background()) }()
	select {
	case <-runner.Running():
	case err := <-done:
		t.Fatalf("runner stopped before running: %v", err)
	case <-ctx.Done():
		t.Fatal("runner not running in time")
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			_ = runner.Close()
			select {
			case <-done:
			case <-time.After(15 * time.Second):
				t.Error("runner did not stop within 15s")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func lastSeq(t *testing.T, ctx context.Context, bus *natstest.Bus) uint64 {
	t.Helper()
	st, err := bus.JS.Stream(ctx, events.IncidentStream)
	if err != nil {
		t.Fatal(err)
	}
	return st.CachedInfo().State.LastSeq
}

// waitCaughtUp waits until the store's checkpoint is the stream's last
// sequence.
func waitCaughtUp(t *testing.T, ctx context.Context, bus *natstest.Bus, store readmodel.Store, logs fmt.Stringer) uint64 {
	t.Helper()
	want := lastSeq(t, ctx, bus)
	deadline := time.Now().Add(30 * time.Second)
	for {
		cp, err := store.Checkpoint(ctx, timeline.Name)
		if err != nil {
			t.Fatal(err)
		}
		if cp == want {
			return want
		}
		if cp > want {
			t.Fatalf("checkpoint %d is beyond the stream's last sequence %d", cp, want)
		}
		if time.Now().After(deadline) {
			t.Fatalf("timeline store at checkpoint %d, stream at %d after 30s; runner log:\n%s", cp, want, logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// backend is a database the timeline store runs on: the tests of the
// projector's contract run on each.
type backend struct {
	name string
	// where returns the place of a new, empty store: a file path or a
	// database URL.
	where func(t *testing.T) place
	// lose removes the closed store at p; copy makes the closed store at
	// to a copy of the one at from.
	lose func(t *testing.T, p place)
	copy func(t *testing.T, from, to place)
}

// place is where a store is: readmodel.Open's URL, else its SQLite path.
type place struct{ url, path string }

var backends = []backend{
	{
		name:  "sqlite",
		where: func(t *testing.T) place { return place{path: filepath.Join(t.TempDir(), "timeline.db")} },
		lose:  func(t *testing.T, p place) { removeDB(t, p.path) },
		copy: func(t *testing.T, from, to place) {
			removeDB(t, to.path)
			copyFile(t, from.path, to.path)
		},
	},
	{
		name:  "postgres",
		where: func(t *testing.T) place { return place{url: pgtest.Database(t)} },
		lose:  func(t *testing.T, p place) { pgtest.Copy(t, pgtest.Database(t), p.url) },
		copy:  func(t *testing.T, from, to place) { pgtest.Copy(t, from.url, to.url) },
	},
}

// eachBackend runs test on each backend.
func eachBackend(t *testing.T, test func(t *testing.T, b backend)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { test(t, b) })
	}
}

func openStore(t *testing.T, p place) readmodel.Store {
	t.Helper()
	st, err := readmodel.Open(context.Background(), p.url, p.path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func removeDB(t *testing.T, path string) {
	t.Helper()
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Remove(path + suffix); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
}

func dump(t *testing.T, ctx context.Context, st readmodel.Store) readmodel.Contents {
	t.Helper()
	c, err := st.Dump(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// sameContents reports the first difference between two stores.
func sameContents(t *testing.T, label string, got, want readmodel.Contents) {
	t.Helper()
	if reflect.DeepEqual(got, want) {
		return
	}
	if !reflect.DeepEqual(got.Checkpoints, want.Checkpoints) {
		t.Errorf("%s: checkpoints %v, want %v", label, got.Checkpoints, want.Checkpoints)
	}
	if len(got.Events) != len(want.Events) {
		t.Errorf("%s: %d event rows, want %d", label, len(got.Events), len(want.Events))
	}
	for i := range min(len(got.Events), len(want.Events)) {
		if got.Events[i] != want.Events[i] {
			t.Errorf("%s: event row %d:\n got  %+v\n want %+v", label, i, got.Events[i], want.Events[i])
			break
		}
	}
	if len(got.Incidents) != len(want.Incidents) {
		t.Errorf("%s: %d incident rows, want %d", label, len(got.Incidents), len(want.Incidents))
	}
	for i := range min(len(got.Incidents), len(want.Incidents)) {
		if got.Incidents[i] != want.Incidents[i] {
			t.Errorf("%s: incident row %d:\n got  %+v\n want %+v", label, i, got.Incidents[i], want.Incidents[i])
			break
		}
	}
	if !t.Failed() {
		t.Errorf("%s: stores differ", label)
	}
}

func readAll(t *testing.T, ctx context.Context, es *natsjs.Store) []events.Stored {
	t.Helper()
	var all []events.Stored
	if err := es.Read(ctx, natsjs.ReadOptions{}, func(e events.Stored) error {
		all = append(all, e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return all
}

// matchesStream checks the store against the stream itself: every event
// exactly once, in order, and every incident row equal to the domain's
// fold of that incident's events.
func matchesStream(t *testing.T, ctx context.Context, es *natsjs.Store, c readmodel.Contents) {
	t.Helper()
	matchesStreamUpTo(t, ctx, es, c, ^uint64(0))
}

// matchesStreamUpTo is matchesStream for the stream's events up to the
// sequence upTo.
func matchesStreamUpTo(t *testing.T, ctx context.Context, es *natsjs.Store, c readmodel.Contents, upTo uint64) {
	t.Helper()
	var all []events.Stored
	for _, e := range readAll(t, ctx, es) {
		if e.Seq <= upTo {
			all = append(all, e)
		}
	}
	if len(c.Events) != len(all) {
		t.Errorf("store holds %d events, stream %d", len(c.Events), len(all))
	}
	folded := map[string]*incident.State{}
	for i, e := range all {
		id, _ := events.IncidentID(e.Subject)
		if i < len(c.Events) {
			row := c.Events[i]
			if row.Seq != e.Seq || row.ID != e.ID || row.IncidentID != id || row.Type != e.Type {
				t.Errorf("event row %d is seq %d %s %s on %s, stream has seq %d %s %s on %s",
					i, row.Seq, row.ID, row.Type, row.IncidentID, e.Seq, e.ID, e.Type, id)
			}
		}
		if folded[id] == nil {
			folded[id] = &incident.State{}
		}
		if err := folded[id].Apply(e.Envelope, e.Seq); err != nil {
			t.Fatal(err)
		}
	}
	if len(c.Incidents) != len(folded) {
		t.Errorf("store holds %d incidents, stream %d", len(c.Incidents), len(folded))
	}
	for _, row := range c.Incidents {
		st := folded[row.ID]
		if st == nil {
			t.Errorf("store has incident %s, which the stream does not", row.ID)
			continue
		}
		want, _ := json.Marshal(st)
		if row.Snapshot != string(want) || row.Version != st.Version || row.Status != string(st.Status) || row.Open != st.Open() || row.CaseNumber != st.CaseNumber {
			t.Errorf("incident %s:\n store %+v\n fold  %s", row.ID, row, want)
		}
	}
	if cp := c.Checkpoints[timeline.Name]; len(all) > 0 && cp != all[len(all)-1].Seq {
		t.Errorf("checkpoint %d, stream's last sequence %d", cp, all[len(all)-1].Seq)
	}
}

// TestContract runs the contract every projector keeps on the timeline:
// its store replayed from the start into a fresh store, or fed from the
// start again after every event, holds the rows the live one holds.
func TestContract(t *testing.T) { eachBackend(t, testContract) }

func testContract(t *testing.T, b backend) {
	integrationtest.TestProjector(t, integrationtest.ProjectorCase{
		Lives: []integrationtest.Life{
			integrationtest.LifeOf(integrationtest.Ordinary),
			integrationtest.LifeOf(integrationtest.Confidential),
		},
		Features: integrationtest.Features{NoRemote: "the timeline writes a store of its own and calls no remote " +
			"that could refuse it; an event it cannot apply is dead-lettered by the runner (projection.TestBatchProjectorDeadLettersOnlyTheBadEvent)"},
		World: func(t *testing.T) *integrationtest.World {
			h := integrationtest.New(t, "")
			store := openStore(t, b.where(t))
			return &integrationtest.World{
				Hub:       h,
				Projector: func(testing.TB) projection.Projector { return timeline.New(store).Projection() },
				Effects:   func(t testing.TB) []string { return rows(t, h, store) },
			}
		},
	})
}

// rows is what the store holds, comparable across hubs.
func rows(t testing.TB, h *integrationtest.Hub, store readmodel.Store) []string {
	c, err := store.Dump(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := []string{fmt.Sprintf("checkpoints %v", c.Checkpoints)}
	for _, e := range c.Events {
		e.ID, e.Time = "", ""
		out = append(out, h.Mask(fmt.Sprintf("event %+v", e)))
	}
	for _, r := range c.Incidents {
		out = append(out, h.Mask(fmt.Sprintf("incident %+v", r)))
	}
	return out
}

// TestRebuildEqualsLiveProjection projects a few hundred events from
// concurrent writers live through the runner, rebuilds the store from the
// stream offline (hikeshi rebuild), and compares.
func TestRebuildEqualsLiveProjection(t *testing.T) { eachBackend(t, testRebuildEqualsLiveProjection) }

func testRebuildEqualsLiveProjection(t *testing.T, b backend) {
	ctx := testCtx(t)
	bus := natstest.Start(t)
	at := b.where(t)
	store := openStore(t, at)
	logs := &logBuffer{}
	stop := startRunner(t, ctx, bus, store, logs)
	populate(t, ctx, handler(t, ctx, bus), 20, 400, 1)
	last := waitCaughtUp(t, ctx, bus, store, logs)
	live := dump(t, ctx, store)
	if len(live.Events) < 300 || len(live.Incidents) != 20 {
		t.Fatalf("live store holds %d events over %d incidents; want a few hundred over 20", len(live.Events), len(live.Incidents))
	}
	matchesStream(t, ctx, bus.Store, live)
	stop()
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}

	rebuild, err := readmodel.OpenRebuild(ctx, at.url, at.path)
	if err != nil {
		t.Fatal(err)
	}
	stats, err := timeline.RebuildInto(ctx, bus.Store, rebuild, nil)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Events != len(live.Events) || stats.LastSeq != last {
		t.Errorf("rebuild: %d events up to %d, want %d up to %d", stats.Events, stats.LastSeq, len(live.Events), last)
	}
	for _, suffix := range []string{".rebuild", ".rebuild-wal", ".rebuild-shm"} {
		if _, err := os.Stat(at.path + suffix); at.path != "" && !os.IsNotExist(err) {
			t.Errorf("rebuild left %s behind (%v)", filepath.Base(at.path+suffix), err)
		}
	}
	rebuilt := dump(t, ctx, openStore(t, at))
	sameContents(t, "rebuilt vs live", rebuilt, live)
}

// TestApplyTwiceChangesNothing feeds the same events again, overlapping
// batches, and a cold projector: the checkpoint makes each a no-op.
func TestApplyTwiceChangesNothing(t *testing.T) { eachBackend(t, testApplyTwiceChangesNothing) }

func testApplyTwiceChangesNothing(t *testing.T, b backend) {
	ctx := testCtx(t)
	bus := natstest.Start(t)
	populate(t, ctx, handler(t, ctx, bus), 10, 200, 2)
	all := readAll(t, ctx, bus.Store)

	once := openStore(t, b.where(t))
	p := timeline.New(once)
	if err := p.Apply(ctx, all); err != nil {
		t.Fatal(err)
	}
	want := dump(t, ctx, once)
	matchesStream(t, ctx, bus.Store, want)

	if err := p.Apply(ctx, all); err != nil {
		t.Fatal(err)
	}
	sameContents(t, "same batch twice", dump(t, ctx, once), want)
	// A projector with nothing cached reads the snapshots back.
	if err := timeline.New(once).Apply(ctx, all); err != nil {
		t.Fatal(err)
	}
	sameContents(t, "same batch through a cold projector", dump(t, ctx, once), want)
	// The store alone refuses rows at or below its checkpoint.
	changes := make([]readmodel.Change, 0, len(all))
	for _, e := range all {
		changes = append(changes, readmodel.Change{Event: e, Data: json.RawMessage(`{"text":"must not be stored"}`), Incident: &readmodel.Row{ID: "bogus"}})
	}
	if n, err := once.Apply(ctx, timeline.Name, changes); err != nil || n != 0 {
		t.Errorf("store applied %d old changes (err %v), want 0", n, err)
	}
	sameContents(t, "old changes at the store", dump(t, ctx, once), want)

	// Overlapping batches, as redelivery after a crash produces them,
	// one event at a time through a cold projector each time.
	overlap := openStore(t, b.where(t))
	n := len(all)
	for _, r := range [][2]int{{0, n / 3}, {n / 4, n / 2}, {0, n / 2}, {n / 2, n}, {n / 3, n}} {
		if err := timeline.New(overlap).Apply(ctx, all[r[0]:r[1]]); err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range all[n-10:] {
		if err := timeline.New(overlap).Apply(ctx, []events.Stored{e}); err != nil {
			t.Fatal(err)
		}
	}
	sameContents(t, "overlapping batches", dump(t, ctx, overlap), want)
}

// TestLostStoreIsRefilled deletes the store under a stopped runner, and
// later puts back an old copy: at start the consumer is realigned to the
// store's checkpoint and the store catches up with every event exactly
// once.
func TestLostStoreIsRefilled(t *testing.T) { eachBackend(t, testLostStoreIsRefilled) }

func testLostStoreIsRefilled(t *testing.T, b backend) {
	ctx := testCtx(t)
	bus := natstest.Start(t)
	h := handler(t, ctx, bus)
	at, backup := b.where(t), b.where(t)
	logs := &logBuffer{}

	store := openStore(t, at)
	stop := startRunner(t, ctx, bus, store, logs)
	populate(t, ctx, h, 8, 150, 3)
	waitCaughtUp(t, ctx, bus, store, logs)
	stop()
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	b.copy(t, at, backup)

	// The store is lost; the consumer's ack floor is at the end of the stream.
	b.lose(t, at)
	store = openStore(t, at)
	stop = startRunner(t, ctx, bus, store, logs)
	waitCaughtUp(t, ctx, bus, store, logs)
	// And it keeps following new events.
	populate(t, ctx, h, 2, 60, 4)
	waitCaughtUp(t, ctx, bus, store, logs)
	matchesStream(t, ctx, bus.Store, dump(t, ctx, store))
	stop()
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}

	// An old copy of the store comes back: it is refilled from its own
	// checkpoint, not from the consumer's position.
	b.copy(t, backup, at)
	store = openStore(t, at)
	stop = startRunner(t, ctx, bus, store, logs)
	waitCaughtUp(t, ctx, bus, store, logs)
	matchesStream(t, ctx, bus.Store, dump(t, ctx, store))
	stop()

	if n := strings.Count(logs.String(), "realigning consumer"); n != 2 {
		t.Errorf("consumer realigned %d times, want 2 (lost store, old store); log:\n%s", n, logs)
	}
}

// TestFarBehindStoreCatchesUpFromTheStream: a store far behind the stream
// is filled by reading the stream itself, and its consumer then starts
// after the checkpoint instead of delivering the whole history again.
func TestFarBehindStoreCatchesUpFromTheStream(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := testCtx(t)
		bus := natstest.Start(t)
		h := handler(t, ctx, bus)
		logs := &logBuffer{}
		defer func(n uint64) { timeline.CatchUpAfter = n }(timeline.CatchUpAfter)
		timeline.CatchUpAfter = 100

		// A consumer that delivered a little, then a store that is lost.
		populate(t, ctx, h, 3, 20, 5)
		store := openStore(t, b.where(t))
		stop := startRunner(t, ctx, bus, store, logs)
		waitCaughtUp(t, ctx, bus, store, logs)
		stop()
		populate(t, ctx, h, 8, 300, 6)
		store = openStore(t, b.where(t))

		stop = startRow(t, ctx, bus, timeline.New(store).CatchUp(bus.Store), logs)
		last := waitCaughtUp(t, ctx, bus, store, logs)
		matchesStream(t, ctx, bus.Store, dump(t, ctx, store))
		c, err := bus.JS.PushConsumer(ctx, events.IncidentStream, timeline.Name)
		if err != nil {
			t.Fatal(err)
		}
		info, err := c.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.Config.OptStartSeq != last+1 || info.Delivered.Consumer != 0 {
			t.Errorf("consumer starts at %d and delivered %d events, want it to start after the caught-up checkpoint %d having delivered none; log:\n%s",
				info.Config.OptStartSeq, info.Delivered.Consumer, last, logs)
		}
		// And it follows what comes next.
		populate(t, ctx, h, 2, 40, 7)
		waitCaughtUp(t, ctx, bus, store, logs)
		matchesStream(t, ctx, bus.Store, dump(t, ctx, store))
		stop()
	})
}

// TestInterruptedCatchUpLosesNothing stops a catch-up between two of its
// transactions, as a crash would: the store holds exactly the events up to
// its checkpoint with their incident rows, and a catch-up started again
// (a new process) completes it, every event once.
func TestInterruptedCatchUpLosesNothing(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := testCtx(t)
		bus := natstest.Start(t)
		populate(t, ctx, handler(t, ctx, bus), 6, 400, 8)
		defer func(n uint64) { timeline.CatchUpAfter = n }(timeline.CatchUpAfter)
		timeline.CatchUpAfter = 1
		defer timeline.SetCatchUpBatch(16)()
		store := openStore(t, b.where(t))

		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stopping := &interrupting{Store: store, stopAt: 3, stop: cancel}
		_, err := timeline.New(stopping).CatchUp(bus.Store).CatchUp(cctx)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("catch-up stopped in its third transaction: %v, want context.Canceled", err)
		}
		c := dump(t, ctx, store)
		if cp := c.Checkpoints[timeline.Name]; cp == 0 || cp >= lastSeq(t, ctx, bus) {
			t.Fatalf("checkpoint %d after two transactions, stream at %d", cp, lastSeq(t, ctx, bus))
		}
		matchesStreamUpTo(t, ctx, bus.Store, c, c.Checkpoints[timeline.Name])

		if _, err := timeline.New(store).CatchUp(bus.Store).CatchUp(ctx); err != nil {
			t.Fatal(err)
		}
		matchesStream(t, ctx, bus.Store, dump(t, ctx, store))
	})
}

// interrupting is a store whose context is cancelled as it begins its
// stopAt-th transaction, as a process stops mid-way.
type interrupting struct {
	readmodel.Store
	begins, stopAt int
	stop           func()
}

func (s *interrupting) Begin(ctx context.Context, projector string) (*readmodel.Batch, error) {
	if s.begins++; s.begins == s.stopAt {
		s.stop()
	}
	return s.Store.Begin(ctx, projector)
}

// BulkWrite is the store's own, so that the catch-up writes as it does on it.
func (s *interrupting) BulkWrite(ctx context.Context, held, coming uint64) (func(context.Context) error, error) {
	if b, ok := s.Store.(interface {
		BulkWrite(context.Context, uint64, uint64) (func(context.Context) error, error)
	}); ok {
		return b.BulkWrite(ctx, held, coming)
	}
	return func(context.Context) error { return nil }, nil
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(from + "-wal"); err == nil {
		t.Fatalf("%s still has a write-ahead log after close", from)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestStrandedDeliveryDoesNotStall leaves deliveries of the projector's
// consumer unacknowledged by a subscriber that goes away, as a crash does.
// The runner must not wait for the server's AckWait (a minute) before the
// projection moves again.
func TestStrandedDeliveryDoesNotStall(t *testing.T) {
	ctx := testCtx(t)
	bus := natstest.Start(t)
	h := handler(t, ctx, bus)
	store := openStore(t, backends[0].where(t))
	logs := &logBuffer{}
	stop := startRunner(t, ctx, bus, store, logs)
	populate(t, ctx, h, 3, 40, 5)
	waitCaughtUp(t, ctx, bus, store, logs)
	stop()
	populate(t, ctx, h, 3, 40, 6)

	// A subscriber takes the next delivery and dies without acking it.
	cons, err := bus.JS.PushConsumer(ctx, events.IncidentStream, timeline.Name)
	if err != nil {
		t.Fatal(err)
	}
	cfg := cons.CachedInfo().Config
	nc, err := bus.Dial("doomed")
	if err != nil {
		t.Fatal(err)
	}
	sub, err := nc.QueueSubscribeSync(cfg.DeliverSubject, cfg.DeliverGroup)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sub.NextMsg(10 * time.Second); err != nil {
		t.Fatalf("no delivery to the doomed subscriber: %v", err)
	}
	nc.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err := cons.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.NumAckPending > 0 && !info.PushBound {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("consumer: %d pending, push bound %v; want stranded deliveries", info.NumAckPending, info.PushBound)
		}
		time.Sleep(20 * time.Millisecond)
	}

	start := time.Now()
	startRunner(t, ctx, bus, store, logs)
	waitCaughtUp(t, ctx, bus, store, logs) // fails after 30s, half the AckWait
	matchesStream(t, ctx, bus.Store, dump(t, ctx, store))
	t.Logf("caught up %s after restart", time.Since(start).Round(time.Millisecond))
	if !strings.Contains(logs.String(), "unacked_without_subscriber=true") {
		t.Errorf("the stranded delivery was not the reason to realign; log:\n%s", logs)
	}
}

// Two replicas write one store, each from a consumer of its own. When one
// restarts after the store's checkpoint, the events the other applied
// meanwhile are not delivered to it: its next row must still include them.
func TestReplicaRestartedAfterASharedCheckpointKeepsOthersEvents(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := testCtx(t)
		bus := natstest.Start(t)
		h := handler(t, ctx, bus)
		store := openStore(t, b.where(t))
		first, second := timeline.New(store), timeline.New(store)

		st, err := h.Declare(ctx, incident.Declare{Title: "shared", Service: "api", Severity: "SEV3", DeclaredBy: "oncall"}, command.Meta{Actor: "oncall"})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []incident.Command{incident.UpdateStatus{Status: "identified", Message: "found"}, incident.AssignCommander{User: "bob"}} {
			if _, err := h.Execute(ctx, st.ID, c, command.Meta{Actor: "oncall"}); err != nil {
				t.Fatal(err)
			}
		}
		evs := readAll(t, ctx, bus.Store)
		if len(evs) != 3 {
			t.Fatalf("%d events, want 3", len(evs))
		}
		for _, p := range []*timeline.Projector{first, second} {
			if err := p.Apply(ctx, evs[:1]); err != nil {
				t.Fatal(err)
			}
		}
		// The first replica applies the status change; the second's
		// consumer is made again after the checkpoint, past it.
		if err := first.Apply(ctx, evs[1:2]); err != nil {
			t.Fatal(err)
		}
		if restarted := second.Projection().Restarted; restarted != nil {
			restarted()
		}
		if err := second.Apply(ctx, evs[2:]); err != nil {
			t.Fatal(err)
		}
		raw, err := store.Snapshot(ctx, st.ID)
		if err != nil {
			t.Fatal(err)
		}
		var got incident.State
		if err := json.Unmarshal(raw, &got); err != nil {
			t.Fatal(err)
		}
		if got.Status != "identified" || got.Commander != "bob" {
			t.Errorf("row after the second replica's restart: status %q, commander %q; want identified and bob", got.Status, got.Commander)
		}
	})
}
