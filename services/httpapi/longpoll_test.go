package httpapi_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/adapters/natsjs/natstest"
	"github.com/hikeshi/hikeshi/adapters/postgres"
	"github.com/hikeshi/hikeshi/adapters/postgres/pgtest"
	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/command"
	"github.com/hikeshi/hikeshi/services/httpapi"
	"github.com/hikeshi/hikeshi/services/readmodel"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// countingStore counts the timeline reads made through it.
type countingStore struct {
	readmodel.Store
	reads atomic.Int64
}

func (c *countingStore) TimelineIn(ctx context.Context, order readmodel.Order, id string, after uint64, limit int) ([]readmodel.Entry, error) {
	c.reads.Add(1)
	return c.Store.TimelineIn(ctx, order, id, after, limit)
}

// TestLongPollOnPostgresWaitsForTheNotification: a timeline long poll
// served from a PostgreSQL store that another process's projector writes
// reads the store once, waits for that process's commit to be notified,
// and reads it once more to answer: it does not read it again and again
// while nothing happens.
func TestLongPollOnPostgresWaitsForTheNotification(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Database(t)
	pg, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	other, err := postgres.Open(ctx, url) // the process running the projector
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	bus := natstest.Start(t)
	cases, err := natsjs.NewCases(ctx, bus.JS, "INC")
	if err != nil {
		t.Fatal(err)
	}
	tl := &countingStore{Store: pg}
	// A real server: a long poll sets the connection's deadlines.
	ts := httptest.NewServer(httpapi.New(httpapi.Deps{Commands: command.New(bus.Store, cases), Timeline: tl, Events: bus.Store}))
	defer ts.Close()
	type answer struct {
		code int
		body []byte
	}
	do := func(method, path, body string) answer {
		req, err := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
		if err != nil {
			return answer{0, []byte(err.Error())}
		}
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return answer{0, []byte(err.Error())}
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return answer{res.StatusCode, b}
	}
	w := do(http.MethodPost, "/api/v1/incidents", `{"title":"API down","service":"api","severity":"SEV2"}`)
	var inc struct {
		ID string `json:"id"`
	}
	if w.code != http.StatusCreated || json.Unmarshal(w.body, &inc) != nil {
		t.Fatalf("declare: %d %s", w.code, w.body)
	}
	stored, err := bus.Store.Load(ctx, inc.ID, 0)
	if err != nil || len(stored) != 1 {
		t.Fatalf("the declaration on the bus: %d events, %v", len(stored), err)
	}
	project := func(ev events.Stored) {
		t.Helper()
		if _, err := other.Apply(ctx, "timeline", []readmodel.Change{{Event: ev, Data: ev.Data}}); err != nil {
			t.Fatal(err)
		}
	}
	// The store's listener is connected once another process's commit
	// reaches it (it wakes every waiter when it connects).
	for seq := uint64(1); ; seq++ {
		ch := pg.Changed("warm-up")
		project(events.Stored{Seq: seq, Subject: "incidents.warm-up.note_added", Envelope: events.Envelope{
			ID: "warm-up-" + string(rune('a'+seq)), Type: events.TypeNoteAdded, Time: time.Now(), Data: json.RawMessage(`{}`)}})
		select {
		case <-ch:
		case <-time.After(200 * time.Millisecond):
			if seq < 100 {
				continue
			}
			t.Fatal("the store never woke at another process's commits")
		}
		break
	}

	answered := make(chan answer, 1)
	go func() { answered <- do(http.MethodGet, "/api/v1/incidents/"+inc.ID+"/timeline?after=0&wait=30s", "") }()
	for tl.reads.Load() == 0 {
		select {
		case w := <-answered:
			t.Fatalf("long poll answered before waiting: %d %s", w.code, w.body)
		case <-time.After(time.Millisecond):
		}
	}
	time.Sleep(time.Second) // the long poll waits
	ev := stored[0]
	ev.Seq += 1000 // after the warm-up's sequences
	project(ev)
	w = <-answered
	var got struct {
		Events []readmodel.Entry `json:"events"`
	}
	if w.code != http.StatusOK || json.Unmarshal(w.body, &got) != nil || len(got.Events) != 1 {
		t.Fatalf("long poll: %d %s; want the declaration", w.code, w.body)
	}
	if n := tl.reads.Load(); n != 2 {
		t.Errorf("the long poll read the store %d times; want 2, before waiting and once woken by the notification", n)
	}
}
