//go:build chaos

package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/events"
	"github.com/nats-io/nats.go/jetstream"
)

var apiClient = &http.Client{Timeout: 15 * time.Second}

// post sends a JSON command to h with an Idempotency-Key; a transport
// error means no answer.
func post(ctx context.Context, h *hub, path, key string, body any) (int, []byte, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return 0, nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.base+path, bytes.NewReader(b))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	resp, err := h.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return resp.StatusCode, out, err
}

// declare declares an incident through h, retrying as a client would.
func declare(t *testing.T, ctx context.Context, h *hub, title string) string {
	t.Helper()
	for {
		status, body, err := post(ctx, h, "/api/v1/incidents", "declare-"+title,
			map[string]any{"title": title, "service": "chaos", "severity": "SEV3", "declared_by": "chaos"})
		if err == nil && status == http.StatusCreated {
			var v struct{ ID string }
			if err := json.Unmarshal(body, &v); err != nil || v.ID == "" {
				t.Fatalf("declare answer %s: %v", body, err)
			}
			return v.ID
		}
		if ctx.Err() != nil || (err == nil && status < 500) {
			t.Fatalf("declare %q: %d %s %v", title, status, body, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// note is one note a client appends, and what became of it.
type note struct {
	incident, text, key string
	sent, acked         time.Time
	version             uint64 // the incident's version in the answer
	ackedBy             *hub
}

// load is clients appending notes through the hubs, each note retried
// with its Idempotency-Key until acknowledged, as an operator's client
// would: on a 503 or a transport error, through the next hub (or, when
// sticky, the same one).
type load struct {
	t         *testing.T
	hubs      []*hub
	incidents []string
	sticky    bool

	stopping atomic.Bool
	wg       sync.WaitGroup
	n503     map[*hub]*atomic.Int64
	nErr     atomic.Int64 // transport errors and other 5xx: no answer

	mu    sync.Mutex
	warm  time.Time // end of the warm-up
	notes []*note
	acks  []*note // in order of acknowledgement
}

// startLoad runs one client per incident; client i starts on hub i (mod
// the number of hubs) and, when sticky, stays there.
func startLoad(t *testing.T, ctx context.Context, hubs []*hub, incidents []string, sticky bool) *load {
	l := &load{t: t, hubs: hubs, incidents: incidents, sticky: sticky, n503: map[*hub]*atomic.Int64{}}
	for _, h := range hubs {
		l.n503[h] = &atomic.Int64{}
	}
	for i, id := range incidents {
		l.wg.Go(func() { l.client(ctx, i, id) })
	}
	return l
}

func (l *load) client(ctx context.Context, c int, incident string) {
	for n := 0; !l.stopping.Load() && ctx.Err() == nil; n++ {
		nt := &note{incident: incident, text: fmt.Sprintf("chaos-%d-%d", c, n), key: fmt.Sprintf("chaos-%s-%d", incident, n), sent: time.Now()}
		l.mu.Lock()
		l.notes = append(l.notes, nt)
		l.mu.Unlock()
		for attempt := c; ctx.Err() == nil; attempt++ {
			h := l.hubs[attempt%len(l.hubs)]
			if l.sticky {
				h = l.hubs[c%len(l.hubs)]
			}
			status, body, err := post(ctx, h, "/api/v1/incidents/"+incident+"/notes", nt.key, map[string]string{"text": nt.text})
			switch {
			case err == nil && status/100 == 2:
				var v struct{ Version uint64 }
				json.Unmarshal(body, &v)
				l.mu.Lock()
				nt.acked, nt.version, nt.ackedBy = time.Now(), v.Version, h
				l.acks = append(l.acks, nt)
				l.mu.Unlock()
			case status == http.StatusServiceUnavailable:
				l.n503[h].Add(1)
			case err != nil || status >= 500:
				l.nErr.Add(1)
			default:
				l.t.Errorf("%s refused by %s: %d %s", nt.key, h.name, status, body)
				return
			}
			if !nt.acked.IsZero() {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// acked is how many notes are acknowledged.
func (l *load) acked() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acks)
}

// waitAcks waits until n more notes are acknowledged than now.
func (l *load) waitAcks(n int, timeout time.Duration) {
	l.t.Helper()
	target := l.acked() + n
	deadline := time.Now().Add(timeout)
	for l.acked() < target {
		if time.Now().After(deadline) {
			l.t.Fatalf("%d notes acknowledged, want %d within %s", l.acked(), target, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// firstAckAfter is the first note acknowledged after t, waiting for it.
func (l *load) firstAckAfter(t time.Time, timeout time.Duration) *note {
	l.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		l.mu.Lock()
		i := slices.IndexFunc(l.acks, func(n *note) bool { return n.sent.After(t) })
		var nt *note
		if i >= 0 {
			nt = l.acks[i]
		}
		l.mu.Unlock()
		if nt != nil {
			return nt
		}
		time.Sleep(20 * time.Millisecond)
	}
	l.t.Fatalf("no note sent after %s acknowledged within %s", t.Format(time.TimeOnly), timeout)
	return nil
}

// stop ends the load once every note sent is acknowledged.
func (l *load) stop() {
	l.stopping.Store(true)
	l.wg.Wait()
}

// report logs the load's figures: notes, 503s, and the longest write
// stall (from a note's first attempt to its acknowledgement) of the notes
// sent after the warm-up, when the faults began.
func (l *load) report() {
	l.mu.Lock()
	defer l.mu.Unlock()
	var longest time.Duration
	for _, n := range l.notes {
		if d := n.acked.Sub(n.sent); n.sent.After(l.warm) && d > longest {
			longest = d
		}
	}
	n503 := int64(0)
	for _, n := range l.n503 {
		n503 += n.Load()
	}
	l.t.Logf("%d notes acknowledged of %d sent by %d clients through %d hubs; %d answers 503, %d without an answer; longest write stall %.1f s",
		len(l.acks), len(l.notes), len(l.incidents), len(l.hubs), n503, l.nErr.Load(), longest.Seconds())
}

// warmedUp marks the end of the warm-up: report measures from here.
func (l *load) warmedUp() {
	l.mu.Lock()
	l.warm = time.Now()
	l.mu.Unlock()
}

// streamNotes reads every note on the incident stream, one message at a
// time (each read retried while the cluster settles): text → times
// stored. An event id stored twice fails the test.
func streamNotes(t *testing.T, ctx context.Context, js jetstream.JetStream) map[string]int {
	t.Helper()
	var s jetstream.Stream
	var info *jetstream.StreamInfo
	retry(t, "stream info", func() (err error) {
		if s, err = js.Stream(ctx, events.IncidentStream); err == nil {
			info, err = s.Info(ctx)
		}
		return err
	})
	count, ids := map[string]int{}, map[string]bool{}
	for seq := uint64(1); seq <= info.State.LastSeq; seq++ {
		var msg *jetstream.RawStreamMsg
		retry(t, fmt.Sprintf("message %d", seq), func() (err error) {
			msg, err = s.GetMsg(ctx, seq)
			return err
		})
		var e struct {
			ID, Type string
			Data     json.RawMessage
		}
		if err := json.Unmarshal(msg.Data, &e); err != nil {
			t.Fatalf("seq %d: %v", seq, err)
		}
		if ids[e.ID] {
			t.Errorf("event id %s stored twice", e.ID)
		}
		ids[e.ID] = true
		if e.Type == events.TypeNoteAdded {
			var d events.NoteAdded
			json.Unmarshal(e.Data, &d)
			count[d.Text]++
		}
	}
	return count
}

// retry runs f until it succeeds, for at most 20 s.
func retry(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// verify checks that every note is on the stream exactly once and in
// each hub's timeline exactly once.
func (l *load) verify(ctx context.Context, c *cluster, hubs []*hub) {
	l.t.Helper()
	l.mu.Lock()
	notes := slices.Clone(l.notes)
	l.mu.Unlock()
	for _, n := range notes {
		if n.acked.IsZero() {
			l.t.Errorf("%s never acknowledged", n.key)
		}
	}
	count := streamNotes(l.t, ctx, c.js)
	checkOnce(l.t, "stream", notes, count)
	for _, h := range hubs {
		count := map[string]int{}
		for _, id := range l.incidents {
			for _, text := range timelineNotes(l.t, ctx, h, id) {
				count[text]++
			}
		}
		checkOnce(l.t, h.name+" timeline", notes, count)
	}
}

// checkOnce asserts that every note is stored exactly once and no other.
func checkOnce(t *testing.T, where string, notes []*note, count map[string]int) {
	t.Helper()
	var missing, doubled []string
	sent := map[string]bool{}
	for _, n := range notes {
		sent[n.text] = true
		switch c := count[n.text]; {
		case c == 0:
			missing = append(missing, n.key)
		case c > 1:
			doubled = append(doubled, fmt.Sprintf("%s×%d", n.key, c))
		}
	}
	var extra []string
	for text := range count {
		if !sent[text] {
			extra = append(extra, text)
		}
	}
	if len(missing)+len(doubled)+len(extra) > 0 {
		t.Errorf("%s: of %d notes, %d missing %v, %d stored more than once %v, %d not sent %v", where, len(notes),
			len(missing), missing[:min(10, len(missing))], len(doubled), doubled[:min(10, len(doubled))], len(extra), extra[:min(10, len(extra))])
	}
}

type timeline struct {
	Version uint64  `json:"version"`
	Events  []entry `json:"events"`
}

type entry struct {
	Seq  uint64          `json:"seq"`
	Type string          `json:"type"`
	Data json.RawMessage `json:"data"`
}

func getTimeline(ctx context.Context, h *hub, id, query string) (timeline, error) {
	var tl timeline
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.base+"/api/v1/incidents/"+id+"/timeline"+query, nil)
	if err != nil {
		return tl, err
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return tl, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return tl, fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	return tl, json.Unmarshal(b, &tl)
}

// timelineNotes waits until h's timeline of the incident has every event
// of it the stream has (its version), and returns its notes' texts.
func timelineNotes(t *testing.T, ctx context.Context, h *hub, id string) []string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		tl, err := getTimeline(ctx, h, id, "")
		n := len(tl.Events)
		if err == nil && n > 0 && tl.Events[n-1].Seq == tl.Version {
			var texts []string
			for _, e := range tl.Events {
				if e.Type == events.TypeNoteAdded {
					var d events.NoteAdded
					json.Unmarshal(e.Data, &d)
					texts = append(texts, d.Text)
				}
			}
			return texts
		}
		if time.Now().After(deadline) {
			last := uint64(0)
			if n > 0 {
				last = tl.Events[n-1].Seq
			}
			t.Fatalf("%s: the timeline of %s has %d events up to seq %d, the incident is at %d after 60 s (%v)", h.name, id, n, last, tl.Version, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// timelineResumes checks that, after a node was lost at lostAt, every
// hub's timeline shows the first note acknowledged since within 10 s of
// its acknowledgement, while the load goes on: no projector is left
// waiting for a redelivery. It returns the longest wait.
func timelineResumes(t *testing.T, ctx context.Context, l *load, hubs []*hub, lostAt time.Time, what string) time.Duration {
	t.Helper()
	probe := l.firstAckAfter(lostAt, 60*time.Second)
	var longest time.Duration
	for _, h := range hubs {
		for {
			tl, err := getTimeline(ctx, h, probe.incident, fmt.Sprintf("?after=%d&wait=1s", probe.version-1))
			if err == nil && slices.ContainsFunc(tl.Events, func(e entry) bool { return e.Seq >= probe.version }) {
				break
			}
			if d := time.Since(probe.acked); d > 10*time.Second {
				t.Errorf("after %s: %s's timeline does not show seq %d (acknowledged %.1f s after the loss) %.0f s after its acknowledgement (%v)",
					what, h.name, probe.version, probe.acked.Sub(lostAt).Seconds(), d.Seconds(), err)
				return d
			}
		}
		longest = max(longest, time.Since(probe.acked))
	}
	t.Logf("after %s: first write acknowledged %.1f s after the loss; both timelines showed it %.1f s later", what, probe.acked.Sub(lostAt).Seconds(), longest.Seconds())
	return longest
}
