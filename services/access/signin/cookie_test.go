package signin

import (
	"net/http"
	"testing"
)

// Behind HTTPS the cookies are Secure; over plain HTTP (a loopback hub)
// they could not be, or the browser would never send them back.
func TestCookieSecureBehindHTTPS(t *testing.T) {
	for url, want := range map[string]bool{"https://hub.example.com": true, "http://127.0.0.1:8080": false} {
		s := &SignIn{secure: behindHTTPS(url)}
		c := s.cookie(SessionCookie, "v", 60)
		if c.Secure != want || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" {
			t.Errorf("%s: cookie %+v", url, c)
		}
	}
	if got := localPath("//evil.example/x"); got != "/" {
		t.Errorf("an off-site return address was kept: %q", got)
	}
	if got := localPath("/api/v1/incidents"); got != "/api/v1/incidents" {
		t.Errorf("a local return address was lost: %q", got)
	}
}
