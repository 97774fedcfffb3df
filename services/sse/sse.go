// Package sse serves Server-Sent Event streams off the HTTP server's own
// connection handling. For every open response net/http holds a goroutine,
// a background reader and their buffers (about 30 KiB); a stream that waits
// for events needs none of them. Open answers the request's header and takes
// the connection over; a Worker then writes to it on a goroutine of its own
// only while there is something to write. An idle stream costs its
// connection and the caller's state, nothing else.
package sse

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// ErrClosed is the error of a write to a stream that has ended.
var ErrClosed = errors.New("sse: stream closed")

// Stream is one client's event stream.
type Stream struct {
	timeout time.Duration // bound of each write

	mu     sync.Mutex // one write at a time
	closed bool
	// conn is the connection taken over from the server; nil when the
	// server cannot give it up (HTTP/2, a recorder in tests): then the
	// stream writes through w, and its handler waits in Wait until it ends.
	conn net.Conn
	w    http.ResponseWriter
	rc   *http.ResponseController
	done chan struct{} // closed by Close
}

// Open answers r with status 200 and the header set on w (Content-Type
// text/event-stream unless set) and takes the connection over. Each
// write then has timeout to complete: a client that stops reading is cut
// off. The connection closes when the stream does.
func Open(w http.ResponseWriter, r *http.Request, timeout time.Duration) (*Stream, error) {
	h := w.Header()
	if h.Get("Content-Type") == "" {
		h.Set("Content-Type", "text/event-stream")
	}
	s := &Stream{timeout: timeout, done: make(chan struct{})}
	rc := http.NewResponseController(w)
	conn, _, err := rc.Hijack()
	if err != nil {
		// The stream outlives the server's timeouts; each write gets its
		// own. A request with a body keeps its read timeout.
		if r.ContentLength == 0 {
			_ = rc.SetReadDeadline(time.Time{})
		}
		s.w, s.rc = w, rc
		w.WriteHeader(http.StatusOK)
		if err := s.Write(nil); err != nil {
			return nil, err
		}
		return s, nil
	}
	// The server's deadlines stay on a connection it gives up.
	if err := conn.SetDeadline(time.Time{}); err != nil {
		conn.Close()
		return nil, err
	}
	s.conn = conn
	// No length and no chunks: the body is everything until the
	// connection closes.
	h.Del("Content-Length")
	h.Del("Transfer-Encoding")
	h.Set("Connection", "close")
	if h.Get("Date") == "" {
		h.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	}
	var head bytes.Buffer
	proto := "HTTP/1.1"
	if !r.ProtoAtLeast(1, 1) {
		proto = "HTTP/1.0"
	}
	fmt.Fprintf(&head, "%s 200 OK\r\n", proto)
	_ = h.Write(&head)
	head.WriteString("\r\n")
	if err := s.Write(head.Bytes()); err != nil {
		return nil, err
	}
	return s, nil
}

// Write sends p to the client at once; nil p only flushes.
func (s *Stream) Write(p []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	err := s.write(p)
	if err != nil {
		s.closeLocked()
	}
	return err
}

func (s *Stream) write(p []byte) error {
	deadline := time.Now().Add(s.timeout)
	if s.conn != nil {
		if err := s.conn.SetWriteDeadline(deadline); err != nil {
			return err
		}
		_, err := s.conn.Write(p)
		return err
	}
	if err := s.rc.SetWriteDeadline(deadline); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	if _, err := s.w.Write(p); err != nil {
		return err
	}
	return s.rc.Flush()
}

// Kick makes a write blocked on a client that stopped reading fail within
// a couple of seconds, so that its stream can end.
func (s *Stream) Kick() {
	deadline := time.Now().Add(2 * time.Second)
	if s.conn != nil {
		_ = s.conn.SetWriteDeadline(deadline)
		return
	}
	_ = s.rc.SetWriteDeadline(deadline)
}

// Close ends the stream: the connection closes (or the handler waiting in
// Wait returns).
func (s *Stream) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closeLocked()
}

func (s *Stream) closeLocked() {
	if s.closed {
		return
	}
	s.closed = true
	if s.conn != nil {
		_ = s.conn.Close()
	}
	close(s.done)
}

// Closed reports whether the stream has ended.
func (s *Stream) Closed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Wait is what the handler that opened the stream does before it returns:
// nothing when the connection was taken over; otherwise it waits until the
// stream ends or ctx (the request's) does, since a response may not be
// written once its handler has returned. It reports whether the stream
// still runs without the handler.
func (s *Stream) Wait(ctx context.Context) (detached bool) {
	if s.conn != nil {
		return true
	}
	select {
	case <-s.done:
	case <-ctx.Done():
		s.Close()
	}
	return false
}

// Worker runs a function whenever it is woken, on a goroutine of its own
// and one run at a time; a wake during a run makes another run after it.
// Between runs it holds no goroutine.
type Worker struct {
	state atomic.Int32
	run   func()
}

const (
	idle int32 = iota
	running
	rerun // running, and woken again meanwhile
)

// NewWorker returns a Worker of run.
func NewWorker(run func()) *Worker { return &Worker{run: run} }

// Wake has the function run soon; it never waits for it.
func (w *Worker) Wake() {
	for {
		switch w.state.Load() {
		case idle:
			if w.state.CompareAndSwap(idle, running) {
				go w.loop()
				return
			}
		case running:
			if w.state.CompareAndSwap(running, rerun) {
				return
			}
		default:
			return
		}
	}
}

func (w *Worker) loop() {
	for {
		w.run()
		if w.state.CompareAndSwap(running, idle) {
			return
		}
		w.state.Store(running)
	}
}
