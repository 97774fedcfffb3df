package httpapi_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/services/httpapi"
	"github.com/hikeshi/hikeshi/services/hub"
)

// short are timeouts a test can outlast quickly.
var short = httpapi.Timeouts{Read: 300 * time.Millisecond, Write: 300 * time.Millisecond, Idle: 300 * time.Millisecond}

// A long poll and the event stream keep answering past the read and write
// timeouts that cut off every other request.
func TestLongLivedAnswersOutlastTimeouts(t *testing.T) {
	t.Parallel()
	_, c := startHub(t, hub.Config{HTTPTimeouts: short})
	inc := c.declare(declareBody("Queue backlog"))
	path := "/api/v1/incidents/" + inc.ID
	c.timeline(inc.ID, inc.Version)

	// The stream opens, stays quiet for longer than the timeouts, then
	// delivers the next event, twice.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
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
	sc := bufio.NewScanner(res.Body)
	nextEvent := func() string {
		t.Helper()
		for sc.Scan() {
			if id, ok := strings.CutPrefix(sc.Text(), "id: "); ok {
				return id
			}
		}
		t.Fatalf("event stream ended: %v", sc.Err())
		return ""
	}
	var st Incident
	for _, text := range []string{"first note", "second note"} {
		time.Sleep(3 * short.Write)
		c.post(path+"/notes", map[string]any{"text": text}).must(t, http.StatusOK, &st)
		if id := nextEvent(); id != fmt.Sprint(st.Version) {
			t.Fatalf("stream delivered event %s, want %d", id, st.Version)
		}
	}

	// A long poll answers the event that lands after the timeouts.
	last := c.timeline(inc.ID, st.Version).Version
	done := make(chan response, 1)
	go func() { done <- c.get(fmt.Sprintf("%s/timeline?after=%d&wait=10s", path, last)) }()
	time.Sleep(3 * short.Write)
	c.post(path+"/notes", map[string]any{"text": "third note"}).must(t, http.StatusOK, &st)
	var tl Timeline
	(<-done).must(t, http.StatusOK, &tl)
	if len(tl.Events) != 1 || tl.Events[0].Seq != st.Version {
		t.Fatalf("long poll answered %+v, want event %d", tl.Events, st.Version)
	}
}

// A kept-alive connection that sends nothing more is closed.
func TestIdleConnectionIsClosed(t *testing.T) {
	t.Parallel()
	_, c := startHub(t, hub.Config{HTTPTimeouts: short})
	conn, err := net.Dial("tcp", strings.TrimPrefix(c.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprint(conn, "GET /healthz HTTP/1.1\r\nHost: hikeshi\r\n\r\n")
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Close {
		t.Fatalf("healthz: %d, close %v", res.StatusCode, res.Close)
	}
	if !closedWithin(conn, br, 10*time.Second) {
		t.Fatal("an idle kept-alive connection is still open")
	}
}

// An answer the client does not read is given up after the write timeout,
// instead of holding the handler and the connection forever.
func TestUnreadAnswerIsCutOff(t *testing.T) {
	t.Parallel()
	api := httpapi.New(httpapi.Deps{Timeouts: short})
	wrote := make(chan error, 1)
	api.Mount("GET /big", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := make([]byte, 1<<20)
		for range 256 { // far more than the socket buffers hold
			if _, err := w.Write(chunk); err != nil {
				wrote <- err
				return
			}
		}
		wrote <- nil
	}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := api.HTTPServer()
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprint(conn, "GET /big HTTP/1.1\r\nHost: hikeshi\r\n\r\n") // and never read
	select {
	case err := <-wrote:
		if err == nil {
			t.Fatal("256 MiB were written to a client that reads nothing")
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the write to a client that reads nothing is still blocked")
	}
}

// closedWithin reports whether the server closes conn within d: reads
// return EOF or a reset, not a timeout.
func closedWithin(conn net.Conn, r io.Reader, d time.Duration) bool {
	_ = conn.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, r)
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout())
}
