// Package slacktest is a local Slack Web API for tests: it speaks the wire
// format (form or JSON bodies, {"ok":true,...} and {"ok":false,"error":...}
// answers, 429 with Retry-After), keeps channels and messages, records
// every call, and can be told to fail or to enforce per-method rate tiers.
// It also serves Socket Mode (socket.go) for apps that have no public URL.
package slacktest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// Call is one recorded request.
type Call struct {
	Method string
	Params url.Values // form fields; a JSON body's top-level fields as strings
	Status int        // HTTP status answered
	Error  string     // Slack error code, "" when ok
}

// Message is a message as the server keeps it.
type Message struct {
	TS, User, Text, ThreadTS string
	Blocks                   string
	// Metadata is the message metadata as posted (JSON with event_type and
	// event_payload); conversations.history returns it only when asked
	// with include_all_metadata.
	Metadata string
	Files    []File
	Replies  []Message
}

// File is an attachment of a message.
type File struct{ ID, Name, Permalink string }

// Channel is a conversation as the server keeps it.
type Channel struct {
	ID, Name         string
	Private          bool
	Archived         bool
	Topic, Purpose   string
	Members          []string
	Messages         []Message // oldest first
	Pins             []string
	CreatedByThisApp bool
}

// Fault is an answer to give instead of handling a call.
type Fault struct {
	Status     int // 429 or 5xx
	RetryAfter int // seconds, for 429
	// Accepted carries the call out before failing: Slack acted, and the
	// answer was lost on the way back.
	Accepted bool
	// Drop closes the connection instead of answering Status.
	Drop bool
}

// Tier limits one method to PerMinute calls per window of Window (default
// one minute), answering 429 with the seconds left in the window.
// PerChannel counts each channel apart (chat.postMessage: about one
// message per second per channel).
type Tier struct {
	PerMinute  int
	Window     time.Duration
	PerChannel bool
}

// Server is the fake Slack.
type Server struct {
	*httptest.Server
	BotUser string

	mu       sync.Mutex
	calls    []Call
	channels map[string]*Channel
	groups   map[string][]string
	users    map[string]User
	faults   map[string][]Fault
	tiers    map[string]Tier
	windows  map[string]*window
	seq      int
	lastTS   int64 // microseconds of the last message ts handed out
	clock    func() time.Time
	socket   socketState
}

type window struct {
	start time.Time
	n     int
}

// New starts a server; close it with Close (registered on t by the caller).
func New() *Server {
	s := &Server{BotUser: "UBOT00001", channels: map[string]*Channel{}, groups: map[string][]string{}, users: map[string]User{},
		faults: map[string][]Fault{}, tiers: map[string]Tier{}, windows: map[string]*window{}, clock: time.Now}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// APIURL is the value for slack.OptionAPIURL.
func (s *Server) APIURL() string { return s.URL + "/api/" }

// Clock replaces the server's clock (tiers use it).
func (s *Server) Clock(now func() time.Time) {
	s.mu.Lock()
	s.clock = now
	s.mu.Unlock()
}

// Fail makes the next calls of method answer with the given faults, in order.
func (s *Server) Fail(method string, f ...Fault) {
	s.mu.Lock()
	s.faults[method] = append(s.faults[method], f...)
	s.mu.Unlock()
}

// Limit enforces a rate tier on method.
func (s *Server) Limit(method string, t Tier) {
	s.mu.Lock()
	if t.Window == 0 {
		t.Window = time.Minute
	}
	s.tiers[method] = t
	s.mu.Unlock()
}

// UserGroup defines a user group's members.
func (s *Server) UserGroup(id string, users ...string) {
	s.mu.Lock()
	s.groups[id] = users
	s.mu.Unlock()
}

// User is a workspace member, as users.info describes them.
type User struct {
	ID, Name, RealName, Email string
}

// AddUser makes a member known to users.info.
func (s *Server) AddUser(u User) {
	s.mu.Lock()
	s.users[u.ID] = u
	s.mu.Unlock()
}

// AddChannel creates a channel as if someone else had (id returned).
func (s *Server) AddChannel(name string, private bool) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addChannel(name, private, false).ID
}

// AddMessage posts a message as a user; threadTS makes it a reply.
func (s *Server) AddMessage(channel, user, text, threadTS string, files ...File) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := Message{TS: s.nextTS(), User: user, Text: text, ThreadTS: threadTS, Files: files}
	s.post(s.channels[channel], m)
	return m.TS
}

// Calls returns the recorded calls.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// Count counts the successful calls of a method.
func (s *Server) Count(method string) int {
	n := 0
	for _, c := range s.Calls() {
		if c.Method == method && c.Error == "" && c.Status == http.StatusOK {
			n++
		}
	}
	return n
}

// Channels returns a copy of every channel, by id.
func (s *Server) Channels() map[string]Channel {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]Channel{}
	for id, c := range s.channels {
		cp := *c
		cp.Messages = slices.Clone(c.Messages)
		cp.Members = slices.Clone(c.Members)
		out[id] = cp
	}
	return out
}

// ChannelByName finds a channel.
func (s *Server) ChannelByName(name string) (Channel, bool) {
	for _, c := range s.Channels() {
		if c.Name == name {
			return c, true
		}
	}
	return Channel{}, false
}

// nextTS is a message ts from the server's clock, unique and increasing
// as Slack's are within a channel.
func (s *Server) nextTS() string {
	us := max(s.clock().UnixMicro(), s.lastTS+1)
	s.lastTS = us
	return fmt.Sprintf("%d.%06d", us/1_000_000, us%1_000_000)
}

func (s *Server) addChannel(name string, private, ours bool) *Channel {
	s.seq++
	prefix := "C"
	if private {
		prefix = "G"
	}
	c := &Channel{ID: fmt.Sprintf("%s%08d", prefix, s.seq), Name: name, Private: private, CreatedByThisApp: ours}
	s.channels[c.ID] = c
	return c
}

func (s *Server) post(c *Channel, m Message) {
	if m.ThreadTS != "" && m.ThreadTS != m.TS {
		for i := range c.Messages {
			if c.Messages[i].TS == m.ThreadTS {
				c.Messages[i].Replies = append(c.Messages[i].Replies, m)
				return
			}
		}
	}
	c.Messages = append(c.Messages, m)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == SocketPath {
		s.serveSocket(w, r)
		return
	}
	method, ok := strings.CutPrefix(r.URL.Path, "/api/")
	if !ok || r.Method != http.MethodPost && r.Method != http.MethodGet {
		http.NotFound(w, r)
		return
	}
	params, err := readParams(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	call := Call{Method: method, Params: params, Status: http.StatusOK}
	defer func() { s.calls = append(s.calls, call) }()
	if q := s.faults[method]; len(q) > 0 {
		f := q[0]
		s.faults[method] = q[1:]
		call.Status = f.Status
		if f.Accepted {
			if _, code := s.handle(method, params); code != "" {
				call.Error = code
			}
		}
		if f.Drop {
			if c, _, err := w.(http.Hijacker).Hijack(); err == nil {
				c.Close()
			}
			return
		}
		if f.Status == http.StatusTooManyRequests {
			call.Error = "ratelimited"
			w.Header().Set("Retry-After", strconv.Itoa(f.RetryAfter))
			writeJSON(w, f.Status, map[string]any{"ok": false, "error": "ratelimited"})
			return
		}
		http.Error(w, "upstream trouble", f.Status)
		return
	}
	if t, ok := s.tiers[method]; ok {
		now := s.clock()
		wk := method
		if t.PerChannel {
			wk += "|" + params.Get("channel")
		}
		win := s.windows[wk]
		if win == nil || now.Sub(win.start) >= t.Window {
			win = &window{start: now}
			s.windows[wk] = win
		}
		if win.n >= t.PerMinute {
			left := t.Window - now.Sub(win.start)
			secs := int((left + time.Second - 1) / time.Second)
			call.Status, call.Error = http.StatusTooManyRequests, "ratelimited"
			w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
			writeJSON(w, http.StatusTooManyRequests, map[string]any{"ok": false, "error": "ratelimited"})
			return
		}
		win.n++
	}
	var resp map[string]any
	var errCode string
	if method == "apps.connections.open" {
		resp, errCode = s.openSocket(r)
	} else {
		resp, errCode = s.handle(method, params)
	}
	if errCode != "" {
		call.Error = errCode
		writeJSON(w, http.StatusOK, map[string]any{"ok": false, "error": errCode})
		return
	}
	resp["ok"] = true
	writeJSON(w, http.StatusOK, resp)
}

func readParams(r *http.Request) (url.Values, error) {
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		var m map[string]json.RawMessage
		if len(b) == 0 { // apps.connections.open: the token says it all
			return url.Values{}, nil
		}
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("invalid JSON body: %w", err)
		}
		v := url.Values{}
		for k, raw := range m {
			var str string
			if json.Unmarshal(raw, &str) == nil {
				v.Set(k, str)
			} else {
				v.Set(k, string(raw))
			}
		}
		return v, nil
	}
	if err := r.ParseForm(); err != nil {
		return nil, err
	}
	return r.Form, nil
}

// truthy reads a boolean argument as Slack does: clients send "true" or "1".
func truthy(v string) bool { return v == "true" || v == "1" }

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) channelJSON(c *Channel) map[string]any {
	return map[string]any{
		"id": c.ID, "name": c.Name, "is_channel": !c.Private, "is_private": c.Private, "is_group": false,
		"is_archived": c.Archived, "creator": s.BotUser, "is_member": true,
		"topic":   map[string]any{"value": c.Topic},
		"purpose": map[string]any{"value": c.Purpose},
	}
}

func msgJSON(m Message, metadata bool) map[string]any {
	out := map[string]any{"type": "message", "ts": m.TS, "user": m.User, "text": m.Text}
	if metadata && m.Metadata != "" {
		out["metadata"] = json.RawMessage(m.Metadata)
	}
	if m.ThreadTS != "" {
		out["thread_ts"] = m.ThreadTS
	}
	if len(m.Replies) > 0 {
		out["thread_ts"] = m.TS
		out["reply_count"] = len(m.Replies)
	}
	if len(m.Files) > 0 {
		var fs []map[string]any
		for _, f := range m.Files {
			fs = append(fs, map[string]any{"id": f.ID, "name": f.Name, "permalink": f.Permalink})
		}
		out["files"] = fs
	}
	return out
}

// page cuts items at cursor (an offset) into a page of limit.
func page[T any](items []T, cursor string, limit int) ([]T, string) {
	start, _ := strconv.Atoi(cursor)
	if limit <= 0 {
		limit = 100
	}
	start = min(start, len(items))
	end := min(start+limit, len(items))
	next := ""
	if end < len(items) {
		next = strconv.Itoa(end)
	}
	return items[start:end], next
}

func (s *Server) handle(method string, p url.Values) (map[string]any, string) {
	limit, _ := strconv.Atoi(p.Get("limit"))
	ch := s.channels[p.Get("channel")]
	needChannel := func() string {
		if ch == nil {
			return "channel_not_found"
		}
		if ch.Archived {
			return "is_archived"
		}
		return ""
	}
	switch method {
	case "auth.test":
		return map[string]any{"user_id": s.BotUser, "team_id": "T0000TEST", "url": "https://hikeshi-test.slack.com/"}, ""
	case "conversations.create":
		name := p.Get("name")
		if code := ChannelNameError(name); code != "" {
			return nil, code
		}
		for _, c := range s.channels {
			if c.Name == name {
				return nil, "name_taken"
			}
		}
		c := s.addChannel(name, truthy(p.Get("is_private")), true)
		c.Members = []string{s.BotUser}
		return map[string]any{"channel": s.channelJSON(c)}, ""
	case "conversations.list":
		types := p.Get("types")
		var all []*Channel
		for _, c := range s.channels {
			if c.Archived && truthy(p.Get("exclude_archived")) {
				continue
			}
			if c.Private && !strings.Contains(types, "private_channel") || !c.Private && types != "" && !strings.Contains(types, "public_channel") {
				continue
			}
			all = append(all, c)
		}
		sort.Slice(all, func(i, j int) bool { return all[i].ID < all[j].ID })
		pg, next := page(all, p.Get("cursor"), limit)
		var out []map[string]any
		for _, c := range pg {
			out = append(out, s.channelJSON(c))
		}
		return map[string]any{"channels": out, "response_metadata": map[string]any{"next_cursor": next}}, ""
	case "conversations.setTopic", "conversations.setPurpose":
		if e := needChannel(); e != "" {
			return nil, e
		}
		if method == "conversations.setTopic" {
			ch.Topic = p.Get("topic")
		} else {
			ch.Purpose = p.Get("purpose")
		}
		return map[string]any{"channel": s.channelJSON(ch)}, ""
	case "conversations.invite":
		if e := needChannel(); e != "" {
			return nil, e
		}
		added := false
		for _, u := range strings.Split(p.Get("users"), ",") {
			if u != "" && !slices.Contains(ch.Members, u) {
				ch.Members = append(ch.Members, u)
				added = true
			}
		}
		if !added {
			return nil, "already_in_channel"
		}
		return map[string]any{"channel": s.channelJSON(ch)}, ""
	case "chat.postMessage":
		if e := needChannel(); e != "" {
			return nil, e
		}
		if p.Get("text") == "" && p.Get("blocks") == "" {
			return nil, "no_text"
		}
		meta := p.Get("metadata")
		if meta != "" {
			var md struct {
				EventType    string          `json:"event_type"`
				EventPayload json.RawMessage `json:"event_payload"`
			}
			if json.Unmarshal([]byte(meta), &md) != nil || md.EventType == "" || len(md.EventPayload) == 0 {
				return nil, "invalid_metadata_format"
			}
		}
		m := Message{TS: s.nextTS(), User: s.BotUser, Text: p.Get("text"), Blocks: p.Get("blocks"), ThreadTS: p.Get("thread_ts"), Metadata: meta}
		s.post(ch, m)
		return map[string]any{"channel": ch.ID, "ts": m.TS, "message": msgJSON(m, true)}, ""
	case "chat.update":
		if e := needChannel(); e != "" {
			return nil, e
		}
		for i := range ch.Messages {
			if ch.Messages[i].TS == p.Get("ts") {
				ch.Messages[i].Text, ch.Messages[i].Blocks = p.Get("text"), p.Get("blocks")
				return map[string]any{"channel": ch.ID, "ts": p.Get("ts"), "text": p.Get("text")}, ""
			}
		}
		return nil, "message_not_found"
	case "pins.add":
		if e := needChannel(); e != "" {
			return nil, e
		}
		if slices.Contains(ch.Pins, p.Get("timestamp")) {
			return nil, "already_pinned"
		}
		ch.Pins = append(ch.Pins, p.Get("timestamp"))
		return map[string]any{}, ""
	case "chat.getPermalink":
		if ch == nil {
			return nil, "channel_not_found"
		}
		ts := p.Get("message_ts")
		return map[string]any{"channel": ch.ID, "permalink": "https://hikeshi-test.slack.com/archives/" + ch.ID + "/p" + strings.ReplaceAll(ts, ".", "")}, ""
	case "conversations.history":
		if ch == nil {
			return nil, "channel_not_found"
		}
		msgs := slices.Clone(ch.Messages)
		slices.Reverse(msgs) // newest first, as Slack answers
		if latest := p.Get("latest"); latest != "" {
			var keep []Message
			for _, m := range msgs {
				if m.TS < latest || m.TS == latest && truthy(p.Get("inclusive")) {
					keep = append(keep, m)
				}
			}
			msgs = keep
		}
		if oldest := p.Get("oldest"); oldest != "" {
			var keep []Message
			for _, m := range msgs {
				if m.TS > oldest || m.TS == oldest && truthy(p.Get("inclusive")) {
					keep = append(keep, m)
				}
			}
			msgs = keep
		}
		pg, next := page(msgs, p.Get("cursor"), limit)
		var out []map[string]any
		for _, m := range pg {
			out = append(out, msgJSON(m, truthy(p.Get("include_all_metadata"))))
		}
		return map[string]any{"messages": out, "has_more": next != "", "response_metadata": map[string]any{"next_cursor": next}}, ""
	case "conversations.replies":
		if ch == nil {
			return nil, "channel_not_found"
		}
		for _, m := range ch.Messages {
			if m.TS != p.Get("ts") {
				continue
			}
			thread := append([]Message{m}, m.Replies...)
			pg, next := page(thread, p.Get("cursor"), limit)
			var out []map[string]any
			for _, r := range pg {
				j := msgJSON(r, truthy(p.Get("include_all_metadata")))
				j["thread_ts"] = m.TS
				out = append(out, j)
			}
			return map[string]any{"messages": out, "has_more": next != "", "response_metadata": map[string]any{"next_cursor": next}}, ""
		}
		return nil, "thread_not_found"
	case "conversations.archive":
		if e := needChannel(); e != "" {
			if e == "is_archived" {
				return nil, "already_archived"
			}
			return nil, e
		}
		ch.Archived = true
		return map[string]any{}, ""
	case "usergroups.users.list":
		users, ok := s.groups[p.Get("usergroup")]
		if !ok {
			return nil, "no_such_subteam"
		}
		return map[string]any{"users": users}, ""
	case "users.info":
		u, ok := s.users[p.Get("user")]
		if !ok {
			return nil, "user_not_found"
		}
		return map[string]any{"user": map[string]any{"id": u.ID, "name": u.Name, "real_name": u.RealName,
			"profile": map[string]any{"real_name": u.RealName, "display_name": u.Name, "email": u.Email}}}, ""
	case "views.open":
		if p.Get("trigger_id") == "" {
			return nil, "invalid_trigger_id"
		}
		s.seq++
		return map[string]any{"view": map[string]any{"id": fmt.Sprintf("V%08d", s.seq)}}, ""
	case "chat.postEphemeral":
		if e := needChannel(); e != "" {
			return nil, e
		}
		return map[string]any{"message_ts": s.nextTS()}, ""
	}
	return nil, "unknown_method"
}

// ChannelNameError is the error conversations.create answers for name,
// "" when Slack takes it. Slack's documented rule: names may only contain
// lowercase letters, numbers, hyphens and underscores, and must be 80
// characters or less. Letters and numbers are any script's (#障害対応 is a
// valid name); the combining marks that some scripts write letters with
// belong to their letter.
func ChannelNameError(name string) string {
	switch {
	case name == "":
		return "invalid_name_required"
	case utf8.RuneCountInString(name) > 80:
		return "invalid_name_maxlength"
	case strings.ContainsFunc(name, func(r rune) bool {
		return !(r == '-' || r == '_' || unicode.IsLetter(r) && unicode.ToLower(r) == r || unicode.IsDigit(r) || unicode.IsMark(r))
	}):
		return "invalid_name_specials"
	case !strings.ContainsFunc(name, func(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }):
		return "invalid_name_punctuation"
	}
	return ""
}

// PutChannel adds a channel with a chosen id (the configured announcement
// and security channels).
func (s *Server) PutChannel(c Channel) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cp := c
	s.channels[c.ID] = &cp
}
