package httpxtest

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// Faults are taken in order, each once, by the first call they match, with
// their headers.
func TestFaultsInOrder(t *testing.T) {
	var f Faults
	f.Add("POST /issues", http.StatusTooManyRequests, "3")
	f.AddHeader("", http.StatusForbidden, http.Header{"X-Ratelimit-Remaining": {"0"}})
	f.AddAfter("/comments", http.StatusBadGateway)
	take := func(method, path string) (Fault, bool, http.Header) {
		w := httptest.NewRecorder()
		ft, ok := f.Next(w, httptest.NewRequest(method, path, nil))
		return ft, ok, w.Header()
	}
	if ft, ok, h := take("GET", "/issues/1/comments"); !ok || ft.Status != http.StatusForbidden || h.Get("X-Ratelimit-Remaining") != "0" {
		t.Fatalf("first GET: %+v %v %v", ft, ok, h)
	}
	if ft, ok, h := take("POST", "/issues"); !ok || ft.Status != http.StatusTooManyRequests || h.Get("Retry-After") != "3" {
		t.Fatalf("create: %+v %v %v", ft, ok, h)
	}
	if ft, ok, _ := take("POST", "/issues/1/comments"); !ok || !ft.After || ft.Status != http.StatusBadGateway {
		t.Fatalf("comment: %+v %v", ft, ok)
	}
	if _, ok, _ := take("POST", "/issues"); ok {
		t.Fatal("a fault answered twice")
	}
}
