package hub_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/hub"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func freePort(t *testing.T, host string) string {
	t.Helper()
	ln, err := net.Listen("tcp", host+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func runHub(t *testing.T, cfg hub.Config) *hub.Hub {
	t.Helper()
	cfg.DataDir, cfg.Listen = t.TempDir(), "127.0.0.1:0"
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	ctx, cancel := context.WithCancel(context.Background())
	h, err := hub.Start(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return h
}

// The embedded NATS port is never open to the network without a login:
// a non-loopback --nats-listen without one is refused before anything
// is opened, and says what to set.
func TestNATSListenBeyondLoopbackNeedsLogin(t *testing.T) {
	dir := t.TempDir()
	_, err := hub.Start(t.Context(), hub.Config{DataDir: dir, Listen: "127.0.0.1:0", NATSListen: freePort(t, "0.0.0.0")})
	if err == nil || !strings.Contains(err.Error(), "refusing to expose NATS on") || !strings.Contains(err.Error(), "HIKESHI_NATS_PASSWORD") {
		t.Fatalf("NATS exposed beyond loopback without a login: %v", err)
	}
	lock, err := hub.LockDataDir(dir)
	if err != nil {
		t.Fatalf("refused start left the data dir locked: %v", err)
	}
	lock.Release()
}

// With a login configured (here on loopback, where it is enforced too) an
// unauthenticated or wrong client is refused, while the hub's own
// in-process connections work. The outside user reads: it consumes the
// incident stream but cannot append to it, delete it, or touch the hub's
// own consumers.
func TestNATSLoginEnforcedAndOutsideClientsRead(t *testing.T) {
	addr := freePort(t, "127.0.0.1")
	nkey, seed := hub.NKeyPairForTests[0], hub.NKeyPairForTests[1]
	h := runHub(t, hub.Config{NATSListen: addr, NATSAuth: natsjs.Auth{User: "reader", Password: "s3cret-reader", NKey: nkey}})
	url := "nats://" + addr

	// A reader listening on every inbox overhears none of the hub's own
	// replies (appends, reads of buckets and streams).
	eavesdropper, err := nats.Connect(url, nats.UserInfo("reader", "s3cret-reader"))
	if err != nil {
		t.Fatal(err)
	}
	defer eavesdropper.Close()
	overheard, err := eavesdropper.SubscribeSync("_INBOX.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := eavesdropper.Flush(); err != nil {
		t.Fatal(err)
	}
	id := declare(t, "http://"+h.Addr())
	if m, err := overheard.NextMsg(time.Second); err == nil {
		t.Errorf("a reader overheard the hub's reply on %s: %.200s", m.Subject, m.Data)
	}

	for name, opts := range map[string][]nats.Option{
		"no login":       nil,
		"wrong password": {nats.UserInfo("reader", "guess")},
		"the hub's user": {nats.UserInfo(natsjs.HubUser, "guess")},
	} {
		if nc, err := nats.Connect(url, append(opts, nats.NoReconnect())...); err == nil {
			nc.Close()
			t.Errorf("%s: connected to the embedded NATS server", name)
		} else if !errors.Is(err, nats.ErrAuthorization) {
			t.Errorf("%s: %v, want an authorization violation", name, err)
		}
	}

	// The nkey's holder logs in with the seed, which the hub never sees.
	seedFile := filepath.Join(t.TempDir(), "reader.nk")
	if err := os.WriteFile(seedFile, []byte(seed), 0o600); err != nil {
		t.Fatal(err)
	}
	nkeyOpt, err := nats.NkeyOptionFromSeed(seedFile)
	if err != nil {
		t.Fatal(err)
	}
	nk, err := nats.Connect(url, nkeyOpt)
	if err != nil {
		t.Fatalf("nkey login refused: %v", err)
	}
	nk.Close()

	violations := make(chan error, 16)
	nc, err := nats.Connect(url, nats.UserInfo("reader", "s3cret-reader"),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { violations <- err }))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// It consumes the stream on a durable consumer of its own, as
	// docs/events.md shows, and acknowledges.
	c, err := js.CreateOrUpdateConsumer(ctx, events.IncidentStream, jetstream.ConsumerConfig{
		Durable: "my-dashboard", FilterSubjects: []string{"incidents.*.declared", "incidents.*.closed"},
		AckPolicy: jetstream.AckExplicitPolicy, DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		t.Fatalf("reader cannot consume INCIDENTS: %v", err)
	}
	msg, err := c.Next(jetstream.FetchMaxWait(5 * time.Second))
	if err != nil {
		t.Fatalf("reader read nothing: %v", err)
	}
	if want := events.IncidentSubjectPrefix + "." + id + ".declared"; msg.Subject() != want {
		t.Fatalf("reader got %s, want %s", msg.Subject(), want)
	}
	if err := msg.DoubleAck(ctx); err != nil {
		t.Fatalf("reader cannot acknowledge: %v", err)
	}

	// It cannot append an event, delete the stream or the hub's consumers.
	before := lastSeq(t, h)
	pctx, pcancel := context.WithTimeout(ctx, time.Second)
	_, err = js.Publish(pctx, events.IncidentSubjectPrefix+"."+id+".note_added", []byte(`{}`))
	pcancel()
	if err == nil {
		t.Error("reader published to incidents.>")
	}
	if err := nc.Publish(events.IncidentSubjectPrefix+"."+id+".note_added", []byte(`{}`)); err == nil {
		_ = nc.Flush()
	}
	// A refused request gets no answer: short waits.
	dctx, dcancel := context.WithTimeout(ctx, time.Second)
	defer dcancel()
	if err := js.DeleteStream(dctx, events.IncidentStream); err == nil {
		t.Error("reader deleted the INCIDENTS stream")
	}
	if err := js.DeleteConsumer(dctx, events.IncidentStream, "timeline"); err == nil {
		t.Error("reader deleted the hub's timeline consumer")
	}
	// Nor rewrite one through the create subject that takes the consumer's
	// name from the body (it would update the hub's consumer in place).
	hijack := `{"stream_name":"INCIDENTS","config":{"name":"timeline","deliver_subject":"_INBOX.hijack","filter_subject":"incidents.nothing","ack_policy":"all"}}`
	if _, err := nc.Request("$JS.API.CONSUMER.CREATE."+events.IncidentStream, []byte(hijack), time.Second); err == nil {
		t.Error("reader's create request naming the timeline consumer in its body was answered")
	}
	if _, err := nc.Request("$JS.API.CONSUMER.LIST."+events.IncidentStream, nil, time.Second); err == nil {
		t.Error("reader listed the consumers' configurations, the hub's deliver subjects among them")
	}
	if tc, err := h.Bus().JS.PushConsumer(ctx, events.IncidentStream, "timeline"); err != nil {
		t.Errorf("the timeline consumer: %v", err)
	} else if f := tc.CachedInfo().Config.FilterSubject; f == "incidents.nothing" {
		t.Errorf("the reader rewrote the hub's timeline consumer (filter %q)", f)
	}
	if _, err := js.Stream(ctx, events.IncidentStream); err != nil {
		t.Errorf("the INCIDENTS stream is gone after the reader's attempts: %v", err)
	}
	if after := lastSeq(t, h); after != before {
		t.Errorf("INCIDENTS went from sequence %d to %d after the reader's attempts", before, after)
	}
	select {
	case err := <-violations:
		if !errors.Is(err, nats.ErrPermissionViolation) {
			t.Errorf("reader's connection error: %v, want a permissions violation", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("the server reported no permissions violation to the reader")
	}
}

func declare(t *testing.T, base string) string {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"title": "nats login", "service": "payments", "severity": "SEV3"})
	resp, err := http.Post(base+"/api/v1/incidents", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var inc struct {
		ID string `json:"id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&inc); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("declare through the hub: %d %v", resp.StatusCode, err)
	}
	return inc.ID
}

func lastSeq(t *testing.T, h *hub.Hub) uint64 {
	t.Helper()
	s, err := h.Bus().JS.Stream(t.Context(), events.IncidentStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.LastSeq
}

// With --nats-tls-cert and --nats-tls-key, clients must use TLS.
func TestNATSLoginOverTLS(t *testing.T) {
	certFile, keyFile, roots := selfSigned(t)
	addr := freePort(t, "127.0.0.1")
	runHub(t, hub.Config{NATSListen: addr, NATSAuth: natsjs.Auth{User: "reader", Password: "s3cret", TLSCert: certFile, TLSKey: keyFile}})
	if nc, err := nats.Connect("nats://"+addr, nats.UserInfo("reader", "s3cret"), nats.NoReconnect()); err == nil {
		nc.Close()
		t.Error("a client without TLS connected")
	}
	nc, err := nats.Connect("tls://"+addr, nats.UserInfo("reader", "s3cret"), nats.Secure(&tls.Config{RootCAs: roots}))
	if err != nil {
		t.Fatalf("TLS client with the login refused: %v", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Stream(t.Context(), events.IncidentStream); err != nil {
		t.Fatalf("TLS reader cannot see INCIDENTS: %v", err)
	}
}

// With --nats-access full, another hikeshi process in split mode runs
// through the port with the login in its --nats URL.
func TestNATSFullAccessForSplitMode(t *testing.T) {
	addr := freePort(t, "127.0.0.1")
	runHub(t, hub.Config{NATSListen: addr, NATSAuth: natsjs.Auth{User: "hikeshi-b", Password: "s3cret-b", Full: true}})
	b := runHub(t, hub.Config{NATSURL: "nats://hikeshi-b:s3cret-b@" + addr, Targets: []string{hub.TargetAPI}})
	declare(t, "http://"+b.Addr())
}

// selfSigned writes a certificate for 127.0.0.1 and its key, and returns
// the pool that trusts it.
func selfSigned(t *testing.T) (certFile, keyFile string, roots *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "hikeshi test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "nats.crt"), filepath.Join(dir, "nats.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	roots = x509.NewCertPool()
	roots.AddCert(cert)
	return certFile, keyFile, roots
}
