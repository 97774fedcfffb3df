package httpapi_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/hikeshi/hikeshi/services/access"
	"github.com/hikeshi/hikeshi/services/access/signin"
	"github.com/hikeshi/hikeshi/services/config"
	"github.com/hikeshi/hikeshi/services/hub"
	"github.com/oauth2-proxy/mockoidc"
)

// provider runs a real OpenID Connect provider in the test process.
func provider(t *testing.T) *mockoidc.MockOIDC {
	t.Helper()
	m, err := mockoidc.Run()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Shutdown() })
	t.Setenv("TEST_OIDC_SECRET", m.ClientSecret)
	return m
}

func oidcConfig(m *mockoidc.MockOIDC) access.OIDCConfig {
	return access.OIDCConfig{
		Issuer: m.Issuer(), ClientID: m.ClientID, ClientSecretEnv: "TEST_OIDC_SECRET",
		AllowedDomains: []string{"example.com"}, GroupsClaim: "groups",
		Roles:  map[string]string{"csirt": "security", "sre": "responder"},
		Scopes: []string{"email", "profile", "groups"}, SessionTTL: time.Hour,
	}
}

// oidcHub starts a hub whose people sign in with m.
func oidcHub(t *testing.T, m *mockoidc.MockOIDC) (*hub.Hub, *client) {
	t.Helper()
	f, err := config.Parse("hikeshi.yaml", fmt.Appendf(nil, `
auth:
  oidc:
    issuer: %s
    client_id: %s
    client_secret_env: TEST_OIDC_SECRET
    allowed_domains: [example.com]
    scopes: [email, profile, groups]
    roles: {csirt: security, sre: responder}
    session_ttl: 1h
`, m.Issuer(), m.ClientID))
	if err != nil {
		t.Fatal(err)
	}
	return startHub(t, hub.Config{Token: adminSecret, File: f})
}

// browser follows a sign-in by hand, keeping cookies.
type browser struct {
	t    *testing.T
	base string
	hc   *http.Client
}

func newBrowser(t *testing.T, base string) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, base: base, hc: &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browser) do(method, target string, body string, hdr ...string) *http.Response {
	b.t.Helper()
	r, err := http.NewRequest(method, target, strings.NewReader(body))
	if err != nil {
		b.t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := b.hc.Do(r)
	if err != nil {
		b.t.Fatal(err)
	}
	res.Body.Close()
	return res
}

// signIn goes through login, the provider and the callback as user, and
// returns the callback's answer.
func (b *browser) signIn(m *mockoidc.MockOIDC, user *mockoidc.MockUser) *http.Response {
	b.t.Helper()
	m.QueueUser(user)
	res := b.do("GET", b.base+signin.PathLogin+"?return=/api/v1/whoami", "")
	if res.StatusCode != http.StatusFound {
		b.t.Fatalf("login: %d", res.StatusCode)
	}
	auth, _ := url.Parse(res.Header.Get("Location"))
	if q := auth.Query(); q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("nonce") == "" || q.Get("state") == "" {
		b.t.Fatalf("authorisation request without PKCE, nonce or state: %s", auth)
	}
	res = b.do("GET", auth.String(), "")
	back, _ := url.Parse(res.Header.Get("Location"))
	if res.StatusCode != http.StatusFound || back.Path != signin.PathCallback {
		b.t.Fatalf("provider: %d to %s", res.StatusCode, back)
	}
	// The provider sends the browser to the public URL; the hub of the
	// test listens on a port picked at start.
	return b.do("GET", b.base+back.RequestURI(), "")
}

func (b *browser) session() (id access.Identity, csrf string, ok bool) {
	b.t.Helper()
	r, _ := http.NewRequest("GET", b.base+signin.PathSession, nil)
	res, err := b.hc.Do(r)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	var s struct {
		Identity access.Identity `json:"identity"`
		CSRF     string          `json:"csrf"`
	}
	if res.StatusCode != http.StatusOK {
		return id, "", false
	}
	if err := jsonDecode(res, &s); err != nil {
		b.t.Fatal(err)
	}
	return s.Identity, s.CSRF, true
}

func person(email string, groups ...string) *mockoidc.MockUser {
	return &mockoidc.MockUser{Subject: "sub-" + email, Email: email, EmailVerified: true, PreferredUsername: strings.Split(email, "@")[0], Groups: groups}
}

// TestOIDCSignIn: people sign in with the provider (code flow, PKCE); their
// groups map to roles; the session cookie is HttpOnly and SameSite=Lax; a
// post with the cookie needs the CSRF token; someone with no role, of
// another domain, or with an expired token gets no session; logout ends
// the session on the server.
func TestOIDCSignIn(t *testing.T) {
	m := provider(t)
	h, admin := oidcHub(t, m)
	base := "http://" + h.Addr()

	var audit struct {
		Events []struct{ Type string } `json:"events"`
	}
	admin.get("/api/v1/access/events").must(t, http.StatusOK, &audit)
	if len(audit.Events) != 1 || audit.Events[0].Type != "io.hikeshi.access.role_mapping_changed" {
		t.Fatalf("access audit %+v: want the role mapping recorded at start", audit.Events)
	}

	alice := newBrowser(t, base)
	res := alice.signIn(m, person("alice@example.com", "csirt"))
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/api/v1/whoami" {
		t.Fatalf("callback: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	var cookie *http.Cookie
	for _, c := range res.Cookies() {
		if c.Name == signin.SessionCookie {
			cookie = c
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteLaxMode || cookie.Secure || cookie.MaxAge != 3600 {
		t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Lax, an hour, not Secure over plain HTTP", cookie)
	}
	id, csrf, ok := alice.session()
	if !ok || id.ID != "person:alice@example.com" || id.Role != access.Security || id.Kind != access.Person || csrf == "" {
		t.Fatalf("alice's session: %+v csrf %q", id, csrf)
	}

	// A post with the session cookie alone is refused (another site could
	// make the browser send it); with the CSRF token it is the person's.
	decl := `{"title":"Phishing wave","service":"mail","severity":"SEV3","confidential":true}`
	if r := alice.do("POST", base+"/api/v1/incidents", decl, "Content-Type", "application/json"); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("post without the CSRF token: %d", r.StatusCode)
	}
	if r := alice.do("POST", base+"/api/v1/incidents", decl, "Content-Type", "application/json", signin.CSRFHeader, csrf); r.StatusCode != http.StatusCreated {
		t.Fatalf("post with the CSRF token: %d", r.StatusCode)
	}
	var list struct {
		Incidents []Incident `json:"incidents"`
	}
	eventually(t, "alice's incident listed", func() error {
		list.Incidents = nil
		admin.get("/api/v1/incidents").must(t, http.StatusOK, &list)
		if len(list.Incidents) != 1 || list.Incidents[0].DeclaredBy != "person:alice@example.com" {
			return fmt.Errorf("incidents %+v", list.Incidents)
		}
		return nil
	})

	bob := newBrowser(t, base)
	bob.signIn(m, person("bob@example.com", "sre"))
	if id, _, _ := bob.session(); id.Role != access.Responder {
		t.Fatalf("bob (sre) has role %s, want responder", id.Role)
	}
	// Bob is a responder outside alice's confidential incident.
	if r := bob.do("GET", base+"/api/v1/incidents/"+list.Incidents[0].ID, ""); r.StatusCode != http.StatusNotFound {
		t.Fatalf("bob reads alice's confidential incident: %d", r.StatusCode)
	}

	for name, c := range map[string]struct {
		user *mockoidc.MockUser
		want int
	}{
		"no role mapped": {person("carol@example.com", "marketing"), http.StatusForbidden},
		"another domain": {person("dave@example.org", "csirt"), http.StatusForbidden},
	} {
		b := newBrowser(t, base)
		if r := b.signIn(m, c.user); r.StatusCode != c.want {
			t.Errorf("%s: callback %d, want %d", name, r.StatusCode, c.want)
		}
		if _, _, ok := b.session(); ok {
			t.Errorf("%s: has a session", name)
		}
	}

	// An ID token that expired before it reached the hub.
	m.FastForward(-time.Hour)
	late := newBrowser(t, base)
	if r := late.signIn(m, person("frank@example.com", "csirt")); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("expired ID token: callback %d, want 401", r.StatusCode)
	}
	m.FastForward(time.Hour)

	// Logout needs the CSRF token, then ends the session for good: the old
	// cookie no longer authenticates.
	if r := alice.do("POST", base+signin.PathLogout, ""); r.StatusCode != http.StatusForbidden {
		t.Fatalf("logout without the CSRF token: %d", r.StatusCode)
	}
	if r := alice.do("POST", base+signin.PathLogout, url.Values{signin.CSRFField: {csrf}}.Encode(), "Content-Type", "application/x-www-form-urlencoded"); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d", r.StatusCode)
	}
	stale := newBrowser(t, base)
	u, _ := url.Parse(base)
	stale.hc.Jar.SetCookies(u, []*http.Cookie{{Name: signin.SessionCookie, Value: cookie.Value}})
	if r := stale.do("GET", base+"/api/v1/whoami", ""); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the cookie of an ended session: %d", r.StatusCode)
	}
}

// TestOIDCTokenChecks: ID tokens signed by the provider's own key are
// accepted only with the hub as audience, unexpired, untampered and with
// the sign-in's nonce.
func TestOIDCTokenChecks(t *testing.T) {
	m := provider(t)
	si, err := signin.New(context.Background(), oidcConfig(m), m.ClientSecret, "http://hub.example", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	sign := func(change func(jwt.MapClaims)) string {
		c := jwt.MapClaims{"iss": m.Issuer(), "aud": m.ClientID, "sub": "s1", "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
			"nonce": "n1", "email": "alice@example.com", "email_verified": true, "groups": []string{"sre"}}
		if change != nil {
			change(c)
		}
		raw, err := m.Keypair.SignJWT(c)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	id, err := si.Verify(context.Background(), sign(nil), "n1")
	if err != nil || id.Role != access.Responder || id.Email != "alice@example.com" {
		t.Fatalf("good token: %+v, %v", id, err)
	}
	good := sign(nil)
	parts := strings.Split(good, ".")
	sig := []byte(parts[2])
	sig[10] ^= 1
	forged := strings.Replace(good, parts[1], strings.TrimRight(b64(`{"iss":"`+m.Issuer()+`","aud":"`+m.ClientID+`","sub":"s1","exp":9999999999,"nonce":"n1","email":"mallory@example.com","email_verified":true,"groups":["csirt"]}`), "="), 1)
	for name, c := range map[string]struct{ raw, nonce string }{
		"wrong audience":     {sign(func(c jwt.MapClaims) { c["aud"] = "another-client" }), "n1"},
		"expired":            {sign(func(c jwt.MapClaims) { c["exp"] = now.Add(-time.Hour).Unix() }), "n1"},
		"other issuer":       {sign(func(c jwt.MapClaims) { c["iss"] = "https://evil.example" }), "n1"},
		"tampered signature": {parts[0] + "." + parts[1] + "." + string(sig), "n1"},
		"tampered claims":    {forged, "n1"},
		"replayed nonce":     {good, "another-sign-in"},
		"e-mail unverified":  {sign(func(c jwt.MapClaims) { c["email_verified"] = false }), "n1"},
		"no token":           {"", "n1"},
	} {
		if id, err := si.Verify(context.Background(), c.raw, c.nonce); err == nil {
			t.Errorf("%s: accepted as %+v", name, id)
		}
	}
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func jsonDecode(res *http.Response, v any) error { return json.NewDecoder(res.Body).Decode(v) }

// TestIdempotencyKeysArePerPerson: two people signed in with cookies (no
// Authorization header) who happen to send the same Idempotency-Key each
// get their own answer, never the other's.
func TestIdempotencyKeysArePerPerson(t *testing.T) {
	m := provider(t)
	h, _ := oidcHub(t, m)
	base := "http://" + h.Addr()
	declareAs := func(email, title string) (int, string) {
		b := newBrowser(t, base)
		b.signIn(m, person(email, "sre"))
		_, csrf, ok := b.session()
		if !ok {
			t.Fatalf("%s: no session", email)
		}
		r, _ := http.NewRequest("POST", base+"/api/v1/incidents", strings.NewReader(`{"title":"`+title+`","service":"web","severity":"SEV3"}`))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Idempotency-Key", "retry-1")
		r.Header.Set(signin.CSRFHeader, csrf)
		res, err := b.hc.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var inc Incident
		_ = jsonDecode(res, &inc)
		return res.StatusCode, inc.Title
	}
	if code, title := declareAs("alice@example.com", "Alice's outage"); code != http.StatusCreated || title != "Alice's outage" {
		t.Fatalf("alice: %d %q", code, title)
	}
	if code, title := declareAs("bob@example.com", "Bob's outage"); code != http.StatusCreated || title != "Bob's outage" {
		t.Fatalf("bob with the same key as alice: %d %q, want his own incident", code, title)
	}
}
