package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/services/command"
	"github.com/hikeshi/hikeshi/services/incident"
	"github.com/hikeshi/hikeshi/services/readmodel"
)

// timelinePage is how many events the incident page shows at a time,
// newest first; older ones are a link away.
const timelinePage = 100

// form is one form as the page shows it again after a refusal: what the
// person typed, and why it was refused, next to the field or above the
// form.
type form struct {
	V       map[string]string
	E       map[string]string
	Problem string
}

type incidentPage struct {
	view
	Entries []entry
	// Older links to the events before the ones shown; Paged: this is
	// not the newest page, which alone follows the timeline live.
	Older string
	Paged bool
	// After is the newest event shown: the live timeline continues from
	// it.
	After  uint64
	CanAct bool
	// Seen is, per form, the value it changes as the page shows it.
	Seen map[string]string
	// F holds each command's form (severity, status, commander, note,
	// close).
	F map[string]*form
	// Slider: the time slider is shown, over the incident's Total events;
	// At, when set, is the event the page shows the incident after.
	Slider    bool
	Total, At int
	// Occurred: the timeline as the facts happened (a backdated note where
	// it belongs), instead of as they were recorded.
	Occurred bool
	// Milestones the incident reached, recorded or derived.
	Milestones []incident.Milestone
}

func (p incidentPage) title() string { return p.CaseNumber + " " + p.Name }

// commandForm is one command's form: its fields, the command it makes,
// and what of the incident it changes (nil for a note, which depends on
// nothing). The form carries that value as the person saw it ("seen"): a
// change made meanwhile by someone else to that value is a conflict,
// explained to the person with their input kept; a change to anything
// else (a note, another field) is not.
type commandForm struct {
	fields []string
	build  func(url.Values) incident.Command
	seen   func(incident.State) string
}

func seenStatus(st incident.State) string { return string(st.Status) }

var commandForms = map[string]commandForm{
	"severity": {[]string{"severity", "reason"}, func(v url.Values) incident.Command {
		return incident.ChangeSeverity{Severity: v.Get("severity"), Reason: v.Get("reason")}
	}, func(st incident.State) string { return string(st.Severity) }},
	"status": {[]string{"status", "message"}, func(v url.Values) incident.Command {
		return incident.UpdateStatus{Status: v.Get("status"), Message: v.Get("message")}
	}, seenStatus},
	"commander": {[]string{"user"}, func(v url.Values) incident.Command {
		return incident.AssignCommander{User: v.Get("user")}
	}, func(st incident.State) string { return st.Commander }},
	"note": {[]string{"text"}, func(v url.Values) incident.Command {
		return incident.AddNote{Text: v.Get("text")}
	}, nil},
	"close": {[]string{"resolution", "lessons_learned"}, func(v url.Values) incident.Command {
		return incident.Close{Resolution: v.Get("resolution"), LessonsLearned: v.Get("lessons_learned")}
	}, seenStatus},
}

// seenValues is, per form, the value it changes as st has it.
func seenValues(st incident.State) map[string]string {
	out := map[string]string{}
	for name, f := range commandForms {
		if f.seen != nil {
			out[name] = f.seen(st)
		}
	}
	return out
}

// fieldLabels name the fields in messages.
var fieldLabels = map[string]string{
	"severity": "Severity", "reason": "Reason", "status": "Status", "message": "Message", "user": "Commander",
	"text": "Note", "resolution": "Resolution", "lessons_learned": "Lessons learned",
	"title": "Title", "service": "Service", "summary": "Summary", "declared_by": "Declared by",
}

// load finds the incident of the request's {id} (an id or a case number)
// that the caller may read. An incident the caller may not read is
// answered as unknown: its existence is not confirmed.
func (c *Console) load(w http.ResponseWriter, r *http.Request, who Caller) (incident.State, bool) {
	id, err := c.d.Commands.Resolve(r.Context(), r.PathValue("id"))
	var st incident.State
	if err == nil {
		st, err = c.d.Commands.Get(r.Context(), id)
	}
	switch {
	case errors.Is(err, incident.ErrNotFound), err == nil && !who.Can(Read, &st):
		c.fail(w, r, who, http.StatusNotFound, "No incident "+strconv.Quote(r.PathValue("id"))+".")
		return st, false
	case err != nil:
		c.d.Logger.Error("console: loading an incident failed", "ref", r.PathValue("id"), "err", err)
		c.fail(w, r, who, http.StatusServiceUnavailable, "The incident could not be loaded from the event bus; try again in a moment.")
		return st, false
	}
	return st, true
}

// incident is the incident page.
func (c *Console) incident(w http.ResponseWriter, r *http.Request, who Caller) {
	st, ok := c.load(w, r, who)
	if !ok {
		return
	}
	if r.URL.Query().Has("at") && c.d.History != nil {
		c.showPast(w, r, who, st)
		return
	}
	c.catchUp(r.Context(), st)
	c.showIncident(w, r, who, http.StatusOK, st, nil)
}

// catchUpWait bounds how long a page waits for the timeline store to hold
// the events its header shows.
const catchUpWait = 2 * time.Second

// catchUp waits, briefly, until the timeline store has the incident's
// events up to the version just read from the bus: a page opened right
// after a command shows that command on its timeline too.
func (c *Console) catchUp(ctx context.Context, st incident.State) {
	ctx, cancel := context.WithTimeout(ctx, catchUpWait)
	defer cancel()
	for {
		changed := c.d.Timeline.Changed(st.ID)
		last, err := c.d.Timeline.TimelineBefore(ctx, st.ID, 0, 1)
		if err != nil || len(last) > 0 && last[0].Seq >= st.Version {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// showIncident renders the page with the forms as given (nil: empty).
func (c *Console) showIncident(w http.ResponseWriter, r *http.Request, who Caller, status int, st incident.State, forms map[string]*form) {
	p := incidentPage{view: newView(st), CanAct: who.Can(Act, &st), Seen: seenValues(st), F: map[string]*form{},
		Slider: c.d.History != nil, Total: st.Events}
	for name := range commandForms {
		p.F[name] = &form{V: map[string]string{}, E: map[string]string{}}
		if f, ok := forms[name]; ok {
			p.F[name] = f
		}
	}
	var before uint64
	if v := r.URL.Query().Get("before"); v != "" {
		before, _ = strconv.ParseUint(v, 10, 64)
		p.Paged = before != 0
	}
	p.Milestones = st.Milestones.Effective()
	if r.URL.Query().Get("order") == "occurred" {
		c.showOccurred(w, r, who, status, p)
		return
	}
	if !c.fillTimeline(w, r, who, &p, before) {
		return
	}
	c.render(w, r, who, status, "incident", p)
}

// fillTimeline puts on the page the events before sequence before (0: the
// newest), a page of them; on failure it answers the request itself.
func (c *Console) fillTimeline(w http.ResponseWriter, r *http.Request, who Caller, p *incidentPage, before uint64) bool {
	entries, err := c.d.Timeline.TimelineBefore(r.Context(), p.ID, before, timelinePage)
	if err != nil {
		c.d.Logger.Error("console: reading a timeline failed", "incident", p.ID, "err", err)
		c.fail(w, r, who, http.StatusInternalServerError, "The timeline could not be read; try again, and check the hub's log if it persists.")
		return false
	}
	p.Entries = describeAll(entries)
	if len(entries) > 0 {
		if !p.Paged && p.At == 0 {
			p.After = entries[0].Seq
		}
		if len(entries) == timelinePage {
			p.Older = fmt.Sprintf("/incidents/%s?before=%d#timeline", p.CaseNumber, entries[len(entries)-1].Seq)
		}
	}
	return true
}

// command runs one of the incident's forms through the command handler,
// recorded as the caller. A refusal shows the page again with what the
// person typed and why, next to the field; to the console's script it is
// a JSON error naming the field.
func (c *Console) command(w http.ResponseWriter, r *http.Request, who Caller) {
	name := r.PathValue("command")
	spec, ok := commandForms[name]
	if !ok {
		c.fail(w, r, who, http.StatusNotFound, "No such command: "+name)
		return
	}
	st, ok := c.load(w, r, who)
	if !ok {
		return
	}
	if !who.Can(Act, &st) {
		c.fail(w, r, who, http.StatusForbidden, "You may read "+st.CaseNumber+" but not act on it.")
		return
	}
	if err := r.ParseForm(); err != nil {
		c.fail(w, r, who, http.StatusBadRequest, "The form could not be read: "+err.Error())
		return
	}
	m := command.Meta{Actor: who.Actor(), ActorName: who.Name()}
	var err error
	if spec.seen != nil {
		// Decided against the state just read, or not at all.
		m.ExpectVersion = st.Version
		if r.PostForm.Has("seen") && r.PostForm.Get("seen") != spec.seen(st) {
			err = command.ErrVersionConflict
		}
	}
	var next incident.State
	if err == nil {
		next, err = c.d.Commands.Execute(r.Context(), st.ID, spec.build(r.PostForm), m)
	}
	if err == nil {
		if wantsJSON(r) {
			writeJSON(w, http.StatusOK, map[string]any{"seen": seenValues(next)})
			return
		}
		http.Redirect(w, r, "/incidents/"+next.CaseNumber, http.StatusSeeOther)
		return
	}
	if errors.Is(err, command.ErrVersionConflict) {
		// The person's input is answered against the incident as it is now.
		if fresh, gerr := c.d.Commands.Get(r.Context(), st.ID); gerr == nil {
			st = fresh
		}
	}
	status, field, msg := c.explain(err, spec.fields, st)
	if wantsJSON(r) {
		writeJSON(w, status, map[string]any{"error": map[string]string{"field": field, "message": msg}, "seen": seenValues(st)})
		return
	}
	f := &form{V: map[string]string{}, E: map[string]string{}}
	for _, k := range spec.fields {
		f.V[k] = r.PostForm.Get(k)
	}
	if field != "" {
		f.E[field] = msg
	} else {
		f.Problem = msg
	}
	c.showIncident(w, r, who, status, st, map[string]*form{name: f})
}

// explain turns a refusal into a status, the field it is about ("" for
// the form as a whole) and a message for the person.
func (c *Console) explain(err error, fields []string, st incident.State) (status int, field, msg string) {
	var ve *incident.ValidationError
	var ce *incident.ConflictError
	switch {
	case errors.As(err, &ve) && slices.Contains(fields, ve.Field):
		return http.StatusBadRequest, ve.Field, fieldLabels[ve.Field] + " " + ve.Message
	case errors.As(err, &ve):
		return http.StatusBadRequest, "", ve.Error()
	case errors.As(err, &ce):
		return http.StatusConflict, "", "Refused: " + ce.Reason + "."
	case errors.Is(err, command.ErrVersionConflict):
		commander := st.Commander
		if commander == "" {
			commander = "nobody"
		}
		return http.StatusConflict, "", fmt.Sprintf("Someone changed %s since you loaded it: it is now %s, %s, commander %s (see the timeline). "+
			"Nothing was recorded. Your input is kept below: check it against the incident as it is now and send it again.",
			st.CaseNumber, st.Status, st.Severity, commander)
	case errors.Is(err, natsjs.ErrUnavailable):
		return http.StatusServiceUnavailable, "", "The event bus did not store this, so nothing was recorded. Your input is kept: send it again in a moment."
	}
	c.d.Logger.Error("console: a command failed", "err", err)
	return http.StatusInternalServerError, "", "Internal error: nothing may have been recorded; check the timeline, and the hub's log."
}

// entry is one event of the timeline as the page shows it.
type entry struct {
	readmodel.Entry
	Kind  string // a word for styling: declared, status, note, …
	Title string
	Text  string
	URL   string
}

func describeAll(es []readmodel.Entry) []entry {
	out := make([]entry, len(es))
	for i, e := range es {
		out[i] = describe(e)
	}
	return out
}

// kindOf is the last part of an event type, "note_added" for
// io.hikeshi.incident.note_added.
func kindOf(typ string) string { return typ[strings.LastIndex(typ, ".")+1:] }

// occurredLimit bounds the timeline shown in occurred order, which is one
// page without live updates.
const occurredLimit = 1000

// showOccurred renders the page with the timeline as the facts happened,
// newest first like the recorded order.
func (c *Console) showOccurred(w http.ResponseWriter, r *http.Request, who Caller, status int, p incidentPage) {
	entries, err := c.d.Timeline.TimelineIn(r.Context(), readmodel.Occurred, p.ID, 0, occurredLimit)
	if err != nil {
		c.d.Logger.Error("console: reading a timeline failed", "incident", p.ID, "err", err)
		c.fail(w, r, who, http.StatusInternalServerError, "The timeline could not be read; try again, and check the hub's log if it persists.")
		return
	}
	slices.Reverse(entries)
	p.Entries, p.Occurred, p.Paged = describeAll(entries), true, true
	c.render(w, r, who, status, "incident", p)
}
