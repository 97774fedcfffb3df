package hub_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/checkpoints"
	"github.com/hikeshi/hikeshi/services/hub"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// A running hub signs checkpoints with the key from the environment, and
// an outside client with only read access verifies its record, and cannot
// write a checkpoint of its own.
func TestReaderVerifiesTheRunningHubsRecord(t *testing.T) {
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(checkpoints.KeyEnv, string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})))
	addr := freePort(t, "127.0.0.1")
	h := runHub(t, hub.Config{NATSListen: addr, NATSAuth: natsjs.Auth{User: "reader", Password: "s3cret-reader"}})
	declare(t, "http://"+h.Addr())

	nc, err := nats.Connect("nats://"+addr, nats.UserInfo("reader", "s3cret-reader"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	store, err := natsjs.NewReader(ctx, js)
	if err != nil {
		t.Fatalf("reader cannot bind the incident stream: %v", err)
	}
	for {
		cps, _, err := checkpoints.ReadAll(ctx, js)
		if err != nil {
			t.Fatalf("reader cannot read the checkpoints: %v", err)
		}
		if len(cps) > 0 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("the hub wrote no checkpoint")
		case <-time.After(100 * time.Millisecond):
		}
	}
	r, err := checkpoints.VerifyStream(ctx, store, js, pub, nil)
	if err != nil || !r.OK() || r.Checkpoints == 0 || r.Events == 0 {
		t.Fatalf("verify as a reader: %+v, %v", r, err)
	}
	pctx, pcancel := context.WithTimeout(ctx, time.Second)
	defer pcancel()
	if _, err := js.Publish(pctx, events.CheckpointSubject, []byte(`{}`)); err == nil {
		t.Error("a reader wrote to the checkpoint stream")
	}
}
