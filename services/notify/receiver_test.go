package notify_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/services/notify"
)

// receiver is a webhook endpoint that verifies every delivery the way the
// README tells receivers to, records it, and answers from a script.
type receiver struct {
	srv    *httptest.Server
	secret string

	mu      sync.Mutex
	answers []answer // consumed one per request; then 200
	bodies  []string // every request body, answered or not
	got     []notify.Payload
	bad     []string // verification failures
}

type answer struct {
	status     int
	retryAfter string
}

func newReceiver(t *testing.T, secret string) *receiver {
	t.Helper()
	r := &receiver{secret: secret}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.bodies = append(r.bodies, string(body))
	if err := notify.Verify([]byte(r.secret), req.Header.Get(notify.HeaderTimestamp),
		req.Header.Get(notify.HeaderSignature), body, time.Now(), 5*time.Minute); err != nil {
		r.bad = append(r.bad, err.Error())
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	if len(r.answers) > 0 {
		a := r.answers[0]
		r.answers = r.answers[1:]
		if a.retryAfter != "" {
			w.Header().Set("Retry-After", a.retryAfter)
		}
		w.WriteHeader(a.status)
		return
	}
	var p notify.Payload
	if err := json.Unmarshal(body, &p); err != nil || p.ID != req.Header.Get(notify.HeaderDelivery) {
		r.bad = append(r.bad, "payload: "+string(body))
		http.Error(w, "bad payload", http.StatusBadRequest)
		return
	}
	r.got = append(r.got, p)
	w.WriteHeader(http.StatusNoContent)
}

func (r *receiver) script(a ...answer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.answers = append(r.answers, a...)
}

// deliveries returns the accepted payloads and every body seen.
func (r *receiver) deliveries() ([]notify.Payload, string, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]notify.Payload(nil), r.got...), strings.Join(r.bodies, "\n"), append([]string(nil), r.bad...)
}
