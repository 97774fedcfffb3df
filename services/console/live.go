package console

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/hikeshi/hikeshi/services/incident"
	"github.com/hikeshi/hikeshi/services/readmodel"
	"github.com/hikeshi/hikeshi/services/sse"
)

const (
	// liveKeepAlive is the pause after which a quiet stream sends a
	// comment, so proxies keep it open (and a browser that left is
	// noticed).
	liveKeepAlive = 15 * time.Second
	// liveWrite bounds each write to a client: one that stops reading is
	// cut off.
	liveWrite = 30 * time.Second
	liveBatch = 200
)

// liveMessage is one batch of new events: the timeline entries, oldest
// first, and the incident's header after them, both rendered by the
// page's own templates.
type liveMessage struct {
	Entries []string `json:"entries"`
	Header  string   `json:"header"`
}

// live follows the incident's timeline as Server-Sent Events, from the
// event after ?after= (or Last-Event-ID, when the browser reconnects). It
// reads the timeline store, the page's own source, so what it sends is
// what a reload would show. The store's commits wake it (any process's);
// while the incident is quiet it holds no goroutine (package sse).
func (c *Console) live(w http.ResponseWriter, r *http.Request, who Caller) {
	st, ok := c.load(w, r, who)
	if !ok {
		return
	}
	after, _ := strconv.ParseUint(r.URL.Query().Get("after"), 10, 64)
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		after, _ = strconv.ParseUint(v, 10, 64)
	}
	w.Header().Set("Cache-Control", "no-store")
	out, err := sse.Open(w, r, liveWrite)
	if err != nil {
		return
	}
	if out.Write([]byte(": following "+st.CaseNumber+"\n\n")) != nil {
		return
	}
	// The request outlives its handler here, but not its cancellation.
	l := &liveTimeline{c: c, r: r.WithContext(context.WithoutCancel(r.Context())), id: st.ID, after: after, out: out, quiet: time.Now()}
	l.worker = sse.NewWorker(l.step)
	l.keepAlive = time.AfterFunc(liveKeepAlive, l.worker.Wake)
	if !c.follow(l) {
		l.end()
		return
	}
	l.worker.Wake()
	if !out.Wait(r.Context()) {
		l.worker.Wake() // the stream ended with its handler
	}
}

// liveTimeline is one browser's live timeline; its worker runs step at
// the incident's commits, at the keep-alive and when the console stops.
type liveTimeline struct {
	c         *Console
	r         *http.Request
	id        string
	after     uint64
	out       *sse.Stream
	worker    *sse.Worker
	keepAlive *time.Timer
	quiet     time.Time // of the last write
	armed     atomic.Bool
	unarm     func()
	ended     bool
}

// step writes the incident's new entries, then waits for its next commit.
func (l *liveTimeline) step() {
	c := l.c
	if l.ended {
		return
	}
	if l.out.Closed() || c.stopped() {
		l.end()
		return
	}
	for {
		if l.armed.CompareAndSwap(false, true) { // before the read: no commit is missed
			l.unarm = c.d.Timeline.OnChanged(l.id, func() {
				l.armed.Store(false)
				l.worker.Wake()
			})
		}
		entries, err := c.d.Timeline.Timeline(l.r.Context(), l.id, l.after, liveBatch)
		if err != nil {
			l.end() // the browser reconnects from Last-Event-ID
			return
		}
		if len(entries) == 0 {
			break
		}
		// Asked again each time: the stream ends with the caller's session
		// or token, and follows a change of role.
		who, ok := c.d.Caller(l.r)
		if !ok {
			l.end()
			return
		}
		st, err := c.d.Commands.Get(l.r.Context(), l.id)
		if err != nil || !who.Can(Read, &st) {
			l.end()
			return
		}
		msg, err := c.liveMessage(st, entries)
		if err != nil {
			c.d.Logger.Error("console: rendering the live timeline failed", "err", err)
			l.end()
			return
		}
		l.after = entries[len(entries)-1].Seq
		if l.out.Write(fmt.Appendf(nil, "id: %d\nevent: entries\ndata: %s\n\n", l.after, msg)) != nil {
			l.end()
			return
		}
		l.quiet = time.Now()
	}
	if time.Since(l.quiet) >= liveKeepAlive {
		if _, ok := c.d.Caller(l.r); !ok || l.out.Write([]byte(": still here\n\n")) != nil {
			l.end()
			return
		}
		l.quiet = time.Now()
	}
	l.keepAlive.Reset(liveKeepAlive - time.Since(l.quiet))
}

func (l *liveTimeline) end() {
	l.ended = true
	l.keepAlive.Stop()
	if l.unarm != nil {
		l.unarm()
	}
	l.out.Close()
	l.c.unfollow(l)
}

// follow counts l among the live timelines the console ends when it
// stops; false: it is stopping.
func (c *Console) follow(l *liveTimeline) bool {
	c.livesMu.Lock()
	defer c.livesMu.Unlock()
	if c.stopped() {
		return false
	}
	c.lives[l] = struct{}{}
	return true
}

func (c *Console) unfollow(l *liveTimeline) {
	c.livesMu.Lock()
	defer c.livesMu.Unlock()
	delete(c.lives, l)
}

func (c *Console) stopped() bool {
	select {
	case <-c.stopping:
		return true
	default:
		return false
	}
}

func (c *Console) liveMessage(st incident.State, es []readmodel.Entry) ([]byte, error) {
	var m liveMessage
	for _, e := range describeAll(es) {
		html, err := c.fragment("incident", "entry", e)
		if err != nil {
			return nil, err
		}
		m.Entries = append(m.Entries, html)
	}
	var err error
	if m.Header, err = c.fragment("incident", "header", incidentPage{view: newView(st)}); err != nil {
		return nil, err
	}
	return json.Marshal(m)
}
