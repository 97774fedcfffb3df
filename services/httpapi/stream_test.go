package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/httpapi"
	"github.com/hikeshi/hikeshi/services/hub"
	"github.com/nats-io/nats.go"
)

func TestAPIMetrics(t *testing.T) {
	t.Parallel()
	_, c := startHub(t, hub.Config{})
	const secret = "Zanzibar payroll exfiltration"
	body := declareBody(secret)
	body["confidential"] = true
	body["summary"] = "Quokka credentials leaked"
	inc := c.declare(body)
	var st Incident
	c.post("/api/v1/incidents/"+inc.ID+"/notes", map[string]any{"text": "Quokka rotated"}).must(t, http.StatusOK, &st)
	c.declare(declareBody("Public outage"))
	c.timeline(inc.ID, st.Version) // the projector has run

	r := c.get("/metrics").must(t, http.StatusOK, nil)
	m := string(r.Body)
	for _, want := range []string{
		`hikeshi_events_appended_total{type="` + events.TypeDeclared + `"} 2`,
		`hikeshi_events_appended_total{type="` + events.TypeNoteAdded + `"} 1`,
		`hikeshi_consumer_lag{consumer="timeline"}`,
		`hikeshi_projector_errors_total{projector="timeline"} 0`,
		`hikeshi_http_requests_total{code="201",route="POST /api/v1/incidents"} 2`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	for _, leak := range []string{"Zanzibar", "Quokka", "Public outage", inc.ID, inc.Codename} {
		if strings.Contains(m, leak) {
			t.Errorf("metrics contain %q", leak)
		}
	}
}

func TestAPITimelineLongPoll(t *testing.T) {
	t.Parallel()
	_, c := startHub(t, hub.Config{})
	inc := c.declare(declareBody("Cache stampede"))
	path := "/api/v1/incidents/" + inc.ID
	c.timeline(inc.ID, inc.Version)

	// Nothing new: the poll waits the whole time and answers empty.
	start := time.Now()
	var tl Timeline
	c.get(fmt.Sprintf("%s/timeline?after=%d&wait=300ms", path, inc.Version)).must(t, http.StatusOK, &tl)
	if waited := time.Since(start); waited < 300*time.Millisecond || len(tl.Events) != 0 {
		t.Fatalf("empty poll: %v, %d events", waited, len(tl.Events))
	}

	// The next event ends the wait.
	type result struct {
		r       response
		elapsed time.Duration
	}
	done := make(chan result, 1)
	go func() {
		start := time.Now()
		r := c.get(fmt.Sprintf("%s/timeline?after=%d&wait=2s", path, inc.Version))
		done <- result{r, time.Since(start)}
	}()
	time.Sleep(200 * time.Millisecond)
	var st Incident
	c.post(path+"/notes", map[string]any{"text": "warming"}, "X-Hikeshi-Actor", "eve").must(t, http.StatusOK, &st)
	res := <-done
	res.r.must(t, http.StatusOK, &tl)
	if res.elapsed >= 2*time.Second {
		t.Fatalf("long poll took %v: it did not return when the event landed", res.elapsed)
	}
	if len(tl.Events) != 1 || tl.Events[0].Type != events.TypeNoteAdded || tl.Events[0].Seq != st.Version || tl.Events[0].Actor != "eve" {
		t.Fatalf("long poll events: %+v", tl.Events)
	}
	// The version answered is the incident's, with the new event.
	if tl.Version != st.Version {
		t.Fatalf("long poll answered version %d with event %d", tl.Version, tl.Events[0].Seq)
	}
}

func TestAPIEventsTail(t *testing.T) {
	t.Parallel()
	_, c := startHub(t, hub.Config{})
	before := c.declare(declareBody("Before the tail"))

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/api/v1/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("tail: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	if !sc.Scan() || !strings.HasPrefix(sc.Text(), ":") {
		t.Fatalf("tail did not open with a comment: %q %v", sc.Text(), sc.Err())
	}

	// Once the stream is open, a new event is delivered (and an old one
	// is not).
	inc := c.declare(declareBody("During the tail"), "X-Hikeshi-Actor", "frank")
	var id, typ string
	var env events.Envelope
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "id: "):
			id = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "event: "):
			typ = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &env); err != nil {
				t.Fatalf("data line %q: %v", line, err)
			}
		case line == "":
			if env.Subject == before.ID {
				t.Fatal("tail delivered an event from before it opened")
			}
			if env.Subject != inc.ID {
				continue
			}
			if typ != events.TypeDeclared || env.Type != typ || id != fmt.Sprint(inc.Version) || env.Actor != "frank" {
				t.Fatalf("tail event: id %s type %s envelope %+v", id, typ, env)
			}
			return
		}
	}
	t.Fatalf("tail ended without the new event: %v", sc.Err())
}

// sseClient reads one GET /api/v1/events stream.
type sseClient struct {
	sc     *bufio.Scanner
	cancel context.CancelFunc
}

func openEvents(t *testing.T, c *client, query string) *sseClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/api/v1/events"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); res.Body.Close() })
	if res.StatusCode != http.StatusOK {
		t.Fatalf("events: %d", res.StatusCode)
	}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	if !sc.Scan() || !strings.HasPrefix(sc.Text(), ":") {
		t.Fatalf("events did not open with a comment: %q %v", sc.Text(), sc.Err())
	}
	return &sseClient{sc: sc, cancel: cancel}
}

// next returns the next event's SSE type and sequence.
func (s *sseClient) next(t *testing.T) (typ string, seq uint64) {
	t.Helper()
	for s.sc.Scan() {
		line := s.sc.Text()
		switch {
		case strings.HasPrefix(line, "id: "):
			fmt.Sscan(strings.TrimPrefix(line, "id: "), &seq)
		case strings.HasPrefix(line, "event: "):
			typ = strings.TrimPrefix(line, "event: ")
		case line == "" && typ != "":
			return typ, seq
		}
	}
	t.Fatalf("stream ended: %v", s.sc.Err())
	return "", 0
}

// TestAPIEventsShareOneSubscription: every client of /api/v1/events is fed
// by the process's one subscription to the bus; none creates a consumer.
func TestAPIEventsShareOneSubscription(t *testing.T) {
	t.Parallel()
	h, c := startHub(t, hub.Config{})
	first := openEvents(t, c, "")
	inc := c.declare(declareBody("warm up"))
	if _, seq := first.next(t); seq != inc.Version {
		t.Fatalf("first client got seq %d, want %d", seq, inc.Version)
	}

	var created atomic.Int64
	sub, err := h.Bus().Conn.Subscribe("$JS.API.CONSUMER.CREATE.>", func(*nats.Msg) { created.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := h.Bus().Conn.Flush(); err != nil {
		t.Fatal(err)
	}
	clients := []*sseClient{first}
	for range 3 {
		clients = append(clients, openEvents(t, c, ""))
	}
	next := c.declare(declareBody("seen by all"))
	for i, cl := range clients {
		if typ, seq := cl.next(t); seq != next.Version || typ != events.TypeDeclared {
			t.Errorf("client %d got %s seq %d, want the declaration at %d", i, typ, seq, next.Version)
		}
	}
	// The process's own subscription is an ordered consumer, which the
	// client library re-creates when it misses a heartbeat (a loaded test
	// machine): one creation is allowed, one per client is the defect.
	if n := created.Load(); n > 1 {
		t.Errorf("opening 3 more streams created %d consumers, want none per stream", n)
	}
}

// TestAPIEventsResumeAfter: ?after=SEQ first replays what the client
// missed, then follows live, without a gap or a repeat.
func TestAPIEventsResumeAfter(t *testing.T) {
	t.Parallel()
	_, c := startHub(t, hub.Config{})
	a := c.declare(declareBody("a"))
	b := c.declare(declareBody("b"))
	cc := c.declare(declareBody("c"))
	cl := openEvents(t, c, fmt.Sprint("?after=", a.Version))
	d := c.declare(declareBody("d"))
	for _, want := range []uint64{b.Version, cc.Version, d.Version} {
		if _, seq := cl.next(t); seq != want {
			t.Fatalf("resumed stream gave seq %d, want %d", seq, want)
		}
	}
}

// TestAPIEventsOneIncident: ?incident= follows one incident (a live
// timeline), its past events after ?after= included, and nothing else.
func TestAPIEventsOneIncident(t *testing.T) {
	t.Parallel()
	_, c := startHub(t, hub.Config{})
	a := c.declare(declareBody("followed"))
	b := c.declare(declareBody("other"))
	var note Incident
	c.post("/api/v1/incidents/"+a.ID+"/notes", map[string]any{"text": "before"}).must(t, http.StatusOK, &note)
	cl := openEvents(t, c, fmt.Sprintf("?after=%d&incident=%s", a.Version, a.CaseNumber))
	c.post("/api/v1/incidents/"+b.ID+"/notes", map[string]any{"text": "elsewhere"}).must(t, http.StatusOK, nil)
	var live Incident
	c.post("/api/v1/incidents/"+a.ID+"/notes", map[string]any{"text": "live"}).must(t, http.StatusOK, &live)
	for _, want := range []uint64{note.Version, live.Version} {
		if _, seq := cl.next(t); seq != want {
			t.Fatalf("followed incident's stream gave seq %d, want %d", seq, want)
		}
	}
}

// TestIdleStreamsHoldNoGoroutine: a stream waiting for a quiet incident's
// events holds no goroutine of the hub (net/http held two or more per
// connection), still gets the incident's next event, and a client that
// hangs up while its incident is quiet is forgotten at the next check of
// its caller. Not parallel: it counts the process's goroutines; its
// clients are bare connections, which hold none.
func TestIdleStreamsHoldNoGoroutine(t *testing.T) {
	defer httpapi.SetReauthEvery(httpapi.SetReauthEvery(300 * time.Millisecond))
	_, c := startHub(t, hub.Config{})
	quiet := c.declare(declareBody("quiet"))
	busy := c.declare(declareBody("busy"))
	streams := func() string {
		m := string(c.get("/metrics").must(t, http.StatusOK, nil).Body)
		for line := range strings.Lines(m) {
			if v, ok := strings.CutPrefix(line, "hikeshi_live_streams "); ok {
				return strings.TrimSpace(v)
			}
		}
		t.Fatal("no hikeshi_live_streams in /metrics")
		return ""
	}
	settle := func() int {
		time.Sleep(300 * time.Millisecond)
		return runtime.NumGoroutine()
	}
	before := settle()
	const n = 100
	var conns []*bufio.Reader
	var open []net.Conn
	for range n {
		conn, err := net.Dial("tcp", strings.TrimPrefix(c.base, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		open = append(open, conn)
		fmt.Fprintf(conn, "GET /api/v1/events?incident=%s HTTP/1.1\r\nHost: hub\r\n\r\n", quiet.ID)
		_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		br := bufio.NewReader(conn)
		if line, err := br.ReadString('\n'); err != nil || !strings.Contains(line, " 200 ") {
			t.Fatalf("stream: %q %v", line, err)
		}
		conns = append(conns, br)
	}
	c.post("/api/v1/incidents/"+busy.ID+"/notes", map[string]any{"text": "elsewhere"}).must(t, http.StatusOK, nil)
	if held := settle() - before; held > n/4 {
		t.Errorf("%d idle streams hold %d goroutines of the hub, want none per stream", n, held)
	}
	if got := streams(); got != strconv.Itoa(n) {
		t.Errorf("hikeshi_live_streams %s, want %d", got, n)
	}
	var note Incident
	c.post("/api/v1/incidents/"+quiet.ID+"/notes", map[string]any{"text": "wakes them"}).must(t, http.StatusOK, &note)
	want := fmt.Sprintf("id: %d\n", note.Version)
	for i, br := range conns {
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("client %d: %v before the note's event", i, err)
			}
			if strings.HasPrefix(line, "id: ") {
				if line != want {
					t.Fatalf("client %d got %q, want %q", i, line, want)
				}
				break
			}
		}
	}
	for _, conn := range open {
		conn.Close()
	}
	deadline := time.Now().Add(10 * time.Second)
	for streams() != "0" && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if got := streams(); got != "0" {
		t.Errorf("after every client hung up: hikeshi_live_streams %s, want 0", got)
	}
}
