// Package examples checks that the programs under examples/ work as the
// README describes them.
package examples

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/events"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestOutsideConsumer runs examples/consumer as an outside reader of an
// embedded hub bus (reader login over TCP, as `hikeshi serve --nats-listen`
// offers it) and checks that it prints an incident declared on the stream.
func TestOutsideConsumer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ns, err := natsjs.StartEmbedded(natsjs.EmbeddedConfig{
		StoreDir:    t.TempDir(),
		Listen:      "127.0.0.1:-1",
		Auth:        natsjs.Auth{User: "reader", Password: "reader-secret"},
		HubPassword: "hub-secret",
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	nc, err := natsjs.Connect(ns, "", "hub", nats.UserInfo(natsjs.HubUser, "hub-secret"), nats.CustomInboxPrefix(natsjs.HubInbox))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := natsjs.EnsureTopology(ctx, js, natsjs.Topology{}); err != nil {
		t.Fatal(err)
	}
	store, err := natsjs.NewStore(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	id := events.NewID()
	env, err := events.New(id, &events.Declared{Title: "payments down", Service: "payments", Severity: events.SEV2}, events.Meta{Actor: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := store.Append(ctx, env, 0); err != nil {
		t.Fatal(err)
	}

	bin := filepath.Join(t.TempDir(), "consumer")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	build.Dir = filepath.Join("..", "..", "examples", "consumer")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build examples/consumer: %v\n%s", err, out)
	}
	run := exec.CommandContext(ctx, bin, "-durable", "outside-test")
	run.Env = append(os.Environ(), "NATS_URL="+ns.ClientURL(), "NATS_USER=reader", "NATS_PASSWORD=reader-secret")
	run.Stderr = os.Stderr
	stdout, err := run.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = run.Process.Kill(); _ = run.Wait() }()
	lines := bufio.NewScanner(stdout)
	for lines.Scan() {
		line := lines.Text()
		if strings.Contains(line, id) && strings.Contains(line, "io.hikeshi.incident.declared") && strings.Contains(line, "payments down") {
			return
		}
		t.Logf("other line: %s", line)
	}
	t.Fatalf("the consumer ended without printing the declared incident %s (scan error: %v)", id, lines.Err())
}
