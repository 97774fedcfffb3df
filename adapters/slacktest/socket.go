package slacktest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Socket Mode: apps.connections.open, called with an app-level token,
// answers a ws:// URL on this server; the connection gets Slack's hello
// and WebSocket pings, the test pushes envelopes with Push and reads the
// client's acknowledgements with WaitAck, and DropSockets cuts every
// connection the way a network failure does.

// SocketPath is where the WebSocket is served.
const SocketPath = "/link/"

// Ack is an envelope acknowledgement the client sent.
type Ack struct {
	EnvelopeID string          `json:"envelope_id"`
	Payload    json.RawMessage `json:"payload,omitempty"`
}

// Envelope is a Socket Mode request as Slack sends it.
type Envelope struct {
	EnvelopeID             string          `json:"envelope_id"`
	Type                   string          `json:"type"` // events_api, interactive, slash_commands
	Payload                json.RawMessage `json:"payload"`
	AcceptsResponsePayload bool            `json:"accepts_response_payload"`
	RetryAttempt           int             `json:"retry_attempt,omitempty"`
	RetryReason            string          `json:"retry_reason,omitempty"`
}

type socketState struct {
	mu    sync.Mutex // guards conns and acks
	conns []*socketConn
	acks  []Ack
	// opens and ticket change under Server.mu, in apps.connections.open.
	opens, ticket int
}

type socketConn struct {
	ws *websocket.Conn
	wr sync.Mutex // one writer at a time, as gorilla/websocket requires
}

func (c *socketConn) write(v any) error {
	c.wr.Lock()
	defer c.wr.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return c.ws.WriteJSON(v)
}

// socketPing is the interval of the server's WebSocket pings (Slack pings
// about every 10 s; the client reconnects when pings stop).
const socketPing = time.Second

// openSocket answers apps.connections.open; only an app-level token may.
func (s *Server) openSocket(r *http.Request) (map[string]any, string) {
	token := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	switch {
	case token == "":
		return nil, "not_authed"
	case !strings.HasPrefix(token, "xapp-"):
		return nil, "not_allowed_token_type"
	}
	s.socket.opens++
	s.socket.ticket++
	u := fmt.Sprintf("ws://%s%s?ticket=%d&app_id=A0TEST", r.Host, SocketPath, s.socket.ticket)
	return map[string]any{"url": u}, ""
}

var upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}

func (s *Server) serveSocket(w http.ResponseWriter, r *http.Request) {
	ws, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	c := &socketConn{ws: ws}
	s.socket.mu.Lock()
	s.socket.conns = append(s.socket.conns, c)
	n := len(s.socket.conns)
	s.socket.mu.Unlock()
	defer s.dropConn(c)
	if c.write(map[string]any{"type": "hello", "num_connections": n,
		"connection_info": map[string]any{"app_id": "A0TEST"},
		"debug_info":      map[string]any{"host": "slacktest", "approximate_connection_time": 3600}}) != nil {
		return
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		t := time.NewTicker(socketPing)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if ws.WriteControl(websocket.PingMessage, []byte("ping"), time.Now().Add(time.Second)) != nil {
					return
				}
			}
		}
	}()
	for {
		_, data, err := ws.ReadMessage()
		if err != nil {
			return
		}
		var a Ack
		if json.Unmarshal(data, &a) == nil && a.EnvelopeID != "" {
			s.socket.mu.Lock()
			s.socket.acks = append(s.socket.acks, a)
			s.socket.mu.Unlock()
		}
	}
}

func (s *Server) dropConn(c *socketConn) {
	s.socket.mu.Lock()
	s.socket.conns = slices.DeleteFunc(s.socket.conns, func(o *socketConn) bool { return o == c })
	s.socket.mu.Unlock()
	_ = c.ws.Close()
}

// Connected is the number of open Socket Mode connections.
func (s *Server) Connected() int {
	s.socket.mu.Lock()
	defer s.socket.mu.Unlock()
	return len(s.socket.conns)
}

// SocketOpens counts the successful apps.connections.open calls.
func (s *Server) SocketOpens() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.socket.opens
}

// Push sends an envelope over the newest connection, waiting up to five
// seconds for one to exist.
func (s *Server) Push(e Envelope) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.socket.mu.Lock()
		var c *socketConn
		if n := len(s.socket.conns); n > 0 {
			c = s.socket.conns[n-1]
		}
		s.socket.mu.Unlock()
		if c != nil {
			return c.write(e)
		}
		if time.Now().After(deadline) {
			return errors.New("slacktest: no Socket Mode connection")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Acks returns every acknowledgement received so far, in order.
func (s *Server) Acks() []Ack {
	s.socket.mu.Lock()
	defer s.socket.mu.Unlock()
	return slices.Clone(s.socket.acks)
}

// WaitAck waits up to d for the acknowledgement of envelope id.
func (s *Server) WaitAck(id string, d time.Duration) (Ack, bool) {
	deadline := time.Now().Add(d)
	for {
		for _, a := range s.Acks() {
			if a.EnvelopeID == id {
				return a, true
			}
		}
		if time.Now().After(deadline) {
			return Ack{}, false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// DropSockets closes every connection without a close handshake.
func (s *Server) DropSockets() {
	s.socket.mu.Lock()
	conns := slices.Clone(s.socket.conns)
	s.socket.mu.Unlock()
	for _, c := range conns {
		_ = c.ws.UnderlyingConn().Close()
	}
}
