package ingest

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// keyServer serves keys (a JWKS or a PEM certificate) the way a key
// endpoint can behave: failing, slow (held until released), or fine.
type keyServer struct {
	srv     *httptest.Server
	fetches atomic.Int32
	mu      sync.Mutex
	fail    bool
	hold    chan struct{} // when set, answers wait until it is closed
	entered chan struct{} // receives on every request
}

func newKeyServer(t *testing.T, tls bool, body func() []byte) *keyServer {
	k := &keyServer{entered: make(chan struct{}, 100)}
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		k.fetches.Add(1)
		k.entered <- struct{}{}
		k.mu.Lock()
		fail, hold := k.fail, k.hold
		k.mu.Unlock()
		if hold != nil {
			<-hold
		}
		if fail {
			http.Error(w, "backend exploded at 10.0.0.7", http.StatusInternalServerError)
			return
		}
		_, _ = w.Write(body())
	})
	if tls {
		k.srv = httptest.NewTLSServer(h)
	} else {
		k.srv = httptest.NewServer(h)
	}
	t.Cleanup(k.srv.Close)
	return k
}

func (k *keyServer) set(fail bool, hold chan struct{}) {
	k.mu.Lock()
	k.fail, k.hold = fail, hold
	k.mu.Unlock()
}

// waitEntered waits until a fetch reached the server.
func (k *keyServer) waitEntered(t *testing.T) {
	t.Helper()
	select {
	case <-k.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("no fetch reached the key server")
	}
}

// clock is a settable now for the verifiers.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// refusedWithoutDetail checks a 503 that says to retry and names nothing
// of what failed inside.
func refusedWithoutDetail(t *testing.T, resp *http.Response, out string, internals ...string) {
	t.Helper()
	must(t, resp.StatusCode == http.StatusServiceUnavailable, "status %d: %s", resp.StatusCode, out)
	must(t, resp.Header.Get("Retry-After") != "", "503 without Retry-After: %s", out)
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	must(t, json.Unmarshal([]byte(out), &e) == nil && e.Error.Code == "keys_unavailable", "body %s", out)
	for _, s := range append(internals, "10.0.0.7", "500", "GET", "dial", "tcp") {
		must(t, !strings.Contains(out, s), "503 body reveals %q: %s", s, out)
	}
}

const (
	sccAudience = "https://hikeshi.example.test/api/v1/signals/gcp-scc"
	sccAccount  = "scc-push@acme-sec.iam.gserviceaccount.com"
)

// sccRig is a hub module verifying GCP pushes against a key server it
// controls, on a settable clock.
type sccRig struct {
	*rig
	keys  *keyServer
	clock *clock
	key   *rsa.PrivateKey
	push  []byte
	// rotated adds kid k2 to the key set, as Google does when it rotates.
	rotated atomic.Bool
}

func newSCCRig(t *testing.T) *sccRig {
	setSecrets(t)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	r := &sccRig{clock: &clock{now: time.Now()}, key: key}
	r.keys = newKeyServer(t, false, func() []byte {
		jwk := func(kid string) map[string]string {
			return map[string]string{"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig",
				"n": base64.RawURLEncoding.EncodeToString(key.N.Bytes()),
				"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(key.E)).Bytes())}
		}
		set := []map[string]string{jwk("k1")}
		if r.rotated.Load() {
			set = append(set, jwk("k2"))
		}
		b, _ := json.Marshal(map[string]any{"keys": set})
		return b
	})
	r.rig = newRig(t, rigOpts{yaml: baseYAML + fmt.Sprintf("  gcp_scc:\n    audience: %s\n    service_account: %s\n    jwks_url: %s\n",
		sccAudience, sccAccount, r.keys.srv.URL), deps: Deps{Now: r.clock.Now}})
	r.push, _ = json.Marshal(map[string]any{
		"message": map[string]any{"data": base64.StdEncoding.EncodeToString(fixture(t, "scc-finding.json")),
			"messageId": "2070443601311540", "publishTime": "2025-06-06T03:12:47.001Z", "attributes": map[string]string{}},
		"subscription": "projects/acme-sec/subscriptions/hikeshi-scc",
	})
	return r
}

// send pushes the finding with a token signed under kid.
func (r *sccRig) send(kid string) (*http.Response, string) {
	seg := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	now := r.clock.Now()
	head := seg(map[string]string{"alg": "RS256", "kid": kid, "typ": "JWT"}) + "." + seg(map[string]any{
		"iss": "https://accounts.google.com", "aud": sccAudience, "email": sccAccount, "email_verified": true,
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()})
	sum := sha256.Sum256([]byte(head))
	sig, err := rsa.SignPKCS1v15(rand.Reader, r.key, crypto.SHA256, sum[:])
	if err != nil {
		r.t.Fatal(err)
	}
	return r.post(PathGCPSCC, r.push, auth(head+"."+base64.RawURLEncoding.EncodeToString(sig)))
}

// Google's key set cannot be fetched: 503 with Retry-After and nothing of
// the failure in the body; once it can, the same push is accepted.
func TestGCPKeysUnavailableIs503(t *testing.T) {
	r := newSCCRig(t)
	r.keys.set(true, nil)
	resp, out := r.send("k1")
	refusedWithoutDetail(t, resp, out, r.keys.srv.URL, "127.0.0.1")
	must(t, r.count() == 0, "stored %d", r.count())

	r.keys.set(false, nil)
	r.clock.Add(keyRetryAfter + time.Second)
	resp, out = r.send("k1")
	must(t, resp.StatusCode == http.StatusAccepted, "after the keys are back: %d %s", resp.StatusCode, out)
}

// While the key set is being fetched again (a new kid appeared), pushes
// signed with a known key are verified without waiting for it, and every
// push waiting for the new key shares one fetch.
func TestGCPKeyRefreshBlocksNobody(t *testing.T) {
	r := newSCCRig(t)
	resp, out := r.send("k1")
	must(t, resp.StatusCode == http.StatusAccepted, "first push: %d %s", resp.StatusCode, out)
	r.keys.waitEntered(t)

	r.clock.Add(2 * time.Minute) // an unknown kid may refresh again
	r.rotated.Store(true)
	release := make(chan struct{})
	r.keys.set(false, release)
	const waiting = 5
	statuses := make(chan int, waiting)
	for range waiting {
		go func() {
			resp, _ := r.send("k2")
			statuses <- resp.StatusCode
		}()
	}
	r.keys.waitEntered(t)

	known := make(chan int, 1)
	go func() {
		resp, _ := r.send("k1")
		known <- resp.StatusCode
	}()
	select {
	case code := <-known:
		must(t, code == http.StatusAccepted, "known key during the refresh: %d", code)
	case <-time.After(10 * time.Second):
		close(release)
		t.Fatal("a push signed with a known key waited for the key set refresh")
	}
	close(release)
	for range waiting {
		must(t, <-statuses == http.StatusAccepted, "push with the new key was not accepted")
	}
	must(t, r.keys.fetches.Load() == 2, "key set fetched %d times, want 2", r.keys.fetches.Load())
}

// snsCertRig verifies SNS deliveries with certificates fetched over HTTPS
// from a local server standing in for sns.<region>.amazonaws.com.
func snsCertRig(t *testing.T) (*rig, *keyServer) {
	setSecrets(t)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sns.amazonaws.com"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	ks := newKeyServer(t, true, func() []byte { return certPEM })
	client := ks.srv.Client()
	tr := client.Transport.(*http.Transport)
	tr.TLSClientConfig.ServerName = "example.com" // the test server's certificate
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, ks.srv.Listener.Addr().String())
	}
	certs := &httpCerts{client: client, log: slog.New(slog.NewTextHandler(io.Discard, nil)), cache: map[string]*x509.Certificate{}}
	r := newRig(t, rigOpts{yaml: baseYAML, deps: Deps{Certs: certs.fetch}})
	r.snsK = key
	return r, ks
}

func snsNotification(r *rig, id string) []byte {
	note := snsMessage{Type: "Notification", MessageID: id, TopicArn: "arn:aws:sns:us-west-2:123456789012:MyTopic",
		Subject: "GuardDuty", Message: string(fixture(r.t, "guardduty-eventbridge.json")),
		Timestamp:      time.Now().UTC().Format(time.RFC3339),
		SigningCertURL: "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-9c6465fa7f48f5cacd23014631ec1136.pem"}
	return r.snsSign(&note, "2")
}

// The SNS signing certificate cannot be fetched: 503 with Retry-After and
// no detail; deliveries arriving together while it is fetched share one
// fetch, and all are accepted.
func TestSNSCertificateUnavailableIs503(t *testing.T) {
	r, ks := snsCertRig(t)
	hdr := map[string]string{"x-amz-sns-message-type": "Notification"}
	ks.set(true, nil)
	resp, out := r.post(PathAWS, snsNotification(r, "m-0"), hdr)
	refusedWithoutDetail(t, resp, out, "sns.us-west-2", "amazonaws.com", ".pem")
	must(t, r.count() == 0, "stored %d", r.count())
	ks.waitEntered(t)

	release := make(chan struct{})
	ks.set(false, release)
	ks.fetches.Store(0)
	const deliveries = 8
	statuses := make(chan string, deliveries)
	for i := range deliveries {
		go func() {
			resp, out := r.post(PathAWS, snsNotification(r, fmt.Sprintf("m-%d", i+1)), hdr)
			statuses <- fmt.Sprintf("%d %s", resp.StatusCode, out)
		}()
	}
	ks.waitEntered(t)
	time.Sleep(200 * time.Millisecond) // the other deliveries reach the verifier
	close(release)
	for range deliveries {
		s := <-statuses
		must(t, strings.HasPrefix(s, "202 "), "delivery: %s", s)
	}
	must(t, ks.fetches.Load() == 1, "certificate fetched %d times for %d deliveries", ks.fetches.Load(), deliveries)
}

// The AWS header secret and bearer tokens are compared whole: a prefix, an
// extension or an empty value never verifies.
func TestHeaderSecretComparesWholeSecret(t *testing.T) {
	for _, c := range []struct {
		got, secret string
		ok          bool
	}{
		{"aws-secret", "aws-secret", true},
		{"aws-secre", "aws-secret", false},
		{"aws-secret-and-more", "aws-secret", false},
		{"", "aws-secret", false},
		{"", "", false},
		{"anything", "", false},
	} {
		req := httptest.NewRequest(http.MethodPost, PathAWS, nil)
		if c.got != "" {
			req.Header.Set("X-Hikeshi-Secret", c.got)
		}
		err := headerSecret(req, "X-Hikeshi-Secret", c.secret)
		must(t, (err == nil) == c.ok, "%q against %q: %v", c.got, c.secret, err)
	}
}
