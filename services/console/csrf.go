package console

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
)

// CSRF protection by double submit: a random token in a cookie that only
// this site can set or read (HttpOnly; SameSite=Lax, so that a link from
// Slack or a mail opens a page with the same token), repeated in every
// form (and, for the console's script, in a header). Another site can make
// a browser send the cookie, but cannot know its value to put in the form.

const (
	csrfCookie = "hikeshi_csrf"
	csrfField  = "csrf"
	csrfHeader = "X-CSRF-Token"
)

// csrfToken returns the caller's token, setting the cookie when it has
// none yet.
func (c *Console) csrfToken(w http.ResponseWriter, r *http.Request) string {
	if tok, ok := c.sessionCSRF(r); ok {
		return tok
	}
	if ck, err := r.Cookie(csrfCookie); err == nil && validToken(ck.Value) {
		return ck.Value
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	tok := base64.RawURLEncoding.EncodeToString(b)
	http.SetCookie(w, &http.Cookie{Name: csrfCookie, Value: tok, Path: "/", HttpOnly: true,
		Secure: c.d.Secure, SameSite: http.SameSiteLaxMode})
	// The same request may render a page that needs it.
	r.AddCookie(&http.Cookie{Name: csrfCookie, Value: tok})
	return tok
}

func validToken(s string) bool {
	b, err := base64.RawURLEncoding.DecodeString(s)
	return err == nil && len(b) == 32
}

func (c *Console) sessionCSRF(r *http.Request) (string, bool) {
	if c.d.SessionCSRF == nil {
		return "", false
	}
	tok, ok := c.d.SessionCSRF(r)
	return tok, ok && tok != ""
}

// csrfValid checks a POST's token against the session's, or else its
// cookie.
func (c *Console) csrfValid(r *http.Request) bool {
	want, ok := c.sessionCSRF(r)
	if !ok {
		ck, err := r.Cookie(csrfCookie)
		if err != nil || !validToken(ck.Value) {
			return false
		}
		want = ck.Value
	}
	sent := r.Header.Get(csrfHeader)
	if sent == "" {
		sent = r.PostFormValue(csrfField)
	}
	return subtle.ConstantTimeCompare([]byte(sent), []byte(want)) == 1
}
