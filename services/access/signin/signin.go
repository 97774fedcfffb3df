// Package signin signs people in with an OpenID Connect provider
// (authorisation code flow with PKCE) and keeps their browser sessions:
// a cookie that is HttpOnly, SameSite=Lax, Secure behind HTTPS, expiring,
// ended by logout, with a CSRF token every form post must carry.
package signin

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/hikeshi/hikeshi/services/access"
	"github.com/hikeshi/hikeshi/services/httpjson"
	"golang.org/x/oauth2"
)

// Cookie names. The flow cookie lives only between login and callback.
const (
	SessionCookie = "hikeshi_session"
	flowCookie    = "hikeshi_signin"
	// CSRFHeader carries the session's CSRF token on API calls made with
	// the session cookie; CSRFField carries it in a form post.
	CSRFHeader = "X-CSRF-Token"
	CSRFField  = "csrf"
)

// Paths of the sign-in routes.
const (
	PathLogin    = "/auth/login"
	PathCallback = "/auth/callback"
	PathLogout   = "/auth/logout"
	PathSession  = "/auth/session"
)

// Store keeps sessions (natsjs.Sessions).
type Store interface {
	Put(ctx context.Context, key string, v any) error
	Get(ctx context.Context, key string, v any) (bool, error)
	Delete(ctx context.Context, key string) error
}

// SignIn is the OIDC relying party of the hub.
type SignIn struct {
	cfg      access.OIDCConfig
	oauth    oauth2.Config
	verifier *oidc.IDTokenVerifier
	store    Store
	secure   bool // cookies only over HTTPS
	now      func() time.Time
	log      *slog.Logger
}

// New discovers the provider (its keys are fetched, cached and rotated by
// go-oidc) and prepares the flow. publicURL is where people reach the hub.
func New(ctx context.Context, cfg access.OIDCConfig, clientSecret, publicURL string, store Store, log *slog.Logger) (*SignIn, error) {
	provider, err := oidc.NewProvider(ctx, cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("auth.oidc: discover %s: %w (is the issuer URL right and reachable?)", cfg.Issuer, err)
	}
	redirect := cfg.RedirectURL
	if redirect == "" {
		redirect = strings.TrimRight(publicURL, "/") + PathCallback
	}
	return &SignIn{
		cfg: cfg,
		oauth: oauth2.Config{
			ClientID: cfg.ClientID, ClientSecret: clientSecret, Endpoint: provider.Endpoint(),
			RedirectURL: redirect, Scopes: append([]string{oidc.ScopeOpenID}, cfg.Scopes...),
		},
		verifier: provider.Verifier(&oidc.Config{ClientID: cfg.ClientID}),
		store:    store,
		secure:   behindHTTPS(publicURL),
		now:      time.Now,
		log:      log,
	}, nil
}

// behindHTTPS: people reach the hub over HTTPS, so cookies may be Secure.
func behindHTTPS(publicURL string) bool { return strings.HasPrefix(publicURL, "https://") }

// Routes are mounted outside the API's authentication.
func (s *SignIn) Routes() map[string]http.Handler {
	return map[string]http.Handler{
		"GET " + PathLogin:    http.HandlerFunc(s.login),
		"GET " + PathCallback: http.HandlerFunc(s.callback),
		"POST " + PathLogout:  http.HandlerFunc(s.logout),
		"GET " + PathSession:  http.HandlerFunc(s.session),
	}
}

// session is what a browser session holds.
type session struct {
	Identity  access.Identity `json:"identity"`
	CSRF      string          `json:"csrf"`
	ExpiresAt time.Time       `json:"expires_at"`
}

// flow is what the browser keeps between login and callback.
type flow struct{ state, nonce, verifier, back string }

func random() string { return rand.Text() }

func key(cookie string) string {
	sum := sha256.Sum256([]byte(cookie))
	return hex.EncodeToString(sum[:])
}

func (s *SignIn) cookie(name, value string, maxAge time.Duration) *http.Cookie {
	c := &http.Cookie{Name: name, Value: value, Path: "/", HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteLaxMode}
	if maxAge < 0 {
		c.MaxAge = -1
	} else {
		c.MaxAge = int(maxAge / time.Second)
	}
	return c
}

// login sends the browser to the provider, with a fresh state, nonce and
// PKCE verifier kept in a short-lived cookie.
func (s *SignIn) login(w http.ResponseWriter, r *http.Request) {
	f := flow{state: random(), nonce: random(), verifier: oauth2.GenerateVerifier(), back: localPath(r.URL.Query().Get("return"))}
	http.SetCookie(w, s.cookie(flowCookie, url.Values{"s": {f.state}, "n": {f.nonce}, "v": {f.verifier}, "b": {f.back}}.Encode(), 10*time.Minute))
	http.Redirect(w, r, s.oauth.AuthCodeURL(f.state, oauth2.S256ChallengeOption(f.verifier), oidc.Nonce(f.nonce)), http.StatusFound)
}

// localPath keeps a return address on this site (no open redirect).
func localPath(p string) string {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") {
		return "/"
	}
	return p
}

// ErrRefused: the provider vouched for the person, but this hub admits
// them to nothing (domain not allowed, no role mapped).
var ErrRefused = errors.New("not allowed to use this hub")

// callback completes sign-in: it checks the state, exchanges the code
// with the PKCE verifier, verifies the ID token (signature, issuer,
// audience, expiry, nonce), maps groups to a role and starts a session.
func (s *SignIn) callback(w http.ResponseWriter, r *http.Request) {
	c, err := r.Cookie(flowCookie)
	if err != nil {
		fail(w, http.StatusBadRequest, "sign-in expired or started elsewhere; start again at "+PathLogin)
		return
	}
	http.SetCookie(w, s.cookie(flowCookie, "", -1))
	v, _ := url.ParseQuery(c.Value)
	f := flow{state: v.Get("s"), nonce: v.Get("n"), verifier: v.Get("v"), back: localPath(v.Get("b"))}
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		fail(w, http.StatusUnauthorized, "the identity provider refused sign-in: "+e)
		return
	}
	if f.state == "" || subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(f.state)) != 1 {
		fail(w, http.StatusBadRequest, "sign-in state does not match; start again at "+PathLogin)
		return
	}
	tok, err := s.oauth.Exchange(r.Context(), q.Get("code"), oauth2.VerifierOption(f.verifier))
	if err != nil {
		s.log.Warn("sign-in: code exchange failed", "err", err)
		fail(w, http.StatusUnauthorized, "the identity provider did not confirm the sign-in")
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	id, err := s.Verify(r.Context(), raw, f.nonce)
	if err != nil {
		s.log.Warn("sign-in refused", "err", err)
		status := http.StatusUnauthorized
		if errors.Is(err, ErrRefused) {
			status = http.StatusForbidden
		}
		fail(w, status, err.Error())
		return
	}
	cookie := random()
	sess := session{Identity: id, CSRF: random(), ExpiresAt: s.now().Add(s.cfg.SessionTTL)}
	if err := s.store.Put(r.Context(), key(cookie), sess); err != nil {
		fail(w, http.StatusServiceUnavailable, "the session could not be stored; retry")
		return
	}
	http.SetCookie(w, s.cookie(SessionCookie, cookie, s.cfg.SessionTTL))
	http.Redirect(w, r, f.back, http.StatusSeeOther)
}

// claims are the ID token claims the hub reads.
type claims struct {
	Subject       string `json:"sub"`
	Email         string `json:"email"`
	EmailVerified *bool  `json:"email_verified"`
	Name          string `json:"name"`
	Username      string `json:"preferred_username"`
}

// Verify checks a raw ID token (go-oidc: signature against the provider's
// keys, issuer, audience, expiry) and its nonce, and returns the person
// with the role the configuration maps them to.
func (s *SignIn) Verify(ctx context.Context, raw, nonce string) (access.Identity, error) {
	if raw == "" {
		return access.Identity{}, errors.New("the provider sent no ID token")
	}
	idt, err := s.verifier.Verify(ctx, raw)
	if err != nil {
		return access.Identity{}, fmt.Errorf("ID token refused: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(nonce)) != 1 {
		return access.Identity{}, errors.New("ID token refused: nonce does not match this sign-in")
	}
	var c claims
	all := map[string]any{}
	if err := idt.Claims(&c); err != nil {
		return access.Identity{}, fmt.Errorf("ID token claims: %w", err)
	}
	_ = idt.Claims(&all)
	return s.person(c, groups(all[s.cfg.GroupsClaim]))
}

func groups(v any) []string {
	var out []string
	switch g := v.(type) {
	case []any:
		for _, x := range g {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
	case string:
		out = append(out, g)
	}
	return out
}

func (s *SignIn) person(c claims, groups []string) (access.Identity, error) {
	email := strings.ToLower(strings.TrimSpace(c.Email))
	if email != "" && c.EmailVerified != nil && !*c.EmailVerified {
		return access.Identity{}, fmt.Errorf("%w: the provider has not verified %s", ErrRefused, email)
	}
	if len(s.cfg.AllowedDomains) > 0 {
		_, domain, _ := strings.Cut(email, "@")
		if !slices.ContainsFunc(s.cfg.AllowedDomains, func(d string) bool { return strings.EqualFold(d, domain) }) {
			return access.Identity{}, fmt.Errorf("%w: %q is not an address of an allowed domain", ErrRefused, email)
		}
	}
	role := access.RoleFor(s.cfg.Roles, email, groups)
	if role == access.None {
		return access.Identity{}, fmt.Errorf("%w: no role is mapped to %s or its groups", ErrRefused, cmp(email, c.Subject))
	}
	id := access.Identity{ID: "person:" + cmp(email, c.Subject), Name: cmp(c.Name, cmp(c.Username, cmp(email, c.Subject))),
		Kind: access.Person, Role: role, Email: email}
	return id, nil
}

func cmp(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// Session implements access.Sessions: the signed-in person of a request
// with a live session cookie. A request that changes anything must also
// carry the session's CSRF token, so another site cannot post with it.
func (s *SignIn) Session(r *http.Request) (access.Identity, bool) {
	sess, ok := s.load(r)
	if !ok {
		return access.Identity{}, false
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead && !csrfOK(r, sess.CSRF) {
		return access.Identity{}, false
	}
	return sess.Identity, true
}

func (s *SignIn) load(r *http.Request) (session, bool) {
	c, err := r.Cookie(SessionCookie)
	if err != nil || c.Value == "" {
		return session{}, false
	}
	var sess session
	ok, err := s.store.Get(r.Context(), key(c.Value), &sess)
	if err != nil || !ok || !s.now().Before(sess.ExpiresAt) {
		return session{}, false
	}
	return sess, true
}

// csrfOK: the token came in the header or, for a form, in its field.
func csrfOK(r *http.Request, want string) bool {
	got := r.Header.Get(CSRFHeader)
	if got == "" && strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		got = r.PostFormValue(CSRFField)
	}
	return want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// session answers who is signed in, with the CSRF token a page puts in
// its forms: GET /auth/session.
func (s *SignIn) session(w http.ResponseWriter, r *http.Request) {
	sess, ok := s.load(r)
	if !ok {
		fail(w, http.StatusUnauthorized, "not signed in; sign in at "+PathLogin)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]any{"identity": sess.Identity, "csrf": sess.CSRF, "expires_at": sess.ExpiresAt})
}

// logout ends the session: POST /auth/logout with the CSRF token, and
// sends the browser to the form's return (a page of this site that needs
// no sign-in, else it would sign the person in again), by default /.
func (s *SignIn) logout(w http.ResponseWriter, r *http.Request) {
	back := localPath(r.PostFormValue("return"))
	sess, ok := s.load(r)
	if !ok {
		http.SetCookie(w, s.cookie(SessionCookie, "", -1))
		http.Redirect(w, r, back, http.StatusSeeOther)
		return
	}
	if !csrfOK(r, sess.CSRF) {
		fail(w, http.StatusForbidden, "missing or wrong CSRF token")
		return
	}
	c, _ := r.Cookie(SessionCookie)
	if err := s.store.Delete(r.Context(), key(c.Value)); err != nil {
		fail(w, http.StatusServiceUnavailable, "the session could not be ended; retry")
		return
	}
	http.SetCookie(w, s.cookie(SessionCookie, "", -1))
	http.Redirect(w, r, back, http.StatusSeeOther)
}

var writeJSON = httpjson.WriteJSON

// fail answers in the API's error shape.
func fail(w http.ResponseWriter, status int, msg string) {
	code := "unauthorized"
	switch status {
	case http.StatusBadRequest:
		code = "bad_request"
	case http.StatusForbidden:
		code = "forbidden"
	case http.StatusServiceUnavailable:
		code = "unavailable"
	}
	httpjson.WriteError(w, status, code, msg)
}

// CSRF is the CSRF token of r's session, for a page's forms; false when r
// has no session.
func (s *SignIn) CSRF(r *http.Request) (string, bool) {
	sess, ok := s.load(r)
	return sess.CSRF, ok
}
