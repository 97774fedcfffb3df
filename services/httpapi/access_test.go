package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/user"
	"strings"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/httpapi"
	"github.com/hikeshi/hikeshi/services/hub"
)

const adminSecret = "the-configured-service-token"

// authHub starts a hub that requires authentication (the configured
// service token), and returns its admin client.
func authHub(t *testing.T) (*hub.Hub, *client) {
	t.Helper()
	return startHub(t, hub.Config{Token: adminSecret})
}

// tokenAnswer is POST /api/v1/tokens's answer.
type tokenAnswer struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Role       string     `json:"role"`
	Scopes     []string   `json:"scopes"`
	Hash       string     `json:"hash"`
	Token      string     `json:"token"`
	ExpiresAt  *time.Time `json:"expires_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
}

// mint creates a token through the API with the admin client and returns
// a client that uses it.
func mint(t *testing.T, admin *client, name, role string, scopes ...string) (*client, tokenAnswer) {
	t.Helper()
	body := map[string]any{"name": name, "role": role, "expires": "1d"}
	if len(scopes) > 0 {
		body["scopes"] = scopes
	}
	var tok tokenAnswer
	admin.post("/api/v1/tokens", body).must(t, http.StatusCreated, &tok)
	if !strings.HasPrefix(tok.Token, "hks_") || tok.Hash != "" || tok.ID == "" {
		t.Fatalf("created token %+v: want a hks_ secret, an id and no hash", tok)
	}
	return &client{t: t, base: admin.base, token: tok.Token, hc: admin.hc}, tok
}

func (c *client) as(token string) *client {
	return &client{t: c.t, base: c.base, token: token, hc: c.hc}
}

// TestTokensLifecycle: an admin creates a token (shown once), it
// authenticates as itself, its use is recorded, it is listed without its
// secret or hash, and once revoked it no longer authenticates; the access
// audit lists both changes and never the secret.
func TestTokensLifecycle(t *testing.T) {
	_, admin := authHub(t)
	ci, tok := mint(t, admin, "ci", "responder")
	if tok.Role != "responder" || tok.ExpiresAt == nil || time.Until(*tok.ExpiresAt) > 25*time.Hour {
		t.Fatalf("token %+v: want responder expiring in a day", tok)
	}
	var who struct {
		ID, Name, Kind, Role string
	}
	ci.get("/api/v1/whoami").must(t, http.StatusOK, &who)
	if who.ID != "token:"+tok.ID || who.Name != "ci" || who.Kind != "token" || who.Role != "responder" {
		t.Fatalf("whoami = %+v", who)
	}
	var list struct {
		Tokens []tokenAnswer `json:"tokens"`
	}
	raw := admin.get("/api/v1/tokens").must(t, http.StatusOK, &list)
	if len(list.Tokens) != 1 || list.Tokens[0].ID != tok.ID || list.Tokens[0].LastUsedAt == nil {
		t.Fatalf("tokens = %s: want ci, with its last use", raw.Body)
	}
	if strings.Contains(string(raw.Body), tok.Token) || strings.Contains(string(raw.Body), `"hash"`) {
		t.Fatalf("the list shows a secret or a hash: %s", raw.Body)
	}
	admin.req(http.MethodDelete, "/api/v1/tokens/"+tok.ID, nil).must(t, http.StatusOK, nil)
	ci.get("/api/v1/whoami").mustError(t, http.StatusUnauthorized, "unauthorized")
	admin.req(http.MethodDelete, "/api/v1/tokens/no-such-token", nil).mustError(t, http.StatusNotFound, "not_found")
	ci.post("/api/v1/incidents", declareBody("after revocation")).mustError(t, http.StatusUnauthorized, "unauthorized")

	var audit struct {
		Events []struct {
			Type, Actor string
			Data        map[string]any
		} `json:"events"`
	}
	a := admin.get("/api/v1/access/events").must(t, http.StatusOK, &audit)
	if len(audit.Events) != 2 || audit.Events[0].Type != events.TypeTokenRevoked || audit.Events[1].Type != events.TypeTokenCreated ||
		audit.Events[0].Actor != "token:service" || audit.Events[1].Data["token_id"] != tok.ID {
		t.Fatalf("access audit = %s", a.Body)
	}
	if strings.Contains(string(a.Body), tok.Token) || strings.Contains(string(a.Body), strings.TrimPrefix(tok.Token, "hks_")) {
		t.Fatalf("the audit shows the secret: %s", a.Body)
	}
	for _, bad := range []map[string]any{
		{"name": "", "role": "viewer"},
		{"name": "x", "role": "root"},
		{"name": "x", "role": "viewer", "expires": "soon"},
		{"name": "x", "role": "viewer", "scopes": []string{"everything"}},
	} {
		admin.post("/api/v1/tokens", bad).mustError(t, http.StatusBadRequest, "")
	}
}

// TestActorIsTheIdentity: an action records who authenticated (stable id
// and display name). X-Hikeshi-Actor is ignored for a token without the
// act-as scope; with it, the named person is the actor and the token is
// recorded as via.
func TestActorIsTheIdentity(t *testing.T) {
	h, admin := authHub(t)
	resp, rtok := mint(t, admin, "pager bridge", "responder")
	bridge, btok := mint(t, admin, "chat bridge", "responder", "act-as")
	inc := resp.declare(declareBody("actor check"), "X-Hikeshi-Actor", "mallory")
	if inc.DeclaredBy != "token:"+rtok.ID {
		t.Fatalf("declared_by %q, want the token's id", inc.DeclaredBy)
	}
	var st Incident
	bridge.post("/api/v1/incidents/"+inc.ID+"/notes", map[string]any{"text": "for dana"}, "X-Hikeshi-Actor", "dana").must(t, http.StatusOK, &st)
	got := stored(t, h)
	if e := got[0]; e.Actor != "token:"+rtok.ID || e.ActorName != "pager bridge" || e.Via != "" {
		t.Fatalf("declared: actor %q name %q via %q", e.Actor, e.ActorName, e.Via)
	}
	if e := got[1]; e.Actor != "dana" || e.ActorName != "dana" || e.Via != "token:"+btok.ID {
		t.Fatalf("note: actor %q name %q via %q", e.Actor, e.ActorName, e.Via)
	}
}

// TestTimelineShowsWhoActed: the timeline API returns each event's actor
// with their display name, and who acted for them (via).
func TestTimelineShowsWhoActed(t *testing.T) {
	_, admin := authHub(t)
	resp, rtok := mint(t, admin, "pager bridge", "responder")
	bridge, btok := mint(t, admin, "chat bridge", "responder", "act-as")
	inc := resp.declare(declareBody("who acted"))
	var st Incident
	bridge.post("/api/v1/incidents/"+inc.ID+"/notes", map[string]any{"text": "for dana"}, "X-Hikeshi-Actor", "person:dana@example.com").must(t, http.StatusOK, &st)
	want := map[string]Entry{
		"io.hikeshi.incident.declared":   {Actor: "token:" + rtok.ID, ActorName: "pager bridge"},
		"io.hikeshi.incident.note_added": {Actor: "person:dana@example.com", ActorName: "person:dana@example.com", Via: "token:" + btok.ID},
	}
	for _, e := range admin.timeline(inc.ID, st.Version).Events {
		w, ok := want[e.Type]
		if !ok {
			continue
		}
		delete(want, e.Type)
		if e.Actor != w.Actor || e.ActorName != w.ActorName || e.Via != w.Via {
			t.Errorf("%s: actor %q name %q via %q; want %q %q %q", e.Type, e.Actor, e.ActorName, e.Via, w.Actor, w.ActorName, w.Via)
		}
	}
	if len(want) > 0 {
		t.Errorf("timeline misses %v", want)
	}
}

// TestLoopbackOperator: a hub without auth on loopback serves one local
// operator, recorded as the OS user, who may do everything (tokens too).
func TestLoopbackOperator(t *testing.T) {
	h, c := startHub(t, hub.Config{})
	inc := c.declare(declareBody("local"))
	name := "local"
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	if inc.DeclaredBy != "local:"+name {
		t.Fatalf("declared_by %q, want local:%s", inc.DeclaredBy, name)
	}
	e := stored(t, h)[0]
	if e.Actor != "local:"+name || e.ActorName != name {
		t.Fatalf("actor %q name %q", e.Actor, e.ActorName)
	}
	_, tok := mint(t, c, "ci", "viewer")
	c.as(tok.Token).post("/api/v1/incidents", declareBody("viewer")).mustError(t, http.StatusForbidden, "forbidden")
	c.as("hks_not-a-token").get("/api/v1/incidents").mustError(t, http.StatusUnauthorized, "unauthorized")
}

// stored returns every event on the incident stream.
func stored(t *testing.T, h *hub.Hub) []events.Envelope {
	t.Helper()
	var out []events.Envelope
	err := h.Bus().Events.Read(context.Background(), natsjs.ReadOptions{}, func(e events.Stored) error {
		out = append(out, e.Envelope)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

type stream struct {
	sc     *bufio.Scanner
	status int
}

// openStream opens GET /api/v1/events as c; status is the answer's.
func openStream(t *testing.T, c *client, query string) *stream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/api/v1/events"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); res.Body.Close() })
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	return &stream{sc: sc, status: res.StatusCode}
}

// next returns the next event of the stream.
func (s *stream) next() (events.Envelope, bool) {
	for s.sc.Scan() {
		line := s.sc.Text()
		if data, ok := strings.CutPrefix(line, "data: "); ok {
			var env events.Envelope
			if json.Unmarshal([]byte(data), &env) == nil && env.Type != "" {
				return env, true
			}
		}
	}
	return events.Envelope{}, false
}

// until reads events up to and including the first of incident id, and
// returns everything read.
func (s *stream) until(t *testing.T, id string) []events.Envelope {
	t.Helper()
	var out []events.Envelope
	for {
		e, ok := s.next()
		if !ok {
			t.Fatalf("stream ended before an event of %s: %v", id, s.sc.Err())
		}
		out = append(out, e)
		if e.Subject == id {
			return out
		}
	}
}

func mentions(envs []events.Envelope, id string) bool {
	for _, e := range envs {
		if e.Subject == id {
			return true
		}
	}
	return false
}

var _ = fmt.Sprint

// TestLiveStreamEndsWithItsToken: a live stream opened with a token ends,
// saying why, once the token is revoked; it does not go on showing events
// to someone who may no longer read them.
func TestLiveStreamEndsWithItsToken(t *testing.T) {
	defer httpapi.SetReauthEvery(httpapi.SetReauthEvery(100 * time.Millisecond))
	_, admin := authHub(t)
	viewer, tok := mint(t, admin, "wallboard", "viewer")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, viewer.base+"/api/v1/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("events: %d", res.StatusCode)
	}
	admin.req(http.MethodDelete, "/api/v1/tokens/"+tok.ID, nil).must(t, http.StatusOK, nil)
	body, err := io.ReadAll(res.Body) // the hub ends the stream itself
	if err != nil {
		t.Fatalf("stream: %v (read so far: %q)", err, body)
	}
	if !strings.Contains(string(body), "event: end") || !strings.Contains(string(body), "no longer valid") {
		t.Fatalf("stream after revocation: %q", body)
	}
}
