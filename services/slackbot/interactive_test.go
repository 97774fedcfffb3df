package slackbot

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/adapters/slacksign"
	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/incident"
	"github.com/hikeshi/hikeshi/services/integrationtest"
)

// call posts a body signed now to one of the bot's routes and returns the
// status and the answer.
func (r *rig) call(path string, body []byte) (int, string) {
	r.t.Helper()
	req := httptest.NewRequest("POST", path, bytes.NewReader(body))
	stamp := strconv.FormatInt(r.clock.Now().Unix(), 10)
	req.Header.Set(slacksign.HeaderTimestamp, stamp)
	req.Header.Set(slacksign.HeaderSignature, slacksign.Sign(secret, stamp, body))
	w := httptest.NewRecorder()
	r.bot.Parts().Routes["POST "+path].ServeHTTP(w, req)
	return w.Code, w.Body.String()
}

// slash runs the slash command as user in channel and returns the
// ephemeral answer's text ("" when Slack is answered with an empty body).
func (r *rig) slash(user, channel, text, trigger string) string {
	r.t.Helper()
	form := url.Values{"command": {"/incident"}, "text": {text}, "user_id": {user},
		"channel_id": {channel}, "trigger_id": {trigger}, "team_id": {"T0000TEST"}}
	code, body := r.call("/slack/commands", []byte(form.Encode()))
	if code != http.StatusOK {
		r.t.Fatalf("/incident %s: status %d: %s", text, code, body)
	}
	if body == "" {
		return ""
	}
	var answer struct {
		ResponseType string `json:"response_type"`
		Text         string `json:"text"`
	}
	if err := json.Unmarshal([]byte(body), &answer); err != nil {
		r.t.Fatalf("/incident %s: answer %q: %v", text, body, err)
	}
	if answer.ResponseType != "ephemeral" {
		r.t.Fatalf("/incident %s: answer %q is not ephemeral", text, body)
	}
	return answer.Text
}

// interact posts an interactivity payload.
func (r *rig) interact(payload string) (int, string) {
	r.t.Helper()
	return r.call("/slack/interactivity", []byte(url.Values{"payload": {payload}}.Encode()))
}

// openedViews returns the views.open calls: trigger_id and the view.
type openedView struct {
	Trigger string
	View    struct {
		CallbackID      string `json:"callback_id"`
		PrivateMetadata string `json:"private_metadata"`
		Blocks          []struct {
			BlockID string `json:"block_id"`
			Element struct {
				InitialValue   string `json:"initial_value"`
				InitialOptions []struct {
					Value string `json:"value"`
				} `json:"initial_options"`
			} `json:"element"`
		} `json:"blocks"`
	}
}

func (r *rig) openedViews() []openedView {
	r.t.Helper()
	var out []openedView
	for _, c := range r.slack.Calls() {
		if c.Method != "views.open" || c.Error != "" {
			continue
		}
		v := openedView{Trigger: c.Params.Get("trigger_id")}
		if err := json.Unmarshal([]byte(c.Params.Get("view")), &v.View); err != nil {
			r.t.Fatalf("views.open view %q: %v", c.Params.Get("view"), err)
		}
		out = append(out, v)
	}
	return out
}

func (v openedView) initial(block string) string {
	for _, b := range v.View.Blocks {
		if b.BlockID == block {
			return b.Element.InitialValue
		}
	}
	return ""
}

// incidentChannel declares an incident and waits for its channel.
func (r *rig) incidentChannel(title string) (incident.State, string) {
	r.t.Helper()
	st := r.h.Declare(r.t, incident.Declare{Title: title, Service: "search", Severity: "SEV3", DeclaredBy: "UALICE001"})
	r.waitFor(st.ID, events.TypeSlackChannelLinked, 1)
	return st, mustLink(r.t, r, st.ID)
}

func (r *rig) state(id string) incident.State {
	r.t.Helper()
	st, err := r.h.Env.Commands.Get(context.Background(), id)
	if err != nil {
		r.t.Fatal(err)
	}
	return st
}

func TestSlashCommandOpensTheDeclareModal(t *testing.T) {
	r := newRig(t, "")
	if got := r.slash("UALICE001", "CSUPPORT01", "", "trig-1"); got != "" {
		t.Fatalf("answer %q, want an empty acknowledgement", got)
	}
	views := r.openedViews()
	if len(views) != 1 || views[0].Trigger != "trig-1" || views[0].View.CallbackID != viewDeclare {
		t.Fatalf("views opened: %+v", views)
	}
}

func TestSlashSubcommandsInAnIncidentChannel(t *testing.T) {
	r := newRig(t, "")
	st, ch := r.incidentChannel("Search is slow")
	events0 := len(r.h.Events(t, st.ID))
	for i, c := range []struct {
		text, answer string
	}{
		{"severity SEV2 more customers", "Done."},
		{"status monitoring rolled back the index", "Done."},
		{"commander <@UCMDR0001|carol>", "Done."},
		{"note support macro sent", "Done."},
		{"severity SEV9", "Not done"},
		{"status sleeping", "Not done"},
		{"note", "Not done"},
		{"commander", "Not done"},
		{"frobnicate", `Unknown subcommand "frobnicate"`},
		{"help", "/incident* opens the declare form"},
	} {
		got := r.slash("UBOB00001", ch, c.text, "trig-sub-"+strconv.Itoa(i))
		if !strings.Contains(got, c.answer) {
			t.Errorf("/incident %s: answer %q, want it to contain %q", c.text, got, c.answer)
		}
	}
	s := r.state(st.ID)
	if s.Severity != "SEV2" || s.Status != "monitoring" || s.Commander != "UCMDR0001" {
		t.Fatalf("state after the commands: severity %s, status %s, commander %s", s.Severity, s.Status, s.Commander)
	}
	if n := len(r.h.Events(t, st.ID)) - events0; n != 4 {
		t.Fatalf("%d events appended, want 4 (refused commands append nothing)", n)
	}
	// A repeated delivery of the same invocation (same trigger_id) is harmless.
	r.slash("UBOB00001", ch, "note support macro sent", "trig-sub-3")
	if n := r.h.Count(t, st.ID, events.TypeNoteAdded); n != 1 {
		t.Fatalf("%d notes after a repeated command, want 1", n)
	}
	// close opens the closing modal for this incident.
	if got := r.slash("UBOB00001", ch, "close", "trig-close"); got != "" {
		t.Fatalf("close answered %q", got)
	}
	views := r.openedViews()
	last := views[len(views)-1]
	if last.Trigger != "trig-close" || last.View.CallbackID != viewClose || last.View.PrivateMetadata != st.ID {
		t.Fatalf("close opened %+v", last)
	}
}

func TestSlashSubcommandOutsideAnIncidentChannel(t *testing.T) {
	r := newRig(t, "")
	st, _ := r.incidentChannel("Search is slow")
	before := len(r.h.Events(t, st.ID))
	for _, text := range []string{"severity SEV1", "note hello", "close"} {
		got := r.slash("UBOB00001", "CSUPPORT01", text, "trig-"+text)
		if !strings.HasPrefix(got, "This is not an incident channel.") {
			t.Errorf("/incident %s outside an incident channel: %q", text, got)
		}
	}
	if n := len(r.h.Events(t, st.ID)); n != before {
		t.Fatalf("appended %d events", n-before)
	}
	if v := r.openedViews(); len(v) != 0 {
		t.Fatalf("opened %d views", len(v))
	}
}

// submission is a view_submission payload of the declare modal.
func submission(viewID, meta, title, service, severity string, options ...string) string {
	var opts []map[string]string
	for _, o := range options {
		opts = append(opts, map[string]string{"value": o})
	}
	input := func(v string) map[string]any { return map[string]any{"type": "plain_text_input", "value": v} }
	p := map[string]any{
		"type": "view_submission", "user": map[string]string{"id": "UALICE001"}, "trigger_id": "trig-" + viewID,
		"view": map[string]any{
			"id": viewID, "callback_id": viewDeclare, "private_metadata": meta,
			"state": map[string]any{"values": map[string]any{
				"title":    map[string]any{"title": input(title)},
				"service":  map[string]any{"service": input(service)},
				"severity": map[string]any{"severity": map[string]any{"type": "static_select", "selected_option": map[string]string{"value": severity}}},
				"summary":  map[string]any{"summary": input("")},
				"options":  map[string]any{"options": map[string]any{"type": "checkboxes", "selected_options": opts}},
			}},
		},
	}
	b, _ := json.Marshal(p)
	return string(b)
}

// declaredFrom is the incident a view submission declares: its id is
// derived from the view id.
func declaredFrom(viewID string) string { return events.DeriveID("incident", "slack-view:"+viewID) }

func TestDeclareModalSubmissionDeclaresOnce(t *testing.T) {
	r := newRig(t, "")
	for i := range 3 { // the submission, then repeats of it
		if code, body := r.interact(submission("VDECL0001", "", "Checkout errors", "payments", "SEV2")); code != http.StatusOK || body != "" {
			t.Fatalf("submission %d: %d %q", i, code, body)
		}
	}
	id := declaredFrom("VDECL0001")
	if n := r.h.Count(t, id, events.TypeDeclared); n != 1 {
		t.Fatalf("declared %d times", n)
	}
	s := r.state(id)
	if s.Title != "Checkout errors" || s.Service != "payments" || s.Severity != "SEV2" || s.DeclaredBy != "UALICE001" || s.Confidential || s.Drill {
		t.Fatalf("declared %+v", s)
	}
	r.waitFor(id, events.TypeSlackChannelLinked, 1)

	r.interact(submission("VDECL0002", "", "Leaked admin token", "identity", "SEV1", "confidential"))
	r.interact(submission("VDECL0003", "", "Game day", "payments", "SEV3", "drill"))
	if s := r.state(declaredFrom("VDECL0002")); !s.Confidential || s.Codename == "" || s.Drill {
		t.Errorf("confidential submission declared %+v", s)
	}
	if s := r.state(declaredFrom("VDECL0003")); !s.Drill || s.Confidential {
		t.Errorf("drill submission declared %+v", s)
	}
	r.waitFor(declaredFrom("VDECL0002"), events.TypeSlackChannelLinked, 1)
	if l := linkOf(t, r, declaredFrom("VDECL0002")); !strings.HasPrefix(l.Ref, "G") {
		t.Errorf("confidential incident got channel %+v, want a private one", l)
	}
}

func TestDeclareModalErrorsNameTheField(t *testing.T) {
	r := newRig(t, "")
	code, body := r.interact(submission("VBAD00001", "", "", "payments", "SEV2"))
	var answer struct {
		ResponseAction string            `json:"response_action"`
		Errors         map[string]string `json:"errors"`
	}
	if code != http.StatusOK || json.Unmarshal([]byte(body), &answer) != nil || answer.ResponseAction != "errors" || answer.Errors["title"] == "" {
		t.Fatalf("empty title: %d %q", code, body)
	}
	if n := r.h.Count(t, declaredFrom("VBAD00001"), events.TypeDeclared); n != 0 {
		t.Fatalf("declared anyway")
	}
	for _, bad := range []string{"payload=", "payload=%7B", `payload=` + url.QueryEscape(`{"type":"shortcut","user":{"id":"U1"}}`)} {
		if code, _ := r.call("/slack/interactivity", []byte(bad)); code != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", bad, code)
		}
	}
}

func blockAction(action, value, trigger string) string {
	b, _ := json.Marshal(map[string]any{
		"type": "block_actions", "user": map[string]string{"id": "UBOB00001"}, "trigger_id": trigger,
		"actions": []map[string]string{{"type": "button", "action_id": action, "block_id": "hikeshi_actions", "value": value}},
	})
	return string(b)
}

// buttonValue finds the value of a button posted in channel ch.
func (r *rig) buttonValue(ch, action string) (string, bool) {
	for _, m := range r.slack.Channels()[ch].Messages {
		var blocks []struct {
			Elements []struct {
				ActionID string `json:"action_id"`
				Value    string `json:"value"`
			} `json:"elements"`
		}
		_ = json.Unmarshal([]byte(m.Blocks), &blocks)
		for _, b := range blocks {
			for _, e := range b.Elements {
				if e.ActionID == action {
					return e.Value, true
				}
			}
		}
	}
	return "", false
}

func TestButtonsOpenTheModalsAndTheirSubmissionsRunOnce(t *testing.T) {
	r := newRig(t, "  timekeeper:\n    interval: 15m\n")
	st, ch := r.incidentChannel("Search is slow")
	// The kickoff (the pinned summary) carries both buttons.
	for _, a := range []string{actionStatus, actionClose} {
		v, ok := r.buttonValue(ch, a)
		if !ok || v != st.ID {
			t.Fatalf("kickoff button %s: %q %v", a, v, ok)
		}
		if code, body := r.interact(blockAction(a, v, "trig-"+a)); code != http.StatusOK {
			t.Fatalf("%s: %d %s", a, code, body)
		}
	}
	views := r.openedViews()
	if len(views) != 2 || views[0].View.CallbackID != viewStatus || views[1].View.CallbackID != viewClose ||
		views[0].View.PrivateMetadata != st.ID || views[1].View.PrivateMetadata != st.ID || views[1].Trigger != "trig-"+actionClose {
		t.Fatalf("views opened: %+v", views)
	}
	// The timekeeper's nudge has the status button too.
	r.clock.Add(16 * time.Minute)
	if err := r.bot.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
	nudges := 0
	for _, m := range r.slack.Channels()[ch].Messages {
		if strings.Contains(m.Blocks, "hikeshi_nudge") && strings.Contains(m.Blocks, `"value":"`+st.ID+`"`) {
			nudges++
		}
	}
	if nudges != 1 {
		t.Fatalf("%d nudges with an update button", nudges)
	}
	statusSubmit := func(viewID, status string) string {
		b, _ := json.Marshal(map[string]any{"type": "view_submission", "user": map[string]string{"id": "UBOB00001"},
			"view": map[string]any{"id": viewID, "callback_id": viewStatus, "private_metadata": st.ID,
				"state": map[string]any{"values": map[string]any{
					"status":  map[string]any{"status": map[string]any{"type": "static_select", "selected_option": map[string]string{"value": status}}},
					"message": map[string]any{"message": map[string]any{"type": "plain_text_input", "value": "bad deploy"}},
				}}}})
		return string(b)
	}
	closeSubmit := func(viewID string) string {
		b, _ := json.Marshal(map[string]any{"type": "view_submission", "user": map[string]string{"id": "UBOB00001"},
			"view": map[string]any{"id": viewID, "callback_id": viewClose, "private_metadata": st.ID,
				"state": map[string]any{"values": map[string]any{
					"resolution": map[string]any{"resolution": map[string]any{"type": "plain_text_input", "value": "rolled back"}},
					"lessons":    map[string]any{"lessons": map[string]any{"type": "plain_text_input", "value": "canary the index"}},
				}}}})
		return string(b)
	}
	for range 2 {
		if code, body := r.interact(statusSubmit("VSTATUS01", "identified")); code != http.StatusOK || body != "" {
			t.Fatalf("status submission: %d %q", code, body)
		}
	}
	if n := r.h.Count(t, st.ID, events.TypeStatusUpdated); n != 1 {
		t.Fatalf("%d status updates, want 1", n)
	}
	// Closing before the incident is resolved is refused under the first input.
	code, body := r.interact(closeSubmit("VCLOSE000"))
	if code != http.StatusOK || !strings.Contains(body, `"resolution":"incident is identified`) {
		t.Fatalf("close before resolved: %d %q", code, body)
	}
	r.interact(statusSubmit("VSTATUS02", "resolved"))
	if code, body := r.interact(closeSubmit("VCLOSE001")); code != http.StatusOK || body != "" {
		t.Fatalf("close submission: %d %q", code, body)
	}
	if s := r.state(st.ID); s.Open() {
		t.Fatalf("still open: %s", s.Status)
	}
	// Pressed again on a closed incident: the modal says why, nothing is appended.
	before := len(r.h.Events(t, st.ID))
	if code, body := r.interact(statusSubmit("VSTATUS03", "monitoring")); code != http.StatusOK || !strings.Contains(body, `"status":`) {
		t.Fatalf("status on a closed incident: %d %q", code, body)
	}
	if after := len(r.h.Events(t, st.ID)); after != before {
		t.Fatalf("appended %d events to a closed incident", after-before)
	}
}

func TestPinReactionAddsTheMessageAsANoteOnce(t *testing.T) {
	r := newRig(t, "")
	st, ch := r.incidentChannel("Search is slow")
	ts := r.slack.AddMessage(ch, "UCAROL001", "the index rebuild started at 10:02", "")
	r.ensureChannels("CSUPPORT01")
	other := r.slack.AddMessage("CSUPPORT01", "UCAROL001", "not about the incident", "")
	for _, ev := range [][]byte{
		reaction("EvPin1", "pushpin", ch, ts),
		reaction("EvPin1", "pushpin", ch, ts), // Slack's retry
		reaction("EvPin2", "pushpin", ch, ts), // someone else pins it too
		reaction("EvPin3", "pushpin", "CSUPPORT01", other),
		reaction("EvPin4", "thumbsup", ch, ts),
	} {
		if code, body := r.call("/slack/events", ev); code != http.StatusOK {
			t.Fatalf("%s: %d %s", ev, code, body)
		}
	}
	var notes []string
	for _, e := range r.h.Events(t, st.ID) {
		if e.Type == events.TypeNoteAdded {
			d, _ := e.Decode()
			notes = append(notes, d.(*events.NoteAdded).Text)
		}
	}
	if len(notes) != 1 || !strings.Contains(notes[0], "the index rebuild started at 10:02") || !strings.Contains(notes[0], "UCAROL001") {
		t.Fatalf("notes %q, want the pinned message once", notes)
	}
	// The note happened when the message was posted, not when it was pinned.
	for _, e := range r.h.Events(t, st.ID) {
		if e.Type != events.TypeNoteAdded {
			continue
		}
		d, _ := e.Decode()
		sec, _ := strconv.ParseInt(ts[:strings.Index(ts, ".")], 10, 64)
		us, _ := strconv.ParseInt(ts[strings.Index(ts, ".")+1:], 10, 64)
		if want := time.Unix(sec, us*1000).UTC(); !d.(*events.NoteAdded).OccurredAt.Equal(want) {
			t.Errorf("pinned note occurred_at = %v, want the message's time %v (ts %s)", d.(*events.NoteAdded).OccurredAt, want, ts)
		}
	}
}

func TestForgedOrStaleInboundRequestsAppendNothing(t *testing.T) {
	r := newRig(t, "")
	st, ch := r.incidentChannel("Search is slow")
	ts := r.slack.AddMessage(ch, "UCAROL001", "pin me", "")
	before := len(r.h.Events(t, st.ID))
	now := r.clock.Now().Unix()
	note := url.Values{"command": {"/incident"}, "text": {"note forged"}, "user_id": {"UBOB00001"}, "channel_id": {ch}, "trigger_id": {"trig-forged"}}.Encode()
	for path, body := range map[string][]byte{
		"/slack/commands":      []byte(note),
		"/slack/events":        reaction("EvForged", "pushpin", ch, ts),
		"/slack/interactivity": []byte(url.Values{"payload": {submission("VFORGED01", "", "Forged", "payments", "SEV1")}}.Encode()),
	} {
		for _, c := range []struct {
			ts  int64
			sig string
		}{
			{now, "v0=" + strings.Repeat("0", 64)}, // forged
			{now - 301, ""},                        // stale
			{now + 301, ""},                        // from the future
			{now, slacksign.Sign("another-secret", strconv.FormatInt(now, 10), body)}, // another app's secret
		} {
			if got := r.send(path, body, c.ts, c.sig, nil); got != http.StatusUnauthorized {
				t.Errorf("%s (ts %d): %d, want 401", path, c.ts-now, got)
			}
		}
		// No signature headers at all.
		req := httptest.NewRequest("POST", path, bytes.NewReader(body))
		w := httptest.NewRecorder()
		r.bot.Parts().Routes["POST "+path].ServeHTTP(w, req)
		if w.Code != http.StatusUnauthorized {
			t.Errorf("%s unsigned: %d", path, w.Code)
		}
	}
	if after := len(r.h.Events(t, st.ID)); after != before {
		t.Fatalf("forged requests appended %d events", after-before)
	}
	if n := r.h.Count(t, declaredFrom("VFORGED01"), events.TypeDeclared); n != 0 {
		t.Fatalf("a forged submission declared an incident")
	}
	if v := r.openedViews(); len(v) != 0 {
		t.Fatalf("forged requests opened views")
	}
}

func TestSSSDeclareButtonPrefillsTheModal(t *testing.T) {
	r := newRig(t, "")
	r.ensureChannels("CSUPPORT01")
	const text = "customers see password reset mails they never asked for"
	ts := r.slack.AddMessage("CSUPPORT01", "UCAROL001", text, "")
	if code, body := r.call("/slack/events", reaction("EvSSS1", "sss", "CSUPPORT01", ts)); code != http.StatusOK {
		t.Fatalf("reaction: %d %s", code, body)
	}
	var value string
	integrationtest.Eventually(t, "share with a declare button", func() bool {
		v, ok := r.buttonValue("CSECURITY1", actionDeclare)
		value = v
		return ok
	})
	if code, body := r.interact(blockAction(actionDeclare, value, "trig-sss")); code != http.StatusOK {
		t.Fatalf("declare button: %d %s", code, body)
	}
	views := r.openedViews()
	if len(views) != 1 {
		t.Fatalf("%d views opened", len(views))
	}
	v := views[0]
	if v.Trigger != "trig-sss" || v.View.CallbackID != viewDeclare || v.View.PrivateMetadata != "CSUPPORT01|"+ts {
		t.Fatalf("opened %+v", v)
	}
	if s := v.initial("summary"); !strings.Contains(s, text) || !strings.Contains(s, "https://hikeshi-test.slack.com/archives/CSUPPORT01/") {
		t.Errorf("summary pre-filled with %q", s)
	}
	if ti := v.initial("title"); ti == "" || !strings.HasPrefix(text, strings.TrimSuffix(ti, "…")) {
		t.Errorf("title pre-filled with %q", ti)
	}
	confidential := false
	for _, b := range v.View.Blocks {
		for _, o := range b.Element.InitialOptions {
			confidential = confidential || o.Value == "confidential"
		}
	}
	if !confidential {
		t.Errorf("a security report's modal is not confidential by default")
	}
	// Submitting it declares the incident and records the flagged message on it.
	r.interact(submission("VSSS00001", v.View.PrivateMetadata, "Password reset mails", "identity", "SEV2", "confidential"))
	r.interact(submission("VSSS00001", v.View.PrivateMetadata, "Password reset mails", "identity", "SEV2", "confidential"))
	id := declaredFrom("VSSS00001")
	if n := r.h.Count(t, id, events.TypeSlackMessageFlagged); n != 1 {
		t.Fatalf("%d flagged-message facts on the incident, want 1", n)
	}
	// An unknown message behind the button is refused.
	if code, _ := r.interact(blockAction(actionDeclare, "CSUPPORT01|1.000001", "trig-x")); code != http.StatusBadRequest {
		t.Fatalf("unknown flagged message: %d", code)
	}
}

// TestDeclareButtonBeforeTheShareIsRecorded: the declare button comes back
// before the ledger recorded the share that posted it (the post is the
// share's last step); the modal still opens, prefilled.
func TestDeclareButtonBeforeTheShareIsRecorded(t *testing.T) {
	r := newRig(t, "")
	r.ensureChannels("CSUPPORT01")
	ts := r.slack.AddMessage("CSUPPORT01", "UCAROL001", "a phishing mail reached payroll", "")
	go func() {
		time.Sleep(300 * time.Millisecond)
		f := flag{ChannelID: "CSUPPORT01", MessageTS: ts, Reaction: "sss", FlaggedBy: "UDAVE0001", Excerpt: "a phishing mail reached payroll"}
		if err := r.bot.effects.Put(context.Background(), flagKey("CSUPPORT01", ts), f); err != nil {
			t.Error(err)
		}
	}()
	if code, body := r.interact(blockAction(actionDeclare, "CSUPPORT01|"+ts, "trig-early")); code != http.StatusOK {
		t.Fatalf("declare button before the share was recorded: %d %s", code, body)
	}
	if v := r.openedViews(); len(v) != 1 {
		t.Fatalf("%d views opened", len(v))
	}
}
