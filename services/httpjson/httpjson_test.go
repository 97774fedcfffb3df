package httpjson

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestBearerAndSecretEqual(t *testing.T) {
	for _, c := range []struct {
		header, token string
		want          bool
	}{
		{"Bearer s3cret", "s3cret", true},
		{"Bearer s3cre", "s3cret", false},
		{"bearer s3cret", "s3cret", false},
		{"s3cret", "s3cret", false},
		{"", "", false},
		{"Bearer ", "", false}, // an empty secret accepts nobody
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		if c.header != "" {
			r.Header.Set("Authorization", c.header)
		}
		if got := Bearer(r, c.token); got != c.want {
			t.Errorf("Bearer(%q, %q) = %v, want %v", c.header, c.token, got, c.want)
		}
	}
}

func TestWriteError(t *testing.T) {
	w := httptest.NewRecorder()
	WriteError(w, http.StatusServiceUnavailable, "unavailable", "retry")
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") != "1" || w.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, headers %v", w.Code, w.Header())
	}
	if got, want := w.Body.String(), `{"error":{"code":"unavailable","message":"retry"}}`+"\n"; got != want {
		t.Errorf("body %q, want %q", got, want)
	}
	w = httptest.NewRecorder()
	Write(w, &Error{Status: http.StatusBadRequest, Code: "invalid_field", Message: "bad", Field: "status"})
	if got, want := w.Body.String(), `{"error":{"code":"invalid_field","message":"bad","field":"status"}}`+"\n"; got != want || w.Header().Get("Retry-After") != "" {
		t.Errorf("body %q, want %q; Retry-After %q", got, want, w.Header().Get("Retry-After"))
	}
}
