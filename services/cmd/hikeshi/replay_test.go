package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/adapters/jiratest"
	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/adapters/natsjs/natstest"
	"github.com/hikeshi/hikeshi/adapters/postgres/pgtest"
	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/integrationtest"
	"github.com/hikeshi/hikeshi/services/readmodel"
	"github.com/nats-io/nats.go/jetstream"
)

// hikeshiRun runs the hikeshi binary to completion and returns its exit
// code and output.
func hikeshiRun(t *testing.T, ctx context.Context, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.CommandContext(ctx, hikeshiBinary(t), args...)
	cmd.Env = cleanEnv()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("hikeshi %s: %v", strings.Join(args, " "), err)
	}
	return code, out.String(), errb.String()
}

// TestReplayTimeline checks that `hikeshi replay timeline` refuses to
// touch a data dir a running hub owns, and rebuilds it once the hub is
// stopped: in SQLite under the data dir, and in PostgreSQL (--store).
func TestReplayTimeline(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the hikeshi binary")
	}
	t.Run("sqlite", func(t *testing.T) {
		testReplayTimeline(t, nil, func(dataDir string) string { return filepath.Join(dataDir, "timeline.db") })
	})
	t.Run("postgres", func(t *testing.T) {
		db, err := url.Parse(pgtest.Database(t))
		if err != nil {
			t.Fatal(err)
		}
		where := fmt.Sprintf("postgres://%s%s (schema timeline)", db.Host, db.Path)
		testReplayTimeline(t, []string{"--store", db.String()}, func(string) string { return where })
	})
}

// testReplayTimeline runs the replay test with the hub's store flags; where
// is the store replay says it rebuilt.
func testReplayTimeline(t *testing.T, store []string, where func(dataDir string) string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dataDir := t.TempDir()
	h := startHub(t, dataDir, store...)
	id := declareIncident(t, ctx, h.base)
	const notes = 10
	for i := range notes {
		status, body, err := post(ctx, h.base, "/api/v1/incidents/"+id+"/notes", "", map[string]string{"text": fmt.Sprintf("note %d", i)})
		if err != nil || status != http.StatusOK {
			t.Fatalf("note %d: %d %s %v", i, status, body, err)
		}
	}
	before := waitTimeline(t, ctx, h, id)

	code, stdout, stderr := hikeshiRun(t, ctx, append([]string{"replay", "timeline", "--data-dir", dataDir}, store...)...)
	if code != 1 || !strings.Contains(stderr, "in use by another hikeshi process") || !strings.Contains(stderr, "stop the hub") {
		t.Fatalf("replay while the hub runs: exit %d, stdout %q, stderr %q; want exit 1 and a data dir in use message", code, stdout, stderr)
	}
	// The hub is unharmed: its store still answers and still follows.
	status, body, err := post(ctx, h.base, "/api/v1/incidents/"+id+"/notes", "", map[string]string{"text": "after refused replay"})
	if err != nil || status != http.StatusOK {
		t.Fatalf("note after refused replay: %d %s %v", status, body, err)
	}
	before = waitTimeline(t, ctx, h, id)
	if len(before.Events) != notes+2 {
		t.Fatalf("timeline has %d events, want %d", len(before.Events), notes+2)
	}
	h.stop()

	code, stdout, stderr = hikeshiRun(t, ctx, append([]string{"replay", "timeline", "--data-dir", dataDir}, store...)...)
	if code != 0 {
		t.Fatalf("replay after the hub stopped: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	m := regexp.MustCompile(`rebuilt (.+): (\d+) events up to stream sequence (\d+) in `).FindStringSubmatch(stdout)
	if m == nil {
		t.Fatalf("replay printed %q; want 'rebuilt PATH: N events up to stream sequence S in …'", stdout)
	}
	n, _ := strconv.Atoi(m[2])
	seq, _ := strconv.ParseUint(m[3], 10, 64)
	if m[1] != where(dataDir) || n != len(before.Events) || seq != before.Version {
		t.Errorf("replay rebuilt %s with %d events up to %d; want %s with %d up to %d",
			m[1], n, seq, where(dataDir), len(before.Events), before.Version)
	}

	// A hub on the rebuilt store serves the same timeline, fed once.
	h = startHub(t, dataDir, store...)
	after := waitTimeline(t, ctx, h, id)
	if len(after.Events) != len(before.Events) {
		t.Fatalf("after replay the timeline has %d events, before %d", len(after.Events), len(before.Events))
	}
	for i := range after.Events {
		if a, b := after.Events[i], before.Events[i]; a.Seq != b.Seq || a.ID != b.ID || a.Type != b.Type || !bytes.Equal(a.Data, b.Data) {
			t.Errorf("event %d after replay %+v, before %+v", i, a, b)
		}
	}
	h.stop()

	if code, _, stderr := hikeshiRun(t, ctx, "replay", "timelines", "--data-dir", dataDir); code != 2 || !strings.Contains(stderr, `unknown consumer "timelines"; the consumers are timeline`) {
		t.Errorf("replay of an unknown consumer: exit %d (%s), want 2 and the consumers listed", code, stderr)
	}
	if code, _, stderr := hikeshiRun(t, ctx, "replay", "timeline", "--from-seq", "3", "--data-dir", dataDir); code != 2 || !strings.Contains(stderr, "--from-seq does not apply") {
		t.Errorf("replay timeline --from-seq: exit %d (%s), want 2 and why", code, stderr)
	}
}

// jiraWrites counts the cases and comments the JIRA fake was asked to make.
func jiraWrites(fake *jiratest.Server) (cases, comments int) {
	_, calls := fake.Snapshot()
	for _, c := range calls {
		switch {
		case c.Method != http.MethodPost:
		case c.Path == "/rest/api/2/issue":
			cases++
		case strings.HasSuffix(c.Path, "/comment"):
			comments++
		}
	}
	return cases, comments
}

// jiraConsumer reads the jira projector's durable consumer with the hub
// stopped.
func jiraConsumer(t *testing.T, ctx context.Context, dataDir string) *jetstream.ConsumerInfo {
	t.Helper()
	bus := natstest.StartIn(t, filepath.Join(dataDir, "nats"))
	defer bus.Stop()
	c, err := bus.JS.PushConsumer(ctx, events.IncidentStream, "jira")
	if err != nil {
		t.Fatal(err)
	}
	return c.CachedInfo()
}

// forgetJira empties the effects ledger and deletes the jira projector's
// consumer, with the hub stopped.
func forgetJira(t *testing.T, ctx context.Context, dataDir string) {
	t.Helper()
	bus := natstest.StartIn(t, filepath.Join(dataDir, "nats"))
	defer bus.Stop()
	if err := bus.JS.DeleteConsumer(ctx, events.IncidentStream, "jira"); err != nil {
		t.Fatal(err)
	}
	kv, err := bus.JS.KeyValue(ctx, natsjs.EffectsBucket)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := kv.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for k := range keys.Keys() {
		if err := kv.Purge(ctx, k); err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n == 0 {
		t.Fatal("the effects ledger was empty: the jira projector recorded nothing")
	}
}

var replayedRe = regexp.MustCompile(`replayed jira: (\d+) events from stream sequence (\d+) up to (\d+) in `)

// TestReplayJiraMakesNoSecondCaseOrComment replays the jira projector over
// events it has handled, from the start and from the middle of the
// stream: the JIRA fake is asked for no second case and no second comment,
// and the next hub continues after the replayed events.
func TestReplayJiraMakesNoSecondCaseOrComment(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the hikeshi binary")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const token = "replay-jira-token"
	t.Setenv("REPLAY_TEST_JIRA_TOKEN", token)
	fake := jiratest.New(t, "Bearer "+token)
	conf := filepath.Join(t.TempDir(), "hikeshi.yaml")
	yaml := "jira:\n  base_url: " + fake.URL + "\n  token_env: REPLAY_TEST_JIRA_TOKEN\n  project: OPS\n"
	if err := os.WriteFile(conf, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	h := startHub(t, dataDir, "--config", conf)
	id := declareIncident(t, ctx, h.base)
	if status, body, err := post(ctx, h.base, "/api/v1/incidents/"+id+"/notes", "", map[string]string{"text": "rolled back"}); err != nil || status != http.StatusOK {
		t.Fatalf("note: %d %s %v", status, body, err)
	}
	integrationtest.Eventually(t, "the case and the note's comment", func() bool {
		issues, _ := fake.Snapshot()
		return len(issues) == 1 && len(issues[0].Comments) == 1
	})
	// The case's link is the incident's last event.
	var tl timelineView
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		tl = waitTimeline(t, ctx, h, id)
		if tl.Events[len(tl.Events)-1].Type == events.TypeJiraCaseLinked || time.Now().After(deadline) {
			break
		}
	}
	last := tl.Version

	code, stdout, stderr := hikeshiRun(t, ctx, "replay", "jira", "--data-dir", dataDir, "--config", conf)
	if code != 1 || !strings.Contains(stderr, "in use by another hikeshi process") || !strings.Contains(stderr, "stop the hub") {
		t.Fatalf("replay while the hub runs: exit %d, stdout %q, stderr %q; want exit 1 and a data dir in use message", code, stdout, stderr)
	}
	h.stop()
	if c := jiraConsumer(t, ctx, dataDir); c.AckFloor.Stream != last || c.NumPending != 0 {
		t.Fatalf("before the replay the jira consumer stands at %d with %d pending; want every event up to %d handled", c.AckFloor.Stream, c.NumPending, last)
	}
	cases, comments := jiraWrites(fake)
	code, _, stderr = hikeshiRun(t, ctx, "replay", "jria", "--data-dir", dataDir, "--config", conf)
	if want := `unknown consumer "jria"; the consumers are jira, timeline (modules not configured in hikeshi.yaml: github, notify, public, signals, slack)`; code != 2 || !strings.Contains(stderr, want) {
		t.Errorf("replay of an unknown consumer: exit %d, stderr %q; want 2 and %q", code, stderr, want)
	}

	// From the start, from the middle, and from the start with the effects
	// ledger and the consumer lost: only looking in JIRA first avoids a
	// second case, and the replay makes the consumer again.
	for i, from := range []uint64{0, 2, 0} {
		if i == 2 {
			forgetJira(t, ctx, dataDir)
		}
		args := []string{"replay", "jira", "--data-dir", dataDir, "--config", conf}
		if from > 0 {
			args = append(args, "--from-seq", strconv.FormatUint(from, 10))
		}
		code, stdout, stderr := hikeshiRun(t, ctx, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d, stdout %q, stderr %q", args, code, stdout, stderr)
		}
		t.Logf("%v: %s%s", args, stdout, stderr)
		m := replayedRe.FindStringSubmatch(stdout)
		if m == nil {
			t.Fatalf("%v printed %q; want 'replayed jira: N events from stream sequence F up to L in …'", args, stdout)
		}
		first := max(from, 1)
		if n, _ := strconv.ParseUint(m[1], 10, 64); n != last-first+1 || m[2] != strconv.FormatUint(first, 10) || m[3] != strconv.FormatUint(last, 10) {
			t.Errorf("%v printed %q; want %d events from %d up to %d", args, stdout, last-first+1, first, last)
		}
		if c2, cm2 := jiraWrites(fake); c2 != cases || cm2 != comments {
			t.Errorf("%v: JIRA was asked for %d cases and %d comments, before the replay %d and %d", args, c2, cm2, cases, comments)
		}
		c := jiraConsumer(t, ctx, dataDir)
		if c.AckFloor.Stream != last || c.NumPending != 0 || c.NumAckPending != 0 {
			t.Errorf("%v: the jira consumer stands at %d with %d pending and %d unacknowledged; want after %d with none",
				args, c.AckFloor.Stream, c.NumPending, c.NumAckPending, last)
		}
	}
	if issues, _ := fake.Snapshot(); len(issues) != 1 || len(issues[0].Comments) != 1 {
		t.Fatalf("after the replays JIRA has %d cases (%+v); want one with one comment", len(issues), issues)
	}

	// The next hub takes up after the replayed events: the next note is
	// the one new comment.
	h = startHub(t, dataDir, "--config", conf)
	if status, body, err := post(ctx, h.base, "/api/v1/incidents/"+id+"/notes", "", map[string]string{"text": "monitoring"}); err != nil || status != http.StatusOK {
		t.Fatalf("note: %d %s %v", status, body, err)
	}
	integrationtest.Eventually(t, "the second note's comment", func() bool {
		issues, _ := fake.Snapshot()
		return len(issues) == 1 && len(issues[0].Comments) == 2
	})
	h.stop()
	if c2, cm2 := jiraWrites(fake); c2 != cases || cm2 != comments+1 {
		t.Errorf("after the restart JIRA was asked for %d cases and %d comments; want %d and %d", c2, cm2, cases, comments+1)
	}
}

// signalDecisions waits until the hub lists n signal decisions, and
// returns them by stream sequence.
func signalDecisions(t *testing.T, ctx context.Context, h *hubProc, n int) map[uint64]string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var list struct {
			Signals []struct {
				Seq         uint64 `json:"seq"`
				Fingerprint string `json:"fingerprint"`
				Route       string `json:"route"`
				Incident    string `json:"incident"`
			} `json:"signals"`
		}
		// 503 while the starting hub's signal projector takes its lease.
		if resp, err := apiClient.Get(h.base + "/api/v1/signals"); err == nil {
			if resp.StatusCode == http.StatusOK {
				err = json.NewDecoder(resp.Body).Decode(&list)
			}
			resp.Body.Close()
			if err != nil {
				t.Fatalf("GET /api/v1/signals: %v", err)
			}
		}
		if len(list.Signals) >= n {
			out := map[uint64]string{}
			for _, s := range list.Signals {
				out[s.Seq] = s.Fingerprint + " " + s.Route + " " + s.Incident
			}
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d signal decisions listed after 30s, want %d; output:\n%s", len(list.Signals), n, h.output)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestReplaySignalsRebuildsItsState replays the signal projector: its
// state (a file in the data dir, or a schema in PostgreSQL) is set aside
// and rebuilt from the SIGNALS stream, with the same decisions and no
// incident declared or fed twice, and the next hub continues from the
// rebuilt state.
func TestReplaySignalsRebuildsItsState(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the hikeshi binary")
	}
	t.Run("sqlite", func(t *testing.T) {
		testReplaySignals(t, "", func(state string) string { return state + ".before-replay" })
	})
	t.Run("postgres", func(t *testing.T) {
		testReplaySignals(t, pgtest.Database(t), func(string) string { return "schema signals_before_replay of postgres://" })
	})
}

// testReplaySignals runs the replay test with the state at store (empty:
// the data dir); kept is what replay says of where the old state went.
func testReplaySignals(t *testing.T, store string, kept func(state string) string) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	conf := signalsConfig(t)
	dataDir := t.TempDir()
	var flags []string
	if store != "" {
		flags = []string{"--store", store}
	}
	h := startHub(t, dataDir, append([]string{"--config", conf}, flags...)...)
	postSignal(t, ctx, h.base, "db-1/disk")
	postSignal(t, ctx, h.base, "db-2/disk")
	h.waitIncidents(t, ctx, 2, 30*time.Second)
	before := signalDecisions(t, ctx, h, 2)
	versions := map[string]uint64{}
	for _, d := range before {
		id := d[strings.LastIndex(d, " ")+1:]
		versions[id] = waitTimeline(t, ctx, h, id).Version
	}
	if len(versions) != 2 {
		t.Fatalf("decisions %v; want two signals, each to its incident", before)
	}

	code, stdout, stderr := hikeshiRun(t, ctx, append([]string{"replay", "signals", "--data-dir", dataDir, "--config", conf}, flags...)...)
	if code != 1 || !strings.Contains(stderr, "stop the hub") {
		t.Fatalf("replay while the hub runs: exit %d, stdout %q, stderr %q; want exit 1 and a data dir in use message", code, stdout, stderr)
	}
	if code, _, stderr := hikeshiRun(t, ctx, "replay", "signals", "--from-seq", "2", "--data-dir", dataDir, "--config", conf); code != 2 || !strings.Contains(stderr, "--from-seq does not apply") {
		t.Errorf("replay signals --from-seq: exit %d (%s), want 2 and why", code, stderr)
	}
	h.stop()

	code, stdout, stderr = hikeshiRun(t, ctx, append([]string{"replay", "signals", "--data-dir", dataDir, "--config", conf}, flags...)...)
	t.Logf("replay signals: %s%s", stdout, stderr)
	state := filepath.Join(dataDir, "signals.db")
	where := readmodel.DescribeState(store, state)
	m := regexp.MustCompile(`rebuilt (.+): (\d+) signals up to stream sequence (\d+) in `).FindStringSubmatch(stdout)
	if code != 0 || m == nil || m[1] != where || m[2] != "2" || m[3] != "2" {
		t.Fatalf("replay signals: exit %d, stdout %q, stderr %q; want 'rebuilt %s: 2 signals up to stream sequence 2 in …'", code, stdout, stderr, where)
	}
	if !strings.Contains(stdout, kept(state)) {
		t.Errorf("the previous state was not said to be kept in %s; stdout %q", kept(state), stdout)
	}
	if _, err := os.Stat(state + ".before-replay"); store == "" && err != nil {
		t.Errorf("the previous state was not kept: %v", err)
	}

	db, err := readmodel.OpenState(ctx, store, state)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := db.Checkpoint(ctx)
	db.Close()
	if err != nil || cp != 2 {
		t.Fatalf("the rebuilt state stands at signal %d (%v), want 2", cp, err)
	}

	h = startHub(t, dataDir, append([]string{"--config", conf}, flags...)...)
	after := signalDecisions(t, ctx, h, 2)
	if fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("decisions after the replay %v, before %v", after, before)
	}
	for id, v := range versions {
		if got := waitTimeline(t, ctx, h, id).Version; got != v {
			t.Errorf("incident %s is at version %d after the replay, %d before: the replay appended to it", id, got, v)
		}
	}
	// The rebuilt state continues: the next signal is the third, and the
	// rebuilt states route it as before.
	postSignal(t, ctx, h.base, "db-3/disk")
	h.waitIncidents(t, ctx, 3, 30*time.Second)
	if got := signalDecisions(t, ctx, h, 3); len(got) != 3 || !strings.HasPrefix(got[3], "db-3/disk incident ") {
		t.Errorf("decisions after a new signal: %v", got)
	}
	h.stop()
}
