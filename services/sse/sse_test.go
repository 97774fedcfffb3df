package sse_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/services/sse"
)

// TestOpenTakesTheConnectionOver: the stream answers with the handler's
// header, outlives its handler and the server's write timeout, and its
// body ends when it closes.
func TestOpenTakesTheConnectionOver(t *testing.T) {
	streams := make(chan *sse.Stream, 1)
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		s, err := sse.Open(w, r, time.Second)
		if err != nil {
			t.Error(err)
			return
		}
		if err := s.Write([]byte("data: first\n\n")); err != nil {
			t.Error(err)
		}
		if !s.Wait(r.Context()) {
			t.Error("the stream did not go on without its handler")
		}
		streams <- s
	}))
	ts.Config.WriteTimeout = 200 * time.Millisecond
	ts.Start()
	defer ts.Close()
	res, err := http.Get(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/event-stream" || res.Header.Get("Cache-Control") != "no-cache" {
		t.Fatalf("answer %d %v", res.StatusCode, res.Header)
	}
	br := bufio.NewReader(res.Body)
	if line, err := br.ReadString('\n'); line != "data: first\n" {
		t.Fatalf("first line %q %v", line, err)
	}
	s := <-streams
	time.Sleep(400 * time.Millisecond) // past the server's write timeout
	if err := s.Write([]byte("data: second\n\n")); err != nil {
		t.Fatalf("write after the handler returned: %v", err)
	}
	s.Close()
	rest, err := io.ReadAll(br)
	if err != nil || string(rest) != "\ndata: second\n\n" {
		t.Fatalf("rest of the body %q %v, want the second event and its end", rest, err)
	}
	if err := s.Write([]byte("x")); !errors.Is(err, sse.ErrClosed) {
		t.Errorf("write after Close: %v, want ErrClosed", err)
	}
}

// TestOpenWithoutTheConnection: where the server cannot give the
// connection up, the stream writes through the response and its handler
// waits until the stream or the request ends.
func TestOpenWithoutTheConnection(t *testing.T) {
	rec := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, "/events", nil)
	s, err := sse.Open(rec, r, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write([]byte("data: one\n\n")); err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(50 * time.Millisecond)
		s.Close()
	}()
	if s.Wait(context.Background()) {
		t.Error("Wait reported the stream going on without its handler")
	}
	if !rec.Flushed || rec.Header().Get("Content-Type") != "text/event-stream" || rec.Body.String() != "data: one\n\n" {
		t.Errorf("recorded %v %q, flushed %v", rec.Header(), rec.Body.String(), rec.Flushed)
	}

	s, err = sse.Open(httptest.NewRecorder(), r, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the client left
	s.Wait(ctx)
	if !s.Closed() || s.Write([]byte("late")) == nil {
		t.Error("a stream whose request ended still takes writes")
	}
}

// TestWorkerRunsOneAtATime: wakes never run the function twice at once;
// a wake during a run is followed by another run; wakes meanwhile
// collapse into it.
func TestWorkerRunsOneAtATime(t *testing.T) {
	var running, overlaps, runs atomic.Int32
	entered := make(chan struct{}, 100)
	release := make(chan struct{})
	w := sse.NewWorker(func() {
		if running.Add(1) > 1 {
			overlaps.Add(1)
		}
		runs.Add(1)
		entered <- struct{}{}
		<-release
		running.Add(-1)
	})
	w.Wake()
	<-entered // the first run is under way
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(w.Wake)
	}
	wg.Wait()
	release <- struct{}{} // first run ends; the wakes meanwhile make one more
	<-entered
	release <- struct{}{}
	time.Sleep(50 * time.Millisecond)
	if runs.Load() != 2 || overlaps.Load() != 0 {
		t.Fatalf("%d runs, %d overlapping; want 2 and none", runs.Load(), overlaps.Load())
	}
	w.Wake() // idle again: a wake starts a run
	<-entered
	release <- struct{}{}
	if runs.Load() != 3 {
		t.Errorf("%d runs after a wake of an idle worker, want 3", runs.Load())
	}
}
