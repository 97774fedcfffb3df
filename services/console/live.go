package console

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/hikeshi/hikeshi/services/incident"
	"github.com/hikeshi/hikeshi/services/readmodel"
)

const (
	// livePoll is how often the live timeline looks at the store when no
	// commit in this process woke it (the timeline projector may run in
	// another process).
	livePoll = 500 * time.Millisecond
	// liveKeepAlive is the pause after which a quiet stream sends a
	// comment, so proxies keep it open.
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
// what a reload would show.
func (c *Console) live(w http.ResponseWriter, r *http.Request, who Caller) {
	st, ok := c.load(w, r, who)
	if !ok {
		return
	}
	after, _ := strconv.ParseUint(r.URL.Query().Get("after"), 10, 64)
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		after, _ = strconv.ParseUint(v, 10, 64)
	}
	rc := http.NewResponseController(w)
	// The stream outlasts the server's timeouts; each write gets its own.
	_ = rc.SetReadDeadline(time.Time{})
	write := func(b []byte) error {
		_ = rc.SetWriteDeadline(time.Now().Add(liveWrite))
		if _, err := w.Write(b); err != nil {
			return err
		}
		return rc.Flush()
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	if write([]byte(": following "+st.CaseNumber+"\n\n")) != nil {
		return
	}
	poll := time.NewTicker(livePoll)
	defer poll.Stop()
	quiet := time.Now()
	for {
		changed := c.d.Timeline.Changed(st.ID)
		entries, err := c.d.Timeline.Timeline(r.Context(), st.ID, after, liveBatch)
		if err != nil {
			return // the browser reconnects from Last-Event-ID
		}
		if len(entries) > 0 {
			// Asked again each time: the stream ends with the caller's
			// session or token, and follows a change of role.
			if who, ok = c.d.Caller(r); !ok {
				return
			}
			if st, err = c.d.Commands.Get(r.Context(), st.ID); err != nil || !who.Can(Read, &st) {
				return
			}
			msg, err := c.liveMessage(st, entries)
			if err != nil {
				c.d.Logger.Error("console: rendering the live timeline failed", "err", err)
				return
			}
			after = entries[len(entries)-1].Seq
			if write(fmt.Appendf(nil, "id: %d\nevent: entries\ndata: %s\n\n", after, msg)) != nil {
				return
			}
			quiet = time.Now()
			continue
		}
		if time.Since(quiet) > liveKeepAlive {
			if _, ok := c.d.Caller(r); !ok || write([]byte(": still here\n\n")) != nil {
				return
			}
			quiet = time.Now()
		}
		select {
		case <-r.Context().Done():
			return
		case <-c.stopping:
			return
		case <-changed:
		case <-poll.C:
		}
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
