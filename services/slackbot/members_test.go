package slackbot

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/adapters/slacktest"
	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/access"
	"github.com/hikeshi/hikeshi/services/command"
	"github.com/hikeshi/hikeshi/services/httpapi"
	"github.com/hikeshi/hikeshi/services/incident"
)

// signedIn stands for the sign-in sessions: a request is the person its
// X-Test-Person header names, signed in with the viewer role.
type signedIn struct{}

func (signedIn) Session(r *http.Request) (access.Identity, bool) {
	email := r.Header.Get("X-Test-Person")
	if email == "" {
		return access.Identity{}, false
	}
	return access.Identity{ID: "person:" + email, Name: email, Email: email, Kind: access.Person, Role: access.Viewer}, true
}

// api is the hub's API over the rig's bus, for people signed in as viewers.
func (r *rig) api() *httpapi.Server {
	return httpapi.New(httpapi.Deps{Commands: r.h.Env.Commands.(*command.Handler), Events: r.h.Bus.Store,
		Auth: &access.Authenticator{Sessions: signedIn{}}})
}

// reads reports whether the person reads incident id through the API.
func reads(t *testing.T, api http.Handler, email, id, title string) bool {
	t.Helper()
	req := httptest.NewRequest("GET", "/api/v1/incidents/"+id, nil)
	req.Header.Set("X-Test-Person", email)
	w := httptest.NewRecorder()
	api.ServeHTTP(w, req)
	switch w.Code {
	case http.StatusOK:
		if !strings.Contains(w.Body.String(), title) {
			t.Fatalf("%s: 200 without the title: %s", email, w.Body)
		}
		return true
	case http.StatusNotFound:
		if strings.Contains(w.Body.String(), title) {
			t.Fatalf("%s: 404 shows the title: %s", email, w.Body)
		}
		return false
	}
	t.Fatalf("%s: GET incident: %d %s", email, w.Code, w.Body)
	return false
}

// liveStream is GET /api/v1/events as a person.
type liveStream struct{ sc *bufio.Scanner }

// openLive opens the API's live event stream as the person email, once
// the API follows the bus.
func openLive(t *testing.T, api *httpapi.Server, email string) *liveStream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	go api.Live(ctx)
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	req, err := http.NewRequestWithContext(ctx, "GET", srv.URL+"/api/v1/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Test-Person", email)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	if res.StatusCode != http.StatusOK {
		t.Fatalf("events: %d", res.StatusCode)
	}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	return &liveStream{sc: sc}
}

// until reads events up to the first of incident id.
func (s *liveStream) until(t *testing.T, id string) []events.Envelope {
	t.Helper()
	var out []events.Envelope
	for s.sc.Scan() {
		data, ok := strings.CutPrefix(s.sc.Text(), "data: ")
		var e events.Envelope
		if !ok || json.Unmarshal([]byte(data), &e) != nil || e.Type == "" {
			continue
		}
		out = append(out, e)
		if e.Subject == id {
			return out
		}
	}
	t.Fatalf("stream ended before an event of %s: %v", id, s.sc.Err())
	return nil
}

func memberPayload(eventID, typ, user, ch string) []byte {
	return []byte(`{"type":"event_callback","event_id":"` + eventID + `","event":{"type":"` + typ + `","user":"` + user +
		`","channel":"` + ch + `","channel_type":"G","team":"T0000TEST"}}`)
}

// TestPrivateChannelMembersReadTheConfidentialIncident: the people the bot
// invites into a confidential incident's private channel, and whoever Slack
// reports joining it, are recorded on the incident under the identity their
// e-mail maps to, and read it through the API as viewers; once they leave,
// they do not. A retried Slack event records nothing twice.
func TestPrivateChannelMembersReadTheConfidentialIncident(t *testing.T) {
	r := newRig(t, "  map_users_by_email: true\n")
	r.slack.AddUser(slacktest.User{ID: "USEC00001", Name: "sam", RealName: "Sam Sec", Email: "sam@example.com"})
	r.slack.AddUser(slacktest.User{ID: "UMIA00001", Name: "mia", RealName: "Mia Wong", Email: "Mia@Example.com"})
	const title = "Exfiltration from the billing export bucket"
	api := r.api()
	live := openLive(t, api, "mia@example.com")
	st := r.h.Declare(t, incident.Declare{Title: title, Service: "billing", Severity: "SEV2", DeclaredBy: "UALICE001", Confidential: true})
	r.waitFor(st.ID, events.TypeSlackChannelLinked, 1)
	ch := mustLink(t, r, st.ID)

	if !reads(t, api, "sam@example.com", st.ID, title) {
		t.Fatal("the security team member the bot invited does not read the incident")
	}
	if reads(t, api, "mia@example.com", st.ID, title) {
		t.Fatal("mia reads the incident before joining its channel")
	}
	r.h.Do(t, st.ID, incident.AddNote{Text: "before mia joined"})
	for range 2 { // Slack's delivery, then its retry
		if code, body := r.call("/slack/events", memberPayload("EvJoin1", "member_joined_channel", "UMIA00001", ch)); code != http.StatusOK {
			t.Fatalf("member_joined_channel: %d %s", code, body)
		}
	}
	if n := r.h.Count(t, st.ID, events.TypeSlackMembersChanged); n != 2 {
		t.Fatalf("%d members_changed events, want the invitation's and one join", n)
	}
	if got := r.state(st.ID).Members; !slices.Contains(got, events.ChannelMember{User: "UMIA00001", Identity: "person:mia@example.com"}) {
		t.Fatalf("members %+v: mia missing", got)
	}
	if !reads(t, api, "mia@example.com", st.ID, title) {
		t.Fatal("mia, a member of the private channel, does not read the incident")
	}
	if reads(t, api, "erin@example.com", st.ID, title) {
		t.Fatal("a viewer outside the channel reads the incident")
	}
	r.h.Do(t, st.ID, incident.AddNote{Text: "while mia is in"})

	if code, body := r.call("/slack/events", memberPayload("EvLeave1", "member_left_channel", "UMIA00001", ch)); code != http.StatusOK {
		t.Fatalf("member_left_channel: %d %s", code, body)
	}
	r.h.Do(t, st.ID, incident.AddNote{Text: "after mia left"})
	marker := r.h.Declare(t, incident.Declare{Title: "Marker", Service: "search", Severity: "SEV4"})
	// The live stream shows each event to the members after it: mia sees
	// what happened while she was in the channel, and nothing else.
	var seen []string
	for _, e := range live.until(t, marker.ID) {
		if e.Subject == st.ID {
			seen = append(seen, e.Type)
		}
	}
	if want := []string{events.TypeSlackMembersChanged, events.TypeNoteAdded}; !slices.Equal(seen, want) {
		t.Errorf("mia's live stream showed %v of the incident, want %v (her join and the note while she was in)", seen, want)
	}
	if reads(t, api, "mia@example.com", st.ID, title) {
		t.Fatal("mia still reads the incident after leaving its channel")
	}
	// A channel that is no incident's records nothing.
	r.ensureChannels("CRANDOM001")
	if code, body := r.call("/slack/events", memberPayload("EvJoin2", "member_joined_channel", "UMIA00001", "CRANDOM001")); code != http.StatusOK {
		t.Fatalf("member_joined_channel elsewhere: %d %s", code, body)
	}
	if n := r.h.Count(t, st.ID, events.TypeSlackMembersChanged); n != 3 {
		t.Fatalf("%d members_changed events, want 3", n)
	}
}

// TestSlackDeclarerAndCommanderAreKnownBySignIn: an incident declared from
// Slack records the person the declarer's e-mail maps to, and so does a
// commander named with /incident commander; signed in to the hub, both
// read the confidential incident though neither is in its channel.
func TestSlackDeclarerAndCommanderAreKnownBySignIn(t *testing.T) {
	r := newRig(t, "  map_users_by_email: true\n")
	r.slack.AddUser(slacktest.User{ID: "UALICE001", Name: "alice", RealName: "Alice Liddell", Email: "alice@example.com"})
	r.slack.AddUser(slacktest.User{ID: "UBOB00001", Name: "bob", RealName: "Bob Builder", Email: "bob@example.com"})
	const title = "Credential stuffing against the login"
	if code, body := r.interact(submission("VSEC00001", "", title, "identity", "SEV2", "confidential")); code != http.StatusOK {
		t.Fatalf("modal: %d %s", code, body)
	}
	id := declaredFrom("VSEC00001")
	r.waitFor(id, events.TypeSlackChannelLinked, 1)
	ch := mustLink(t, r, id)
	if code, body := r.call("/slack/events", memberPayload("EvLeave2", "member_left_channel", "UALICE001", ch)); code != http.StatusOK {
		t.Fatalf("member_left_channel: %d %s", code, body)
	}
	r.slash("UALICE001", ch, "commander <@UBOB00001|bob>", "trig-ic-1")

	st := r.state(id)
	if st.DeclaredBy != "UALICE001" || st.DeclaredByIdentity != "person:alice@example.com" ||
		st.Commander != "UBOB00001" || st.CommanderIdentity != "person:bob@example.com" {
		t.Fatalf("declared by %q (%q), commander %q (%q)", st.DeclaredBy, st.DeclaredByIdentity, st.Commander, st.CommanderIdentity)
	}
	api := r.api()
	for _, who := range []string{"alice@example.com", "bob@example.com"} {
		if !reads(t, api, who, id, title) {
			t.Errorf("%s, signed in, does not read the confidential incident", who)
		}
	}
	if reads(t, api, "erin@example.com", id, title) {
		t.Error("a viewer outside the incident reads it")
	}
}
