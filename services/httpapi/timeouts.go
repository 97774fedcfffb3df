package httpapi

import (
	"net/http"
	"time"
)

// Timeouts bound how long one connection may hold the server. A request
// whose headers or body trickle in is cut off by Read, before any handler
// (a webhook that verifies a signature over the body included) waits on it.
type Timeouts struct {
	// ReadHeader bounds the request line and headers (default 10s, at
	// most Read).
	ReadHeader time.Duration
	// Read bounds the whole request, body included (default 30s).
	Read time.Duration
	// Write bounds the answer, from the end of the request headers
	// (default 2m). The event stream and the timeline long poll extend it.
	Write time.Duration
	// Idle bounds a kept-alive connection between requests (default 2m).
	Idle time.Duration
}

// DefaultTimeouts are the timeouts of a hub that sets none.
var DefaultTimeouts = Timeouts{ReadHeader: 10 * time.Second, Read: 30 * time.Second, Write: 2 * time.Minute, Idle: 2 * time.Minute}

// withDefaults fills unset timeouts.
func (t Timeouts) withDefaults() Timeouts {
	d := DefaultTimeouts
	if t.Read <= 0 {
		t.Read = d.Read
	}
	if t.ReadHeader <= 0 {
		t.ReadHeader = min(d.ReadHeader, t.Read)
	}
	if t.Write <= 0 {
		t.Write = d.Write
	}
	if t.Idle <= 0 {
		t.Idle = d.Idle
	}
	return t
}

// HTTPServer is the http.Server that serves s with its timeouts.
func (s *Server) HTTPServer() *http.Server {
	t := s.timeouts
	return &http.Server{Handler: s, ReadHeaderTimeout: t.ReadHeader, ReadTimeout: t.Read, WriteTimeout: t.Write, IdleTimeout: t.Idle}
}

// holdOpen lets a long-lived answer (a long poll, an event stream) outlast
// the server's timeouts: writes may go on for another Write timeout from
// now, and reads until the client leaves (a read is how the server notices
// a client that hung up). A request that carries a body keeps the Read
// timeout, so a trickled body is still cut off. A stream calls holdOpen
// again before each write, so a client that stops reading is cut off too.
func (s *Server) holdOpen(w http.ResponseWriter, r *http.Request, longer time.Duration) error {
	rc := http.NewResponseController(w)
	if r.ContentLength == 0 {
		if err := rc.SetReadDeadline(time.Time{}); err != nil {
			return err
		}
	}
	return rc.SetWriteDeadline(time.Now().Add(longer + s.timeouts.Write))
}
