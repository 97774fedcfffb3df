package main

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/services/hub"
)

// hikeshi replica list shows the replicas' timeline consumers; retire
// deletes a stopped replica's and refuses a running one's.
func TestReplicaListAndRetire(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	natsAddr := ln.Addr().String()
	ln.Close()
	runHub(t, hub.Config{NATSListen: natsAddr})
	url := "nats://" + natsAddr

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b, err := hub.Start(ctx, hub.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", NATSURL: url, NodeName: "b", Modules: modules})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()

	replica := func(args ...string) (string, int) {
		var out bytes.Buffer
		code := run(context.Background(), append(append([]string{"replica"}, args...), "--nats", url), &out, &out)
		return out.String(), code
	}
	// b reads its consumer once its timeline loop has subscribed.
	var out string
	var code int
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		out, code = replica("list")
		if code != 0 || strings.Contains(out, "timeline-b  true") || time.Now().After(deadline) {
			break
		}
	}
	t.Logf("hikeshi replica list:\n%s", out)
	if code != 0 || !strings.Contains(out, "(single hub)") || !strings.Contains(out, "timeline-b  true") || !strings.Contains(out, "72h0m0s without a reader") {
		t.Fatalf("replica list: exit %d:\n%s", code, out)
	}
	if out, code := replica("retire", "b"); code != 1 || !strings.Contains(out, "replica b is running") {
		t.Fatalf("retire a running replica: exit %d: %s", code, out)
	}
	if out, code := replica("retire", "b.c"); code != 2 || !strings.Contains(out, "only letters, digits") {
		t.Fatalf("retire b.c: exit %d: %s", code, out)
	}
	cancel()
	<-done
	if out, code := replica("retire", "b"); code != 0 || !strings.Contains(out, "retired replica b") {
		t.Fatalf("retire a stopped replica: exit %d: %s", code, out)
	}
	if out, _ := replica("list"); strings.Contains(out, "timeline-b") {
		t.Fatalf("retired replica still listed:\n%s", out)
	}
	if out, code := replica("retire", "b"); code != 1 || !strings.Contains(out, "no replica b") {
		t.Fatalf("retire b twice: exit %d: %s", code, out)
	}
}
