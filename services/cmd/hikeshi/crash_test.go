package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/adapters/natsjs/natstest"
	"github.com/hikeshi/hikeshi/adapters/postgres/pgtest"
	"github.com/hikeshi/hikeshi/events"
)

var (
	binOnce sync.Once
	binDir  string
	binPath string
	binErr  error
)

func TestMain(m *testing.M) {
	code := pgtest.Main(m)
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// hikeshiBinary builds the hikeshi command once per test run, with the
// race detector when the tests run with it.
func hikeshiBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		if binDir, binErr = os.MkdirTemp("", "hikeshi-bin-"); binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "hikeshi")
		args := []string{"build", "-o", binPath}
		if bi, ok := debug.ReadBuildInfo(); ok {
			for _, s := range bi.Settings {
				if s.Key == "-race" && s.Value == "true" {
					args = append(args, "-race")
				}
			}
		}
		out, err := exec.Command("go", append(args, ".")...).CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// cleanEnv is the environment without HIKESHI_* settings, which would
// override the flags' defaults.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HIKESHI_") {
			env = append(env, kv)
		}
	}
	return env
}

// syncBuffer is a bytes.Buffer safe for a process writing and a test
// reading.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// hubProc is a `hikeshi serve` subprocess.
type hubProc struct {
	t      *testing.T
	cmd    *exec.Cmd
	base   string
	output *syncBuffer
	done   chan struct{}
	err    error // Wait's result, once done is closed
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startHub runs `hikeshi serve` on dataDir, with more flags when given, and
// waits until /readyz answers 200. The process is killed when the test
// ends, if still running.
func startHub(t *testing.T, dataDir string, flags ...string) *hubProc {
	t.Helper()
	bin := hikeshiBinary(t)
	var lastOut string
	for attempt := 0; attempt < 3; attempt++ {
		addr := freeAddr(t)
		h := &hubProc{t: t, base: "http://" + addr, output: &syncBuffer{}, done: make(chan struct{})}
		h.cmd = exec.Command(bin, append([]string{"serve", "--data-dir", dataDir, "--listen", addr, "--log-level", "warn"}, flags...)...)
		h.cmd.Env = cleanEnv()
		h.cmd.Stdout, h.cmd.Stderr = h.output, h.output
		if err := h.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { h.err = h.cmd.Wait(); close(h.done) }()
		t.Cleanup(h.kill)
		if h.waitReady(60 * time.Second) {
			return h
		}
		lastOut = h.output.String()
		h.kill()
		if !strings.Contains(lastOut, "address already in use") {
			break // not a port race: do not hide the failure
		}
	}
	t.Fatalf("hikeshi serve did not become ready; output:\n%s", lastOut)
	return nil
}

func (h *hubProc) waitReady(timeout time.Duration) bool {
	c := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-h.done:
			return false
		default:
		}
		if resp, err := c.Get(h.base + "/readyz"); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return true
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// kill sends SIGKILL and waits for the process to be gone.
func (h *hubProc) kill() {
	select {
	case <-h.done:
		return
	default:
	}
	_ = h.cmd.Process.Kill()
	<-h.done
}

// stop sends SIGTERM and expects a clean exit.
func (h *hubProc) stop() {
	h.t.Helper()
	if err := h.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		h.t.Fatalf("SIGTERM: %v", err)
	}
	select {
	case <-h.done:
	case <-time.After(30 * time.Second):
		h.kill()
		h.t.Fatalf("hikeshi serve did not stop within 30s of SIGTERM; output:\n%s", h.output)
	}
	if h.err != nil {
		h.t.Fatalf("hikeshi serve exited with %v after SIGTERM; output:\n%s", h.err, h.output)
	}
}

var apiClient = &http.Client{Timeout: 15 * time.Second}

// post sends a JSON command. A transport error means no answer.
func post(ctx context.Context, base, path, key string, body any) (int, []byte, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return 0, nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+path, bytes.NewReader(b))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := apiClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, err // the answer did not arrive in full
	}
	return resp.StatusCode, out, nil
}

func getJSON(t *testing.T, ctx context.Context, url string, out any) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := apiClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", url, resp.Status, b)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("GET %s: %v in %s", url, err, b)
	}
}

func declareIncident(t *testing.T, ctx context.Context, base string) string {
	t.Helper()
	status, body, err := post(ctx, base, "/api/v1/incidents", "declare-1", map[string]any{
		"title": "checkout failing", "service": "checkout", "severity": "SEV2", "declared_by": "alice",
	})
	if err != nil || status != http.StatusCreated {
		t.Fatalf("declare: %d %s %v", status, body, err)
	}
	var v struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(body, &v); err != nil || v.ID == "" {
		t.Fatalf("declare answer %s: %v", body, err)
	}
	return v.ID
}

type timelineView struct {
	Version uint64 `json:"version"`
	Events  []struct {
		Seq  uint64          `json:"seq"`
		ID   string          `json:"id"`
		Type string          `json:"type"`
		Data json.RawMessage `json:"data"`
	} `json:"events"`
}

// waitTimeline waits until the timeline store has every event of the
// incident, as far as the stream's version says. The limit is below the
// projector's AckWait (1 min) on purpose: a delivery stranded by a crash
// must not hold the projection until the server redelivers it.
func waitTimeline(t *testing.T, ctx context.Context, h *hubProc, id string) timelineView {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var tl timelineView
		getJSON(t, ctx, h.base+"/api/v1/incidents/"+id+"/timeline", &tl)
		n := len(tl.Events)
		if n > 0 && tl.Events[n-1].Seq == tl.Version {
			return tl
		}
		if time.Now().After(deadline) {
			last := uint64(0)
			if n > 0 {
				last = tl.Events[n-1].Seq
			}
			t.Fatalf("timeline has %d events up to seq %d, incident is at version %d after 30s; output:\n%s", n, last, tl.Version, h.output)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// sentNote is one POST of a note and what became of it.
type sentNote struct {
	text, key string
	acked     bool
	answer    string // last non-2xx answer or transport error
}

// TestCrashLosesNothingAndDuplicatesNothing kills the hub with SIGKILL
// while clients write, restarts it, lets clients retry what went
// unanswered with the same Idempotency-Key, and checks the timeline and
// the stream: every note exactly once, acknowledged or retried.
func TestCrashLosesNothingAndDuplicatesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: crash test, builds and kills the hikeshi binary; runs in make test")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dataDir := t.TempDir()
	h := startHub(t, dataDir)
	id := declareIncident(t, ctx, h.base)
	notesPath := "/api/v1/incidents/" + id + "/notes"
	base := h.base

	const clients, ackTarget = 8, 300
	var (
		acked   atomic.Int64
		stop    atomic.Bool
		wg      sync.WaitGroup
		perClnt = make([][]*sentNote, clients)
	)
	for c := range clients {
		wg.Go(func() {
			for n := 0; !stop.Load(); n++ {
				nt := &sentNote{text: fmt.Sprintf("client-%d-%d", c, n), key: fmt.Sprintf("crash-%d-%d", c, n)}
				perClnt[c] = append(perClnt[c], nt)
				status, body, err := post(ctx, base, notesPath, nt.key, map[string]string{"text": nt.text})
				switch {
				case err != nil:
					nt.answer = err.Error()
				case status/100 == 2:
					nt.acked = true
					acked.Add(1)
				default:
					nt.answer = fmt.Sprintf("%d %s", status, body)
				}
			}
		})
	}
	deadline := time.Now().Add(60 * time.Second)
	for acked.Load() < ackTarget {
		if time.Now().After(deadline) {
			stop.Store(true)
			wg.Wait()
			t.Fatalf("only %d notes acknowledged after 60s; output:\n%s", acked.Load(), h.output)
		}
		time.Sleep(time.Millisecond)
	}
	if err := h.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-h.done
	stop.Store(true)
	wg.Wait()

	var all []*sentNote
	ackedBefore, unanswered := 0, 0
	for _, ns := range perClnt {
		for _, nt := range ns {
			all = append(all, nt)
			if nt.acked {
				ackedBefore++
			} else {
				unanswered++
			}
		}
	}
	t.Logf("before SIGKILL: %d notes sent, %d acknowledged, %d without a 2xx answer", len(all), ackedBefore, unanswered)

	// The kernel released the data dir lock with the process.
	h = startHub(t, dataDir)
	base = h.base
	var atRestart struct {
		Version uint64 `json:"version"`
	}
	getJSON(t, ctx, base+"/api/v1/incidents/"+id, &atRestart)
	for c := range clients {
		wg.Go(func() {
			for _, nt := range perClnt[c] {
				for !nt.acked {
					if ctx.Err() != nil {
						t.Errorf("%s never acknowledged after restart; last answer: %s", nt.key, nt.answer)
						return
					}
					status, body, err := post(ctx, base, notesPath, nt.key, map[string]string{"text": nt.text})
					switch {
					case err != nil:
						nt.answer = err.Error()
					case status/100 == 2:
						nt.acked = true
						continue
					case status >= 500:
						nt.answer = fmt.Sprintf("%d %s", status, body)
					default:
						t.Errorf("retry of %s refused: %d %s", nt.key, status, body)
						return
					}
					time.Sleep(50 * time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	// (b) The timeline API shows every note exactly once.
	tl := waitTimeline(t, ctx, h, id)
	count := map[string]int{}
	noteEvents := 0
	for i, e := range tl.Events {
		if i > 0 && e.Seq <= tl.Events[i-1].Seq {
			t.Fatalf("timeline out of order: seq %d after %d", e.Seq, tl.Events[i-1].Seq)
		}
		if e.Type != events.TypeNoteAdded {
			continue
		}
		noteEvents++
		var d events.NoteAdded
		if err := json.Unmarshal(e.Data, &d); err != nil {
			t.Fatal(err)
		}
		count[d.Text]++
	}
	checkNotes(t, "timeline", all, count, noteEvents)
	if len(tl.Events) != 1+len(all) {
		t.Errorf("timeline has %d events, want declared + %d notes", len(tl.Events), len(all))
	}

	// (c) The stream itself, read with the hub stopped.
	h.stop()
	bus := natstest.StartIn(t, filepath.Join(dataDir, "nats"))
	stored, err := bus.Store.Load(ctx, id, 0)
	if err != nil {
		t.Fatal(err)
	}
	count = map[string]int{}
	noteEvents = 0
	ids := map[string]bool{}
	storedUnanswered := 0
	unansweredText := map[string]bool{}
	for _, nt := range all {
		if nt.answer != "" {
			unansweredText[nt.text] = true
		}
	}
	for i, e := range stored {
		// One incident only: its history is the whole stream, 1..N.
		if e.Seq != uint64(i+1) {
			t.Fatalf("stream event %d has sequence %d: history is not contiguous", i, e.Seq)
		}
		if ids[e.ID] {
			t.Errorf("event id %s stored twice", e.ID)
		}
		ids[e.ID] = true
		if i < len(tl.Events) && (tl.Events[i].Seq != e.Seq || tl.Events[i].ID != e.ID) {
			t.Errorf("timeline event %d is seq %d id %s, stream has seq %d id %s", i, tl.Events[i].Seq, tl.Events[i].ID, e.Seq, e.ID)
		}
		if i == 0 {
			if e.Type != events.TypeDeclared {
				t.Fatalf("first event is %s, want %s", e.Type, events.TypeDeclared)
			}
			continue
		}
		d, err := e.Decode()
		if err != nil {
			t.Fatal(err)
		}
		nd, ok := d.(*events.NoteAdded)
		if !ok {
			t.Fatalf("seq %d is %s, want only notes after the declare", e.Seq, e.Type)
		}
		noteEvents++
		count[nd.Text]++
		if e.Seq <= atRestart.Version && unansweredText[nd.Text] {
			storedUnanswered++
		}
	}
	checkNotes(t, "stream", all, count, noteEvents)
	t.Logf("%d notes were stored before the crash without their answer reaching the client; their retries appended nothing", storedUnanswered)
	if uint64(len(stored)) != tl.Version {
		t.Errorf("stream holds %d events, the API reported version %d", len(stored), tl.Version)
	}
}

// checkNotes asserts that every note sent is stored exactly once and
// nothing else is.
func checkNotes(t *testing.T, where string, all []*sentNote, count map[string]int, noteEvents int) {
	t.Helper()
	var missing, doubled []string
	for _, nt := range all {
		switch n := count[nt.text]; {
		case n == 0:
			missing = append(missing, nt.text)
		case n > 1:
			doubled = append(doubled, fmt.Sprintf("%s×%d", nt.text, n))
		}
	}
	if len(missing) > 0 {
		t.Errorf("%s: %d acknowledged notes missing, e.g. %v", where, len(missing), missing[:min(len(missing), 10)])
	}
	if len(doubled) > 0 {
		t.Errorf("%s: %d notes stored more than once, e.g. %v", where, len(doubled), doubled[:min(len(doubled), 10)])
	}
	if noteEvents != len(count) || len(count) != len(all) {
		t.Errorf("%s: %d note_added events, %d distinct texts, %d notes sent", where, noteEvents, len(count), len(all))
	}
}
